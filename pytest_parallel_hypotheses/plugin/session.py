"""SIGTERM and SIGHUP as interruptions: a CI runner's ``kill``, a closed terminal or a dropped
ssh session end the run the way Ctrl-C does.

By default both end Python at once: no summary, no JSON report, and the run's scripts, which
lead their own sessions, keep running. Raised as a ``KeyboardInterrupt`` instead, they unwind
through the run loop, which stops every script, and pytest reports what finished.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Dict, Optional

#: The signals that end a session as an interruption.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The session received SIGTERM or SIGHUP."""


class StopSignals:
    """The plugin part that turns SIGTERM and SIGHUP into :class:`Terminated` from the
    session's start to the end of its configuration, in every role (alone, xdist controller or
    worker)."""

    def __init__(self) -> None:
        # each signal's handler before: a handler, SIG_DFL/SIG_IGN, or None if set outside Python
        self._previous: Dict[int, Any] = {}
        self._installed = False

    def pytest_sessionstart(self) -> None:
        self.install()

    def pytest_unconfigure(self) -> None:
        self.restore()

    def install(self) -> None:
        """Take over the signals (only the main thread may set signal handlers)."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS}
        self._installed = True

    def restore(self) -> None:
        """Give the signals back to whatever handled them before."""
        if not self._installed:
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._installed = False


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise Terminated(f"received {signal.Signals(signum).name}")
