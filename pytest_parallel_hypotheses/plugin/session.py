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

import contextlib
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
    worker), and that holds the first stop signal, SIGINT included, to come once the session
    ends, so that the reports get written."""

    def __init__(self) -> None:
        # each signal's handler before: a handler, SIG_DFL/SIG_IGN, or None if set outside Python
        self._previous: Dict[int, Any] = {}
        self._installed = False
        #: The signals held once the session ends, until one of them comes.
        self._holding: Tuple[int, ...] = ()

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
        """Take over the signals (only the main thread may set signal handlers), except one
        this process ignores: under ``nohup`` a closed terminal must not end the run."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._previous = {
            signum: signal.signal(signum, _interrupt)
            for signum in STOP_SIGNALS
            if signal.getsignal(signum) is not signal.SIG_IGN
        }
        self._installed = True

    def hold(self) -> None:
        """From now on, hold the next SIGINT, SIGTERM or SIGHUP; raise at the one after. A
        signal this process ignores (SIGINT in the background, SIGHUP under ``nohup``) stays
        ignored."""
        if not self._installed or signal.SIGINT in self._previous:
            return  # holding, or held once already
        self._previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
        self._holding = tuple(
            signum for signum in self._previous if signal.getsignal(signum) is not signal.SIG_IGN
        )
        for signum in self._holding:
            signal.signal(signum, self._held)

    def restore(self) -> None:
        """Give the signals back to whatever handled them before."""
        if not self._installed:
            return
        self._holding = ()  # a signal that comes now must not take them back
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}
        self._installed = False

    def _held(self, signum: int, frame: Optional[FrameType]) -> None:
        """Say that the signal is held, and make the next one raise."""
        holding, self._holding = self._holding, ()
        for each in holding:
            signal.signal(each, _interrupt)
        if not holding:
            return  # the signals are being given back
        name = signal.Signals(signum).name
        with contextlib.suppress(OSError):  # a closed log pipe must not raise in the reports
            os.write(
                2,
                f"\n{name} received while the run ends: its reports are being written; "
                f"send {name} again to stop at once, without them\n".encode(),
            )


def _interrupt(signum: int, frame: Optional[FrameType]) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(f"received {signal.Signals(signum).name}")
