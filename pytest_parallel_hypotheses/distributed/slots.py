"""A concurrency limit shared by the processes of one machine: slot files locked with flock.

pytest-xdist workers are separate processes, so a semaphore of one of them limits nothing
across them. A process that runs a script first locks one of ``limit`` files in a folder all
of them share; the kernel releases the lock when the file is closed, also when the process is
killed, so a crashed worker never keeps its slot.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Optional, Type

#: How long to wait before looking for a free slot again.
_POLL_SECONDS = 0.02


class SlotFolder:
    """At most ``limit`` holders at once among every process using the same ``folder``.

    Use it as a context manager around the work; it is not reentrant.
    """

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = folder
        self.limit = limit
        self._held: Optional[int] = None

    def __enter__(self) -> SlotFolder:
        while True:
            for index in range(self.limit):
                if self._try_lock(self.folder / f"slot-{index}"):
                    return self
            time.sleep(_POLL_SECONDS)

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._held is not None:
            os.close(self._held)  # closing the file releases its lock
            self._held = None

    def _try_lock(self, path: Path) -> bool:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        except BaseException:
            os.close(handle)
            raise
        self._held = handle
        return True
