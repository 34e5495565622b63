"""The runner's own warnings under ``--hypotheses``: what the engine logs that no result shows
(free memory holding the scripts back, a run without a watchdog, output no longer written to
its file), gathered while the run goes on and told once in the terminal summary.

pytest shows a log record only in the report of a failing test that was running when it was
logged: the run's warnings, logged from the engine's thread, would land at random in some
hypothesis's report, or nowhere.
"""

from __future__ import annotations

import logging
from typing import Dict, Iterable, List, Tuple

import pytest

from ..engine.events import reports_carry_them, subject_of, told_elsewhere

#: How many more of a kind the summary names, after the first.
_NAMED = 10
#: The logger every module of the package logs under.
PACKAGE_LOGGER = logging.getLogger(__name__.partition(".")[0])
#: One kind of warning: the logger, the call's message, the first message logged, how many of
#: that kind came, and the hypothesis each was about (empty when not logged about one).
Kind = Tuple[str, str, str, int, List[str]]


class RunnerWarnings(logging.Handler):
    """The plugin part that keeps the runner's warnings from its creation until pytest ends:
    each kind once (the same call of the same logger), with how many more times it came. A
    record logged with :data:`~pytest_parallel_hypotheses.engine.events.TOLD_ELSEWHERE` is
    left out, here and in pytest's captured logs, from its creation until pytest ends: the
    reports already say it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        #: The first message of each kind, how many of that kind came, and the hypothesis
        #: each was about.
        self._kinds: Dict[Tuple[str, str], Tuple[str, int, List[str]]] = {}
        PACKAGE_LOGGER.addHandler(self)
        reports_carry_them(True)

    def emit(self, record: logging.LogRecord) -> None:
        if told_elsewhere(record):
            return
        try:
            subject = subject_of(record)
            self._count(record.name, str(record.msg), record.getMessage(), 1, [subject or ""])
        except Exception:  # a malformed call must not fail the code that logged it
            self.handleError(record)

    def kinds(self) -> List[Kind]:
        """Each kind of warning, in the order first logged (the engine's thread may be adding
        one): the logger, the call's message, its first message and how many came; plain
        values, so that an xdist worker can send them to the controller."""
        self.acquire()
        try:
            return [(*kind, *told) for kind, told in self._kinds.items()]
        finally:
            self.release()

    def take(self, kinds: Iterable[Kind]) -> None:
        """Add the warnings another process kept (an xdist worker's)."""
        self.acquire()
        try:
            for name, call, first, count, about in kinds:
                self._count(name, call, first, count, about)
        finally:
            self.release()

    def messages(self) -> List[str]:
        """Each kind of warning once: its first message, and how many more of that kind came,
        naming what they were about (a trial's summary hid a hypothesis whose failure did not
        count behind "and 1 more like it")."""
        kinds = self.kinds()
        return [first + _more(count - 1, about[1:]) for _name, _call, first, count, about in kinds]

    def _count(self, name: str, call: str, first: str, count: int, about: List[str]) -> None:
        known_first, known_count, known_about = self._kinds.get((name, call)) or (first, 0, [])
        named = (known_about + about)[: _NAMED + 1]  # the first's, and those the summary names
        self._kinds[(name, call)] = (known_first, known_count + count, named)

    def stop(self) -> None:
        """Keep no more warnings, and let those the reports carry reach the log again."""
        PACKAGE_LOGGER.removeHandler(self)
        reports_carry_them(False)

    @pytest.hookimpl
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop()


def _more(count: int, about: List[str]) -> str:
    """How many more of a kind came, naming what the first of them were about."""
    if not count:
        return ""
    if not about or not all(about):
        return f" (and {count} more like it)"
    rest = f" and {count - len(about)} more" if count > len(about) else ""
    return f" (and {count} more like it: {', '.join(about)}{rest})"
