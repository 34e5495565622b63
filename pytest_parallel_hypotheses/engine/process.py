"""One script's whole life in one function: spawn, capture, deadline, stop its tree, reap.

A protocol of our own rather than ``Process.communicate()``: it tells the moment the script
exits even while a background child still holds its pipes (``communicate`` and ``wait`` would
block until the deadline), and it feeds output straight into bounded buffers without extra
tasks. How the script is started and watched is :mod:`.spawn`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    TypeVar,
)

from ..core.diagnosis import process_count
from ..core.numbers import most_known
from . import spawn
from .capture import BoundedCapture
from .events import LiveOutput
from .memory import LimitedScript, MemoryBreach
from .snapshot import Snapshot, take_snapshot
from .tree import ProcessTree
from .usage import ResourceSampler, TreeUsage

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
    #: Set when the tree was stopped for passing its memory limit.
    memory_breach: Optional[MemoryBreach] = None
    #: The process tree and last output lines at the deadline, when it fired.
    snapshot: Optional[Snapshot] = None

    def close(self) -> None:
        """Both streams are over: let their captures finish their files."""
        self.stdout.close()
        self.stderr.close()


class _ScriptProtocol(asyncio.SubprocessProtocol):
    """Receives a script's output and exit as they happen."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_output_bytes: int,
        captures: Optional[Callable[[str], BoundedCapture]] = None,
    ) -> None:
        make = captures or (lambda _name: BoundedCapture(max_output_bytes))
        self.stdout = make("stdout")
        self.stderr = make("stderr")
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        #: When the exit was first seen: the task that waits for it may resume later.
        self.exited_at: Optional[float] = None
        self._loop = loop
        self._open_pipes: Set[int] = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        (self.stdout if fd == 1 else self.stderr).feed(data)

    def pipe_connection_lost(self, fd: int, exc: Optional[Exception]) -> None:
        self._open_pipes.discard(fd)
        if not self._open_pipes and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited_at = self._loop.time()
            self.exited.set_result(None)


