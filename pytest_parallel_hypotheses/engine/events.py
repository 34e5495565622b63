"""What the engine tells observers while a run goes on: a worktree's setup step started on a
slot, with its live output, and succeeded; an attempt started on a slot, with its live output;
an attempt finished, with its result.

The engine calls its observer on its own loop (a worker thread under the plugin), so an
observer must be quick and thread-safe; whatever it raises is logged, never lets a run fail.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Optional

from ..core.models import TestExecutionResult
from .capture import BoundedCapture
from .runs import HypothesisRun

logger = logging.getLogger(__name__)

#: The ``extra`` of a log record whose words the run's reports carry already (a script that
#: cannot run and a worktree's code, in its result; the event log's failure, in its own line):
#: a report of the runner's warnings need not repeat it.
TOLD_ELSEWHERE: Mapping[str, object] = MappingProxyType({"told_elsewhere": True})


def about(subject: str) -> Mapping[str, object]:
    """The ``extra`` of a warning about one hypothesis: the summary, which tells each kind of
    warning once, names every hypothesis it came about (see ``subject_of``)."""
    return {"about": subject}


def subject_of(record: logging.LogRecord) -> Optional[str]:
    """What a warning logged with :func:`about` is about (None for another)."""
    subject = getattr(record, "about", None)
    return subject if isinstance(subject, str) else None


def told_elsewhere(record: logging.LogRecord) -> bool:
    """Whether ``record`` was logged with :data:`TOLD_ELSEWHERE`."""
    return any(getattr(record, name, False) for name in TOLD_ELSEWHERE)


class _KeptOutOfLogs(logging.Filter):
    """Keeps the records logged with :data:`TOLD_ELSEWHERE` from every handler while the
    reports of a run carry their words (:func:`reports_carry_them`): pytest shows a record in
    the captured log of the test running when it came (a script an xdist worker runs in its
    item's setup, or any item reported while the engine's thread logs), a copy of its words
    beside the result's own. A record with a traceback is kept: no report carries that."""

    def __init__(self) -> None:
        super().__init__()
        self._carrying = 0  # runs in one process nest (pytest run in-process by a test)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self._carrying > 0 and told_elsewhere(record) and not record.exc_info)

    def carry(self, carrying: bool) -> None:
        with self._lock:
            self._carrying += 1 if carrying else -1


_KEPT_OUT = _KeptOutOfLogs()


def reporting_logger(name: str) -> logging.Logger:
    """The logger of a module that logs records with :data:`TOLD_ELSEWHERE` (a filter acts on
    the records of its own logger only)."""
    logger = logging.getLogger(name)
    logger.addFilter(_KEPT_OUT)
    return logger


def reports_carry_them(carrying: bool) -> None:
    """From now on the records logged with :data:`TOLD_ELSEWHERE` are told by reports
    (``carrying``), or again no longer: each call with True is undone by one with False."""
    _KEPT_OUT.carry(carrying)


@dataclass(frozen=True)
class LiveOutput:
    """The output a running script has printed so far (read from any thread: a read is a
    snapshot, never a wait)."""

    stdout: BoundedCapture
    stderr: BoundedCapture

    def last_line(self) -> str:
        """The last non-empty line printed on stdout, else on stderr ("" before any)."""
        return self.stdout.last_line() or self.stderr.last_line()

    def close(self) -> None:
        """The script is gone: let both captures finish their files."""
        self.stdout.close()
        self.stderr.close()


class RunObserver:
    """Callbacks of one run; the default ones do nothing, so a subclass overrides what it
    needs."""

    def setup_started(
        self, run: HypothesisRun, *, slot: int, timeout: float, output: LiveOutput
    ) -> None:
        """The setup step of ``run``'s worktree started on worker ``slot``, for ``run``'s sake
        (its attempts follow once it succeeds), with ``timeout`` seconds to finish."""

    def setup_finished(self, run: HypothesisRun, *, slot: int) -> None:
        """The setup steps ``run`` waited for succeeded: its script waits for its turn to
        start (under ``auto``, for the CPUs to hold it)."""

    def attempt_started(
        self, run: HypothesisRun, *, number: int, slot: int, output: LiveOutput
    ) -> None:
        """Attempt ``number`` (from 1) of ``run`` started on worker ``slot`` (from 0)."""

    def attempt_finished(
        self, run: HypothesisRun, *, number: int, slot: int, result: TestExecutionResult
    ) -> None:
        """Attempt ``number`` of ``run`` ended with ``result``."""


def tell(
    observer: Optional[RunObserver], event: str, run: HypothesisRun, **details: object
) -> None:
    """Call ``observer.<event>``; its failure is logged and the run goes on."""
    if observer is None:
        return
    try:
        getattr(observer, event)(run, **details)
    except Exception:  # an observer's bug must not cost a hypothesis its result
        logger.exception("the run observer failed on %s of %s", event, run.hypothesis.id)
