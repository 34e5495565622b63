"""Asyncio work for synchronous callers: a private event loop in a worker thread.

``asyncio.run`` fails inside a running loop (Jupyter, async apps, pytest-asyncio tests) and,
in the caller's thread, resets that thread's event loop when it returns. Running on a loop of
our own in a thread of our own avoids both. The caller waits in short slices so Ctrl-C reaches
it; it then cancels the work and waits until every script is stopped before re-raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from types import TracebackType
from typing import (
    AsyncContextManager,
    AsyncIterable,
    Awaitable,
    Callable,
    Generic,
    Iterator,
    Optional,
    Type,
    TypeVar,
)

from .tree import kill_all_live_groups

T = TypeVar("T")

_WAIT_SLICE_SECONDS = 0.1


class LoopThread(Generic[T]):
    """Runs one coroutine on a private loop in a worker thread; cancellable from any thread.

    Completion is tracked with an event of our own, never with ``Thread.join``/``is_alive``:
    before Python 3.13 a Ctrl-C that interrupts ``join`` can mark a running thread as stopped,
    and the caller would then leave while the scripts still run.
    """

    def __init__(self, make_coro: Callable[[], Awaitable[T]]) -> None:
        self._make_coro = make_coro
        self._thread = threading.Thread(
            target=self._main, name="pytest-parallel-hypotheses", daemon=True
        )
        self._started = threading.Event()
        self._done = threading.Event()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._task: Optional[asyncio.Future[T]] = None
        self._result: Optional[T] = None
        self._error: Optional[BaseException] = None

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def cancel(self) -> None:
        """Ask the work to stop; it stops its scripts before the thread ends."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            # RuntimeError: the loop closed in between, so nothing is left to cancel
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)

    def join(self) -> None:
        """Wait until the work is done; on Ctrl-C cancel it, wait for the clean-up, then
        re-raise. A second Ctrl-C skips the grace period: every script group is killed at once
        and a second cancellation kills what is left, escaped processes included; waiting for
        that is quick, and a third Ctrl-C leaves at once."""
        try:
            self._wait()
        except KeyboardInterrupt:
            self.cancel()
            try:
                self._wait()
            except KeyboardInterrupt:
                kill_all_live_groups()
                self.cancel()
                self._wait()
                raise
            raise

    def _wait(self) -> None:
        """Block in short slices, so that a signal reaches the caller thread."""
        while not self._done.wait(_WAIT_SLICE_SECONDS):
            pass
        self._thread.join()

    def result(self) -> T:
        """The coroutine's value, or its exception re-raised (after :meth:`join`)."""
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def _main(self) -> None:
        try:
            self._result = asyncio.run(self._run())
        except BaseException as error:  # handed to the caller thread by result()
            self._error = error
        finally:
            self._started.set()
            self._done.set()

    async def _run(self) -> T:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.ensure_future(self._make_coro())
        self._started.set()
        return await self._task


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, whatever loop the caller has."""
    worker: LoopThread[T] = LoopThread(make_coro)
    worker.start()
    worker.join()
    return worker.result()


_DONE = object()


class BackgroundStream(Generic[T]):
    """Items of an async stream, handed to a synchronous consumer as they arrive.

    The stream is an async context manager that yields an async iterator (such as
    :class:`~pytest_parallel_hypotheses.engine.stream.ResultStream`), so its clean-up runs on the
    loop. Use this as a context manager: leaving it (normally, on an error or on Ctrl-C)
    cancels the producer and waits until that clean-up is done. Iterating without the ``with``
    block starts it too, and leaving the loop (also by ``break``) then does the same.
    """

    def __init__(self, make_stream: Callable[[], AsyncContextManager[AsyncIterable[T]]]) -> None:
        self._make_stream = make_stream
        self._items: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._worker: LoopThread[None] = LoopThread(self._produce)
        self._started = False

    def __enter__(self) -> BackgroundStream[T]:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[T]:
        self._start()
        try:
            while True:
                try:
                    item = self._items.get(timeout=_WAIT_SLICE_SECONDS)
                except queue.Empty:
                    continue
                if item is _DONE:
                    self._worker.join()
                    self._worker.result()
                    return
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the producer and wait for its clean-up (again: nothing more happens)."""
        if not self._started:
            return
        self._worker.cancel()
        self._worker.join()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._worker.start()

    async def _produce(self) -> None:
        try:
            async with self._make_stream() as stream:
                async for item in stream:
                    self._items.put(item)
        finally:
            self._items.put(_DONE)
