"""SIGTERM and SIGHUP as interruptions: a CI runner's ``kill``, a closed terminal or a dropped
ssh session end the run the way Ctrl-C does.

By default both end Python at once: no summary, no JSON report, and the run's scripts, which
lead their own sessions, keep running. Raised as a ``KeyboardInterrupt`` instead, they unwind
through the run loop, which stops every script, and pytest reports what finished.

Once the session ends (interrupted, or at its finish), the next stop signal, Ctrl-C included,
is held: raised there, it would cut the writing of the reports short (a CI cancel sends
SIGINT, then SIGTERM a few seconds later, while pytest-xdist shuts its workers down). One more
raises as before, for a person who would rather lose the reports than wait.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any, Dict, Optional, Tuple

import pytest

#: The signals that end a session as an interruption.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The session received SIGTERM or SIGHUP."""


class StopSignals:
    """The plugin part that turns SIGTERM and SIGHUP into :class:`Terminated` from the
    session's start to the end of its configuration, in every role (alone, xdist controller or
    worker), and holds the first stop signal that comes once the session ends."""

    def __init__(self) -> None:
        # each signal's handler before: a handler, SIG_DFL/SIG_IGN, or None if set outside Python
        self._previous: Dict[int, Any] = {}
        self._installed = False
        self._holding = False

    def pytest_sessionstart(self) -> None:
        self.install()

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        self.hold()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.hold()

    def pytest_unconfigure(self) -> None:
        self.restore()

    def install(self) -> None:
        """Take over the signals (only the main thread may set signal handlers)."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS}
        self._installed = True

    def hold(self) -> None:
        """From now on, hold the next SIGINT, SIGTERM or SIGHUP; raise at the one after. A
        SIGINT this process ignores (started in the background) stays ignored."""
        if not self._installed or self._holding:
            return
        self._holding = True
        signals: Tuple[int, ...] = STOP_SIGNALS
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signals = (signal.SIGINT, *STOP_SIGNALS)
            self._previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
        for signum in signals:
            signal.signal(signum, lambda signum, frame: _held(signals, signum))

    def restore(self) -> None:
        """Give the signals back to whatever handled them before."""
        if not self._installed:
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}
        self._installed = False
        self._holding = False


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(f"received {signal.Signals(signum).name}")


def _held(signals: Tuple[int, ...], signum: int) -> None:
    """Say that the signal is held, and make the next one raise."""
    for each in signals:
        signal.signal(each, _interrupt)
    name = signal.Signals(signum).name
    os.write(
        2,
        f"\n{name} received while the run ends: its reports are being written; "
        f"send {name} again to stop at once, without them\n".encode(),
    )
