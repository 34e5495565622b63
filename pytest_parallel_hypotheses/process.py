"""One script's whole life in one function: spawn, capture, deadline, stop its tree, reap.

A protocol of our own rather than ``Process.communicate()``: it tells the moment the script
exits even while a background child still holds its pipes (``communicate`` and ``wait`` would
block until the deadline), and it feeds output straight into bounded buffers without extra
tasks. How the script is started and watched is :mod:`.spawn`'s business.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Dict, Mapping, Optional, Set, Tuple, TypeVar

from . import spawn
from .capture import BoundedCapture
from .metrics import ResourceSampler, TreeUsage
from .tree import ProcessTree

T = TypeVar("T")

#: How long exit may precede end-of-file on the pipes before we look for who still holds them.
_DRAIN_SECONDS = 0.05
#: How long a SIGKILLed leader may take to be reaped before we stop waiting for it.
_REAP_SECONDS = 1.0


@dataclass
class ProcessOutcome:
    """What a script did: its exit status (negative: killed by that signal), its output and,
    when sampled, the resources its tree used."""

    exit_code: Optional[int]
    timed_out: bool
    duration: float
    stdout: BoundedCapture
    stderr: BoundedCapture
    spawn_error: Optional[OSError] = field(default=None)
    usage: Dict[str, Any] = field(default_factory=dict)


class _ScriptProtocol(asyncio.SubprocessProtocol):
    """Receives a script's output and exit as they happen."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_output_bytes: int) -> None:
        self.stdout = BoundedCapture(max_output_bytes)
        self.stderr = BoundedCapture(max_output_bytes)
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._open_pipes: Set[int] = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self.stdout if fd == 1 else self.stderr).feed(data)

    def pipe_connection_lost(self, fd: int, exc: Optional[Exception]) -> None:
        self._open_pipes.discard(fd)
        if not self._open_pipes and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def run_script(
    script: Path,
    *,
    cwd: Path,
    env: Mapping[str, str],
    tree: ProcessTree,
    timeout: float,
    grace: float,
    max_output_bytes: int,
    sampler: Optional[ResourceSampler] = None,
) -> ProcessOutcome:
    """Run ``script`` in its own session and return once it and everything it started are gone.

    ``tree`` carries the marker that ``env`` gives the script; its group is filled in here.
    On every exit path (deadline, error, cancellation) the tree is stopped and the transport
    closed before this returns or raises. With a ``sampler``, the tree's resource use is
    sampled until the script exits or its deadline fires, whatever it left behind included.
    """
    loop = asyncio.get_running_loop()
    protocol = _ScriptProtocol(loop, max_output_bytes)
    start = loop.time()
    try:
        transport, cancelled = await _uninterrupted(
            spawn.start(protocol, [str(script)], cwd=str(cwd), env=env)
        )
    except OSError as error:
        return ProcessOutcome(
            None, False, loop.time() - start, protocol.stdout, protocol.stderr, error
        )
    tree.pgid = transport.get_pid()
    tree.register()
    usage: Optional[TreeUsage] = None
    finished = False
    try:
        if cancelled:
            raise asyncio.CancelledError
        usage = None if sampler is None else sampler.watch(tree.pgid)
        timed_out = not await _wait(protocol.exited, timeout)
        metrics = {} if sampler is None or usage is None else sampler.finish(usage)
        if timed_out:
            await tree.stop(grace)
            await _wait(protocol.exited, grace + _REAP_SECONDS)
        end = loop.time()
        if not tree.group_is_empty() or not await _wait(protocol.drained, _DRAIN_SECONDS):
            await tree.stop(grace)
            await _wait(protocol.drained, grace)
        finished = True
        return ProcessOutcome(
            transport.get_returncode(),
            timed_out,
            end - start,
            protocol.stdout,
            protocol.stderr,
            usage=metrics,
        )
    finally:
        try:
            if sampler is not None and usage is not None:
                sampler.forget(usage)
            if not finished:
                await _stop_after_interruption(tree, protocol, grace)
            tree.unregister()
        finally:
            transport.close()  # also after a second cancellation, which kills at once


async def _stop_after_interruption(
    tree: ProcessTree, protocol: _ScriptProtocol, grace: float
) -> None:
    """Stop the tree when the run was cancelled or failed; a second cancellation kills at once."""
    try:
        await tree.stop(grace)
        await _wait(protocol.exited, grace)
    except BaseException:
        tree.kill_now()
        raise


async def _uninterrupted(start: Awaitable[T]) -> Tuple[T, bool]:
    """Await ``start`` to its end even if cancelled meanwhile; also say whether that happened.

    A spawn cancelled half-way makes asyncio kill the leader alone and then wait, possibly for
    ever, for pipes that its children still hold; once started, the script is stopped properly.
    """
    task = asyncio.ensure_future(start)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled and task.exception() is not None:
        raise asyncio.CancelledError
    return task.result(), cancelled


async def _wait(future: asyncio.Future[None], timeout: float) -> bool:
    """Wait for ``future`` up to ``timeout`` seconds without cancelling it; True if it is done."""
    if not future.done():
        await asyncio.wait({future}, timeout=timeout)
    return future.done()
