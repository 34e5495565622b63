"""Background tasks of a run that must end with it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Optional


async def stop_task(task: Optional[asyncio.Task[None]]) -> None:
    """Cancel ``task`` (if any) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
