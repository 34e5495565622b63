"""What the engine tells observers while a run goes on: a worktree's setup step started on a
slot, with its live output, and succeeded; an attempt started on a slot, with its live output;
an attempt finished, with its result.

The engine calls its observer on its own loop (a worker thread under the plugin), so an
observer must be quick and thread-safe; whatever it raises is logged, never lets a run fail.
"""

from __future__ import annotations

import logging
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