async def run_script(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    tree: ProcessTree,
    timeout: float,
    grace: float,
    max_output_bytes: int,
    sampler: Optional[ResourceSampler] = None,
    setup_step: bool = False,
    demand_known: bool = False,
    kind: Optional[str] = None,
    memory: Optional[LimitedScript] = None,
    on_start: Optional[Callable[[LiveOutput], None]] = None,
    captures: Optional[Callable[[str], BoundedCapture]] = None,
) -> ProcessOutcome:
    """Run ``argv`` (a script, or a shell with its command) in its own session and return once
    it, its group and whatever holds its output are gone (what left both, a daemon, is its
    run's to stop).

    ``tree`` carries the marker that ``env`` gives the script; its group is filled in here.
    :class:`RunningScript` stops the tree on every other way out (an error, a cancellation).
    With a ``sampler``, the tree's resource use is sampled until the script exits or its
    deadline fires, whatever it left behind included (as a worktree's setup step's with
    ``setup_step``; ``demand_known`` when what it wants of the CPUs is known from an earlier
    run; ``kind``, the digest of the script's text). With a ``memory`` limit, a tree that
    passes it is killed at once (no grace: it is still allocating). ``on_start`` is handed the
    output captures once the script runs; at the deadline the tree is photographed before it
    stops. ``captures`` makes the capture of each stream (default: ``max_output_bytes`` of
    each kept in memory).
    """
    loop = asyncio.get_running_loop()
    protocol = _ScriptProtocol(loop, max_output_bytes, captures)
    asked = loop.time()
    try:
        running = await RunningScript.start(
            protocol,
            argv,
            cwd=cwd,
            env=env,
            tree=tree,
            grace=grace,
            preexec=None if memory is None else memory.joiner(),
        )
    except OSError as error:
        return ProcessOutcome(
            None, False, loop.time() - asked, protocol.stdout, protocol.stderr, error
        )
    start = running.started_at(default=asked)  # its own run: not its wait for a thread
    breached = None if memory is None else memory.started(running.pid, tree.marker)
    if on_start is not None:  # before the block: a start cut short keeps what it printed
        on_start(LiveOutput(protocol.stdout, protocol.stderr))
    async with running:
        snapshot = None
        with _sampled(sampler, tree, setup_step, demand_known, kind) as usage:
            await _wait_first(protocol.exited, breached, start + timeout - loop.time())
            metrics = (
                {}
                if usage is None or sampler is None
                else sampler.finish(usage, running.exit_usage)
            )
        over_limit = breached is not None and breached.done()
        timed_out = not over_limit and not protocol.exited.done()
        if over_limit or timed_out:  # what it was doing, before it is stopped
            if memory is not None:
                await memory.frozen()
            snapshot = await take_snapshot(tree, protocol.stdout, protocol.stderr)
            sampled = None if usage is None else usage.cpu_wait_share
            snapshot["cpu_wait_share"] = most_known(snapshot["cpu_wait_share"], sampled)
        if over_limit:
            assert memory is not None  # a breach comes from a limit
            memory.kill_members()
            await running.kill(then_wait=_REAP_SECONDS)
        if timed_out:  # SIGKILL at the deadline and the grace: the picture comes out of it
            left = max(0.0, start + timeout + grace - loop.time())
            await running.stop(grace=left, then_wait=left + _REAP_SECONDS)
        end = protocol.exited_at if protocol.exited_at is not None else loop.time()
        await running.release_pipes(stopped=over_limit or timed_out)
        exited = running.exit_usage
        exit_peak = None if exited is None else exited.max_rss_bytes
        peak_seen = metrics.get("peak_rss_bytes")
        breach = None if memory is None else memory.breach(peak_seen, exit_peak)
        return ProcessOutcome(
            running.returncode,
            timed_out,
            end - start,
            protocol.stdout,
            protocol.stderr,
            usage=_with_the_stop(metrics, breach, snapshot),
            memory_breach=breach,
            snapshot=snapshot,
        )


