"""Background tasks of a run that must end with it."""

from __future__ import annotations

import asyncio
from typing import Optional


async def stop_task(task: Optional[asyncio.Task[None]]) -> None:
    """Cancel ``task`` (if any) and wait until it has ended; its own error, if it failed,
    is raised. A cancellation of the caller while it waits is raised too, never taken for
    the task's: swallowed, it would leave the caller running on after it was cancelled."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.result()
