"""The runner's own warnings under ``--hypotheses``: what the engine logs that no result shows
(free memory holding the scripts back, a run without a watchdog, output no longer written to
its file), gathered while the run goes on and told once in the terminal summary.

pytest shows a log record only in the report of a failing test that was running when it was
logged: the run's warnings, logged from the engine's thread, would land at random in some
hypothesis's report, or nowhere.
"""

from __future__ import annotations

import logging
from typing import Dict, List

import pytest

#: The logger every module of the package logs under.
PACKAGE_LOGGER = logging.getLogger(__name__.partition(".")[0])


class RunnerWarnings(logging.Handler):
    """The plugin part that keeps each distinct warning of the runner, in the order first
    logged, from its creation until pytest ends. A record logged with
    :data:`~pytest_parallel_hypotheses.engine.events.TOLD_ELSEWHERE` is left out: the
    reports already say it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._messages: Dict[str, None] = {}
        PACKAGE_LOGGER.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, "told_elsewhere", False):
            self._messages.setdefault(record.getMessage())

    def messages(self) -> List[str]:
        """Each distinct warning, in the order first logged (the engine's thread may be
        adding one)."""
        self.acquire()
        try:
            return list(self._messages)
        finally:
            self.release()

    @pytest.hookimpl
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        PACKAGE_LOGGER.removeHandler(self)