class RunningScript:
    """The life of a started script, as an async context manager.

    Leaving the block in any way stops the script's whole tree unless it is already gone,
    forgets its group and closes the transport: a script never outlives the code that
    started it, whatever interrupted that code.
    """

    def __init__(
        self,
        transport: spawn.ScriptTransport,
        protocol: _ScriptProtocol,
        tree: ProcessTree,
        *,
        grace: float,
        cancelled: bool = False,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._tree = tree
        self._grace = grace
        self._cancelled = cancelled

    @classmethod
    async def start(
        cls,
        protocol: _ScriptProtocol,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        tree: ProcessTree,
        grace: float,
        preexec: Optional[Callable[[], None]] = None,
    ) -> RunningScript:
        """Start ``argv``; a cancellation during the start still returns the started script,
        which then raises ``CancelledError`` on entering its block (and so is stopped).
        ``preexec`` runs in the child before it executes the script."""
        transport, cancelled = await _uninterrupted(
            spawn.start(protocol, argv, cwd=str(cwd), env=env, preexec=preexec)
        )
        tree.pgid = transport.get_pid()
        tree.register()  # before any await, so an emergency stop can reach it
        return cls(transport, protocol, tree, grace=grace, cancelled=cancelled)

    @property
    def returncode(self) -> Optional[int]:
        return self._transport.get_returncode()

    @property
    def pid(self) -> int:
        return self._transport.get_pid()

    def started_at(self, *, default: float) -> float:
        """When the script started, on the loop's clock (``default`` where unknown)."""
        return spawn.started_at(self._transport, default)

    @property
    def exit_usage(self) -> Optional[spawn.ExitUsage]:
        """The kernel's count for the reaped script, where known."""
        return spawn.exit_usage(self._transport)

    async def __aenter__(self) -> RunningScript:
        if self._cancelled:
            await self.__aexit__(asyncio.CancelledError, None, None)
            raise asyncio.CancelledError
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        try:
            if exc_type is not None:
                await self._stop_after_interruption()
        finally:
            self._transport.close()  # also after a second cancellation, which kills at once
            self._tree.unregister()  # stopped or killed: a later emergency stop must not reach
            # the group's number, which may name another process's group by then

    async def stop(self, *, grace: float, then_wait: float) -> None:
        """Stop the whole tree (SIGTERM, ``grace``, SIGKILL) and wait for the leader's exit."""
        await self._tree.stop(grace)
        await _wait(self._protocol.exited, then_wait)

    async def kill(self, *, then_wait: float) -> None:
        """SIGKILL the whole tree at once (its group before any look at the process table),
        and wait for the leader's exit."""
        await self._tree.kill()
        await _wait(self._protocol.exited, then_wait)

    async def release_pipes(self, *, stopped: bool) -> None:
        """Once the script exited, stop what it left in its group or holding its pipes, so the
        output ends (a background child would otherwise keep the pipes open). A tree that was
        ``stopped`` already is not stopped again: its group was SIGKILLed, and the kill went on
        until a look found nothing alive or gave up on what it cannot kill."""
        if stopped:
            await _wait(self._protocol.drained, self._grace)
        elif not self._tree.group_is_empty() or not await _wait(
            self._protocol.drained, _DRAIN_SECONDS
        ):
            await self._tree.stop(self._grace)
            await _wait(self._protocol.drained, self._grace)

    async def _stop_after_interruption(self) -> None:
        """Stop the group when the run was cancelled or failed (the run's final sweep stops
        what left it), and read what is left in its pipes; a second cancellation kills the
        whole tree at once."""
        try:
            await self._tree.stop_group(self._grace, self._protocol.exited)
            await _wait(self._protocol.exited, _REAP_SECONDS)
            # what the script printed before it was stopped may still sit in its pipes
            await _wait(self._protocol.drained, _REAP_SECONDS)
        except BaseException:
            self._tree.kill_now()
            raise


def _with_the_stop(
    metrics: Dict[str, Any], breach: Optional[MemoryBreach], snapshot: Optional[Snapshot]
) -> Dict[str, Any]:
    """The metrics of a tree stopped before the sampler's first look at it, or between two,
    with what the stop saw: the peak that broke the memory limit and the processes in the
    picture. A script stopped at its limit in 0.2 s had a peak of 0 and one process beside an
    error naming a peak of 68 MiB and a picture of two."""
    if not metrics:
        return metrics
    seen = dict(metrics)
    if breach is not None and breach.peak is not None:
        seen["peak_rss_bytes"] = max(seen.get("peak_rss_bytes") or 0, breach.peak)
    if snapshot is not None:
        seen["processes"] = max(seen.get("processes") or 0, process_count(snapshot))
    return seen


@contextlib.contextmanager
def _sampled(
    sampler: Optional[ResourceSampler],
    tree: ProcessTree,
    setup_step: bool,
    demand_known: bool,
    kind: Optional[str],
) -> Iterator[Optional[TreeUsage]]:
    """Sample the tree while the block runs (no sampling without a sampler)."""
    if sampler is None or tree.pgid is None:
        yield None
        return
    usage = sampler.watch(tree.pgid, script=not setup_step, tells=not demand_known, kind=kind)
    try:
        yield usage
    finally:
        sampler.forget(usage)


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


async def _wait_first(
    exited: asyncio.Future[None], breached: Optional[asyncio.Future[Any]], timeout: float
) -> None:
    """Wait until the script exits, its memory limit is breached, or ``timeout`` passes."""
    if breached is None:
        await _wait(exited, timeout)
    elif not exited.done() and not breached.done():
        await asyncio.wait({exited, breached}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)


async def _wait(future: asyncio.Future[None], timeout: float) -> bool:
    """Wait for ``future`` up to ``timeout`` seconds without cancelling it; True if it is done."""
    if not future.done():
        await asyncio.wait({future}, timeout=timeout)
    return future.done()
