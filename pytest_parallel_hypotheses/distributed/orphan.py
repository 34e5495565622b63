"""A pytest-xdist worker whose controller died ends at once, as if terminated.

Killed with SIGKILL (a CI cancel, the out-of-memory killer), the controller leaves its workers
running: each finds out only when its channel to the controller fails, about 15 seconds later
in a trial, and meanwhile starts the scripts of the items it still holds, whose results nobody
will read. A worker on the controller's machine, started by it, watches it through a pidfd
instead, and on its death sends itself SIGTERM: the run then stops its script and its tree,
as for a cancelled run, and the worker's own watchdog stops whatever is left if it dies too.
The workers then remove the folder the controller shared with them, which it no longer can.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import threading
from typing import Optional

import pytest


class ControllerWatch:
    """The worker's plugin part that watches its controller (the process ``controller_pid``,
    if it is this worker's parent) from a thread, while the session runs."""

    def __init__(self, controller_pid: Optional[int], shared_folder: Optional[str]) -> None:
        self._pidfd = _open_parent(controller_pid)
        # the watch's wake-up at the session's end: its read end and write end
        self._wake_read, self._wake_write = os.pipe() if self._pidfd is not None else (-1, -1)
        self._thread: Optional[threading.Thread] = None
        #: The folder the controller made for its workers, which it removes at its end.
        self._shared_folder = shared_folder

    def pytest_sessionstart(self) -> None:
        if self._pidfd is not None:
            self._thread = threading.Thread(
                target=self._watch, name="pytest-hypotheses-controller-watch", daemon=True
            )
            self._thread.start()

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self) -> None:
        """Stop watching: the controller now ends the session on its side. A controller
        that died cannot remove the folder it shared with its workers: they do."""
        if self._pidfd is None:
            return
        os.write(self._wake_write, b"x")
        if self._thread is not None:
            self._thread.join()
        if _readable(self._pidfd):  # gone as this worker ended on its own
            self._tidy_up()
        for fd in (self._pidfd, self._wake_read, self._wake_write):
            os.close(fd)
        self._pidfd = None

    def _watch(self) -> None:
        assert self._pidfd is not None  # started only with one
        poll = select.poll()
        poll.register(self._pidfd, select.POLLIN)
        poll.register(self._wake_read, select.POLLIN)
        ready = {fd for fd, _events in poll.poll()}
        if self._pidfd in ready and self._wake_read not in ready:
            self._tidy_up()  # first: a worker stopped by a signal may never unconfigure
            os.kill(os.getpid(), signal.SIGTERM)

    def _tidy_up(self) -> None:
        """Remove the folder the dead controller shared with its workers (each worker tries;
        what is in it is of no use to anyone now)."""
        if self._shared_folder is not None:
            shutil.rmtree(self._shared_folder, ignore_errors=True)


def _readable(fd: int) -> bool:
    """True if ``fd`` is readable now (a pidfd: its process has ended)."""
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def _open_parent(controller_pid: Optional[int]) -> Optional[int]:
    """A pidfd of the controller if it started this worker and still runs (a worker on
    another machine, or reached through another process, has none), else None."""
    if controller_pid is None or os.getppid() != controller_pid:
        return None
    with contextlib.suppress(AttributeError, OSError):  # no pidfds: not Linux 5.3 or later
        pidfd = os.pidfd_open(controller_pid)
        if os.getppid() == controller_pid:  # not reused: it was still our parent after the open
            return pidfd
        os.close(pidfd)
    return None
