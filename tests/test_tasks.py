"""Stopping a run's background task: it ends, its error is raised, and a cancellation of the
one who stops it is not lost."""

from __future__ import annotations

import asyncio

import pytest

from pytest_parallel_hypotheses.engine.tasks import stop_task


async def slow_to_stop(cleaned: asyncio.Event) -> None:
    """A task whose clean-up takes a while after it is cancelled."""
    try:
        await asyncio.sleep(60)
    finally:
        await asyncio.sleep(0.2)
        cleaned.set()


@pytest.mark.asyncio
async def test_a_stopped_task_has_ended() -> None:
    cleaned = asyncio.Event()
    task = asyncio.ensure_future(slow_to_stop(cleaned))
    await asyncio.sleep(0)

    await stop_task(task)

    assert task.done()
    assert cleaned.is_set()


@pytest.mark.asyncio
async def test_the_error_of_a_task_that_failed_is_raised() -> None:
    async def failing() -> None:
        raise RuntimeError("broken")

    task = asyncio.ensure_future(failing())
    await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="broken"):
        await stop_task(task)


@pytest.mark.asyncio
async def test_a_caller_cancelled_while_it_stops_a_task_is_cancelled() -> None:
    cleaned = asyncio.Event()
    task = asyncio.ensure_future(slow_to_stop(cleaned))
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(stop_task(task))
    await asyncio.sleep(0.05)

    stopping.cancel()
    await asyncio.wait({stopping})

    assert stopping.cancelled()
    await asyncio.wait_for(cleaned.wait(), timeout=30)  # the task still finishes its clean-up
