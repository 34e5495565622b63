"""A stop shared by the pytest-xdist workers of one machine: a file in a folder they share.

xdist stops handing out items once a worker sets ``session.shouldstop``, but every other
worker first finishes the script it runs and the items already queued for it. The worker
whose result met the stop condition writes the reason here; the others look for it before
they start a script and while it runs, and then stop as the engine does when it halts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Optional

#: How often a worker running a script looks for the stop.
POLL_SECONDS = 0.1


class StopFlag:
    """Why the run stopped, once a worker has said so; without a folder (a worker on another
    machine than the controller's) it never says anything."""

    def __init__(self, folder: Optional[Path]) -> None:
        self._path = None if folder is None else folder / "stop"

    def set(self, reason: str) -> None:
        """Write the reason; the first writer wins, and a reader never sees half of it."""
        if self._path is None:
            return
        handle, temporary = tempfile.mkstemp(prefix=".stop.", dir=self._path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(reason)
            with contextlib.suppress(FileExistsError):  # another worker stopped the run first
                os.link(temporary, self._path)
        finally:
            os.unlink(temporary)

    def reason(self) -> Optional[str]:
        """The reason the run stopped, or None while it goes on."""
        if self._path is None:
            return None
        try:
            return self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    async def wait(self) -> str:
        """The reason, as soon as a worker has written it."""
        while True:
            reason = self.reason()
            if reason is not None:
                return reason
            await asyncio.sleep(POLL_SECONDS)
