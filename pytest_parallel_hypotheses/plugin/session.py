"""SIGTERM as an interruption: a CI runner's ``kill`` ends the run the way Ctrl-C does.

By default SIGTERM ends Python at once: no summary, no JSON report, and the run's scripts,
which lead their own sessions, keep running. Raised as a ``KeyboardInterrupt`` instead, it
unwinds through the run loop, which stops every script, and pytest reports what finished.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Optional


class Terminated(KeyboardInterrupt):
    """The session received SIGTERM."""


class SigtermInterrupts:
    """The plugin part that turns SIGTERM into :class:`Terminated` from the session's start to
    the end of its configuration, in every role (alone, xdist controller or worker)."""

    def __init__(self) -> None:
        self._previous: Any = None  # a handler, SIG_DFL/SIG_IGN, or None if set outside Python
        self._installed = False

    def pytest_sessionstart(self) -> None:
        self.install()

    def pytest_unconfigure(self) -> None:
        self.restore()

    def install(self) -> None:
        """Take over SIGTERM (only the main thread may set signal handlers)."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._previous = signal.signal(signal.SIGTERM, _interrupt)
        self._installed = True

    def restore(self) -> None:
        """Give SIGTERM back to whatever handled it before."""
        if not self._installed:
            return
        previous = signal.SIG_DFL if self._previous is None else self._previous
        signal.signal(signal.SIGTERM, previous)
        self._installed = False


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise Terminated(f"received {signal.Signals(signum).name}")
