"""Memory limits on a script's whole process tree: by the kernel where a cgroup v2 with the
memory controller is delegated to us, else by a watchdog that samples the tree.

A script that allocates without bound must not take the machine, and pytest with it, down:
then no report at all is written. The kernel's limit (``memory.max``) is exact and costs
nothing. The watchdog reads the resident memory of every known process of each limited tree
every :data:`FAST_SECONDS` (past the limit, with the pages they share counted once), and looks
for new descendants every :data:`FULL_SECONDS` in one pass over the process table for all
trees; a process that allocates 1 GiB/s alone passes its limit by 20-40 MiB before it is
stopped, and a tree of hundreds of processes on a swamped machine by much more (see the
docs' "Memory limits").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import (
    AsyncIterator,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

import psutil

from ..core.numbers import most_known
from ..core.sizes import format_size, format_sizes
from . import machine
from .cgroup import CgroupError, CgroupParent, ScriptCgroup, memory_parent
from .tasks import stop_task
from .tree import Marker, ProcessTree, alive, marker_variables
from .usage import ChildrenMap, children_map, descendant_pids_in, descendants

logger = logging.getLogger(__name__)

#: Seconds between two reads of the limited trees' memory.
FAST_SECONDS = 0.02
#: The longest wait, after a breach, for the suspended processes to stop before the tree's
#: picture is taken.
FREEZE_SECONDS = 0.5
#: The states of a process that no longer runs.
_NOT_RUNNING = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, psutil.STATUS_ZOMBIE)
#: Seconds between two looks for new processes in the limited trees.
FULL_SECONDS = 0.1
#: The least time a tree's size with shared pages counted once is taken from its last walk.
WALK_SECONDS = 0.5
#: Seconds a killed cgroup may take to empty before it is left for the end of the run.
EMPTY_SECONDS = 2.0


@dataclass(frozen=True)
class MemoryBreach:
    """A tree stopped for its memory: the limit, the most it was seen using, and who
    stopped it (our watchdog, or the kernel's OOM killer)."""

    limit: int
    peak: Optional[int]
    by_kernel: bool
    #: False when the tree passed the limit between two of the watchdog's looks and ended
    #: before the next: the kernel's count at its exit tells it.
    stopped: bool = True

    def describe(self) -> str:
        """What happened, after ``script`` (the error of a tree its memory ended)."""
        limit, peak = self._sizes()
        if self.by_kernel:
            return (
                f"killed by the kernel's OOM killer at the memory limit of {limit}{peak}; its "
                "process tree was stopped"
            )
        if not self.stopped:
            return (
                f"exceeded the memory limit of {limit}{peak} between two looks of the watchdog "
                "and ended before it could be stopped: it ran over its limit"
            )
        return f"exceeded the memory limit of {limit}{peak}; its process tree was stopped"

    def after_deadline(self) -> str:
        """What happened, as a clause of the error of a tree stopped at its deadline."""
        limit, peak = self._sizes()
        if self.by_kernel:
            return f"the kernel's OOM killer killed it at its memory limit of {limit}{peak}"
        if not self.stopped:
            return f"it ran over its memory limit of {limit}{peak} between two looks"
        return f"as it stopped, it passed its memory limit of {limit}{peak} and was killed"

    def _sizes(self) -> Tuple[str, str]:
        """The limit, and `` (peak ...)`` where the peak is known, side by side."""
        if self.peak is None:
            return format_size(self.limit), ""
        limit, peak = format_sizes(self.limit, self.peak)
        return limit, f" (peak {peak})"


class _Walk(NamedTuple):
    """One walk of a tree's pages: when it began, the tree's resident sum and processes
    then, its size with shared pages counted once (once the walk is done), and how long it
    took."""

    at: float
    resident: int
    pids: FrozenSet[int]
    shared: asyncio.Future[int]
    took: float = 0.0


def _seen_margin(limit: int) -> int:
    """How much more than the watchdog last saw a process may have held without the look
    having missed anything: what a tree grows by between two looks while it settles."""
    return max(limit // 20, 4 * 1024 * 1024)


class _Watched:
    """One limited tree as the watchdog sees it."""

    def __init__(
        self,
        pid: int,
        limit: int,
        breached: asyncio.Future[MemoryBreach],
        marker: Optional[Marker] = None,
    ) -> None:
        self.limit = limit
        self.peak = 0
        #: The most the members' resident sizes added up to at a look, shared pages counted
        #: in each: past the limit, the watchdog judged that moment itself, pages counted once.
        self.resident_peak = 0
        self.breached = breached
        #: What the script's processes carry: a daemon that left the tree before a look at
        #: its descendants is found by it.
        self.marker = marker
        self.members: Set[psutil.Process] = set()
        with contextlib.suppress(psutil.Error):
            self.members.add(psutil.Process(pid))
        #: The last walk of the members' pages, past the limit, and the one under way.
        self._last_walk: Optional[_Walk] = None
        self._walk: Optional[_Walk] = None

    def adopt(self, marked: Iterable[Tuple[int, Mapping[str, str]]]) -> None:
        """Take in the processes started since the last look that carry the script's marker
        (``marked``: pids and their marker variables)."""
        if self.marker is None:
            return
        for pid, markers in marked:
            if self.marker.matches(markers):
                with contextlib.suppress(psutil.Error):
                    self.members.add(psutil.Process(pid))

    def refresh(self, children: ChildrenMap) -> None:
        """Add the descendants of every known member (escapees stay known once seen)."""
        self.members = descendants(self.members, children)

    def check(self) -> None:
        """Sum the members' resident memory; past the limit, freeze them and tell the waiting
        script. Frozen, the tree allocates no more while it is photographed and killed."""
        sizes: List[Tuple[int, psutil.Process]] = []
        for proc in list(self.members):
            try:
                sizes.append((proc.memory_info().rss, proc))
            except psutil.Error:
                self.members.discard(proc)
        total = sum(size for size, _proc in sizes)
        self.resident_peak = max(self.resident_peak, total)
        if total > self.limit:
            shared = self._shared_past_limit(total, sizes)
            if shared is None:  # under it with shared pages counted once, or still walking
                return
            total = shared
        self.peak = max(self.peak, total)
        if total > self.limit and not self.breached.done():
            for proc in self.members:
                with contextlib.suppress(psutil.Error):
                    proc.suspend()
            self.breached.set_result(MemoryBreach(self.limit, self.peak, by_kernel=False))

    def _shared_past_limit(
        self, resident: int, sizes: List[Tuple[int, psutil.Process]]
    ) -> Optional[int]:
        """The members' memory with each page they share counted once, if a walk of their
        pages found it past the limit; None while it is under it, or not known yet. Their
        ``resident`` sum (``sizes``: each member's) counts a shared page in each process: a
        process forked from a large one shares its pages, and a tree that forks workers
        would pass its limit on paper only.

        A walk costs a tenth of a second for a few GiB, and seconds for hundreds of
        processes on a swamped machine: it runs off the loop while the other trees are
        checked, largest process first, stopping once past the limit, and again only when
        the tree may have passed it. While the same processes share the same pages, the
        tree's size grows no more than its resident sum, so the last walk, plus what the
        sum gained since, bounds it, until the walk is :data:`WALK_SECONDS` old, or ten
        times as old as it took. A process that joins or leaves ends that: the pages a
        process that ended shared are the survivors' alone, and their size grows as their
        resident sum falls."""
        walk, loop = self._walk, asyncio.get_running_loop()
        if walk is not None and walk.shared.done():
            self._walk, self._last_walk = None, walk._replace(took=loop.time() - walk.at)
        last, pids = self._last_walk, frozenset(proc.pid for _size, proc in sizes)
        if last is not None:
            shared = last.shared.result()
            if shared > self.limit:
                return shared
            fresh = loop.time() - last.at < max(WALK_SECONDS, 10 * last.took)
            if fresh and last.pids == pids and shared + resident - last.resident <= self.limit:
                return None
        if self._walk is None:
            largest_first = [proc for _size, proc in sorted(sizes, key=lambda pair: -pair[0])]
            shared_size = loop.run_in_executor(None, _proportional, largest_first, self.limit)
            self._walk = _Walk(loop.time(), resident, pids, shared_size)
        return None

    def outlived(self) -> bool:
        """True if a member is still alive once the script has ended."""
        return any(alive(proc) for proc in list(self.members))

    def stopped(self) -> bool:
        """True once no member runs any more (each stopped, or gone)."""
        for proc in list(self.members):
            with contextlib.suppress(psutil.Error):
                if proc.status() not in _NOT_RUNNING:
                    return False
        return True


def _proportional(members: Iterable[psutil.Process], limit: int) -> int:
    """The ``members``' proportional sizes added up (a resident size where it is unknown),
    or as soon as they pass ``limit``, what they added up to then: the least the tree
    holds, which decides. Given the largest first, a tree of many small processes past
    its limit is decided after a few walks, not hundreds."""
    total = 0
    for proc in members:
        share = _proportional_size(proc.pid)
        if share is None:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        else:
            total += share
        if total > limit:
            break
    return total


def _proportional_size(pid: int) -> Optional[int]:
    """The process's proportional set size (``Pss`` of ``/proc/PID/smaps_rollup``: each page
    divided among the processes that share it), None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryWatchdog:
    """Samples every limited tree of a run on one task, which runs while a tree is watched."""

    def __init__(self) -> None:
        self._watched: List[_Watched] = []
        self._task: Optional[asyncio.Task[None]] = None
        #: The processes of the last look: only those started since have their markers read.
        self._listed: Set[int] = set()

    def watch(self, pid: int, limit: int, marker: Optional[Marker] = None) -> _Watched:
        loop = asyncio.get_running_loop()
        watched = _Watched(pid, limit, loop.create_future(), marker)
        self._watched.append(watched)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._sample())
        return watched

    def forget(self, watched: _Watched) -> None:
        with contextlib.suppress(ValueError):
            self._watched.remove(watched)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _sample(self) -> None:
        """Check every tree every :data:`FAST_SECONDS`, and look for new processes every
        :data:`FULL_SECONDS`. A look reads the whole process table off the loop, which takes
        long when thousands of processes run; the checks of the processes known go on
        meanwhile, or a tree would grow unchecked for that long."""
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        look: Optional[asyncio.Future[_Look]] = None
        try:
            while self._watched:
                if look is None and loop.time() >= next_full:
                    known = {proc.pid for watched in self._watched for proc in watched.members}
                    look = loop.run_in_executor(None, _look, self._listed, known)
                if look is not None and look.done():
                    children, self._listed, marked = look.result()
                    look = None
                    for watched in self._watched:
                        watched.adopt(marked)
                        watched.refresh(children)
                    next_full = loop.time() + FULL_SECONDS
                for watched in list(self._watched):
                    watched.check()
                await asyncio.sleep(FAST_SECONDS)
        finally:
            if look is not None:
                look.cancel()


#: One look at the process table: the children of each process, every pid, and the marker
#: variables of the processes that carry some.
_Look = Tuple[ChildrenMap, Set[int], List[Tuple[int, Dict[str, str]]]]


def _look(listed: Set[int], known: Set[int]) -> _Look:
    """One pass over the process table: the children of each process, every pid, and the
    marker variables of the processes not ``listed`` before (each is read once). A new
    descendant of a ``known`` member is found through its parent: its markers are not read,
    which spares thousands of reads when a tree starts thousands of processes, until a look
    no longer reaches it that way."""
    children = children_map()
    pids = {pid for kids in children.values() for pid in kids}
    reached = set(descendant_pids_in(known, children))
    marked = [(pid, marker_variables(pid)) for pid in pids - listed - reached]
    # a process reached is not listed: if its tree does not take it in (the process between
    # them ended before the tree was followed), the next look reads its markers
    return children, pids - reached, [(pid, markers) for pid, markers in marked if markers]


class OomKillCount:
    """The count of OOM kills where the scripts run (their cgroup, else the machine), read
    at each script's start and after it ended on its own: a rise means the kernel killed
    processes while it ran, maybe its own. A reading at a start serves the starts of the
    next :data:`FAST_SECONDS`, so that 400 scripts started at once read the file a few
    times: a kill just before a script started counts for it, which can only make its
    outcome inconclusive, never a verdict. The kernel counts a kill before it sends the
    SIGKILL, so the reading after the exit sees every kill the outcome may come from."""

    def __init__(self) -> None:
        self._read_at = -math.inf
        self._count: Optional[int] = None

    def at_start(self) -> Optional[int]:
        """The count as a script is about to start (a reading of the last
        :data:`FAST_SECONDS` serves)."""
        now = time.monotonic()
        if now - self._read_at > FAST_SECONDS:
            self._read_at, self._count = now, machine.oom_kills()
        return self._count

    @staticmethod
    def since(start: Optional[int]) -> int:
        """How many processes the kernel's OOM killer killed since ``start`` (a count of
        :meth:`at_start`; 0 where the count cannot be read)."""
        now = machine.oom_kills()
        return 0 if start is None or now is None else max(0, now - start)


class MemoryGuard:
    """How a run enforces memory limits: decided once, said in the header."""

    def __init__(self, parent: Optional[CgroupParent], fallback_reason: str) -> None:
        self._parent = parent
        self.fallback_reason = fallback_reason
        self.watchdog = MemoryWatchdog()
        self.oom_kills = OomKillCount()
        #: The scripts' cgroups still populated when their scripts ended.
        self.left: Set[ScriptCgroup] = set()

    async def aclose(self) -> None:
        """Stop the watchdog, and remove the scripts' cgroups that were not empty yet when
        their scripts ended (a process the kill had not ended yet)."""
        await self.watchdog.aclose()
        left, self.left = self.left, set()
        for cgroup in left:
            if not await _emptied(cgroup):
                logger.warning("cannot remove cgroup %s: processes are still in it", cgroup.path)

    @classmethod
    def for_this_process(cls, *, limits: bool) -> MemoryGuard:
        """The guard of this process's runs; ``limits`` when a run limits memory, which
        alone may claim a cgroup delegated to this process (see :func:`.cgroup.claim`)."""
        parent, reason = memory_parent(claim_delegated=limits)
        return cls(parent, reason)

    @property
    def by_kernel(self) -> bool:
        return self._parent is not None

    @property
    def kind(self) -> str:
        """What enforces a limit, in a word for the reports: ``cgroup`` or ``watchdog``."""
        return "cgroup" if self.by_kernel else "watchdog"

    def describe(self) -> str:
        """Which enforcement is in force, and why not the kernel's."""
        parent = self._parent
        if parent is not None and parent.leaf is not None:
            return (
                f"enforced by cgroup v2 memory.max under {parent.path}, delegated to this "
                f"session, whose processes are in its leaf {parent.leaf.name}"
            )
        if parent is not None:
            return f"enforced by cgroup v2 memory.max under {parent.path}"
        return f"enforced by a watchdog sampling every {FAST_SECONDS:g} s ({self.fallback_reason})"

    @contextlib.asynccontextmanager
    async def limited(self, limit: Optional[int]) -> AsyncIterator[LimitedScript]:
        """One script's limit for the time of its run: its cgroup, or the watchdog's watch."""
        script = LimitedScript(self, limit)
        try:
            yield script
        finally:
            await script.close()

    def cgroup(self, limit: int) -> Optional[ScriptCgroup]:
        """A cgroup for one script; None (and the watchdog) when it cannot be made."""
        if self._parent is None:
            return None
        try:
            return ScriptCgroup.create(self._parent, memory_max=limit)
        except CgroupError as error:
            logger.warning("%s; the memory limit falls back to the watchdog", error)
            return None


async def _emptied(cgroup: ScriptCgroup) -> bool:
    """Kill what is left in ``cgroup`` until it is empty (a killed process takes a moment to
    go), for up to :data:`EMPTY_SECONDS`, and remove it; False if it stays."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + EMPTY_SECONDS
    while cgroup.is_populated() and loop.time() < deadline:
        cgroup.kill()
        await asyncio.sleep(FAST_SECONDS / 4)
    return cgroup.close()


class LimitedScript:
    """The memory limit of one script: set up before the spawn, watched while it runs,
    judged after it exits."""

    def __init__(self, guard: MemoryGuard, limit: Optional[int]) -> None:
        self.limit = limit
        self._guard = guard
        self._cgroup = None if limit is None else guard.cgroup(limit)
        self._watched: Optional[_Watched] = None
        self._oom_kills_before = guard.oom_kills.at_start()

    @property
    def enclosure(self) -> Optional[ScriptCgroup]:
        """The script's cgroup, which holds every process it starts: stopping its tree kills
        the cgroup too (None under the watchdog)."""
        return self._cgroup

    def oom_kills_meanwhile(self) -> int:
        """How many processes the kernel's OOM killer killed where the scripts run since the
        script was about to start (read now: ask once it has exited)."""
        return OomKillCount.since(self._oom_kills_before)

    def joiner(self) -> Optional[Callable[[], None]]:
        """What the child runs before exec to join its cgroup (None without one)."""
        return None if self._cgroup is None else self._cgroup.joiner()

    def started(
        self, pid: int, marker: Optional[Marker] = None
    ) -> Optional[asyncio.Future[MemoryBreach]]:
        """The script runs as ``pid``, its processes carrying ``marker``: a future set if the
        watchdog sees it pass its limit."""
        if self._cgroup is not None:
            self._cgroup.release_joiner()
            return None
        if self.limit is None:
            return None
        self._watched = self._guard.watchdog.watch(pid, self.limit, marker)
        return self._watched.breached

    async def frozen(self) -> None:
        """After the watchdog's breach, return once every process it suspended has stopped,
        or after :data:`FREEZE_SECONDS`: a SIGSTOP takes effect when the process next runs,
        which on a loaded machine may come after the picture of the tree is taken."""
        if self._watched is None or not self._watched.breached.done():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FREEZE_SECONDS
        while not self._watched.stopped() and loop.time() < deadline:
            await asyncio.sleep(FAST_SECONDS / 4)

    def kill_members(self) -> None:
        """SIGKILL every process the watchdog counted (frozen at the breach): one that left
        both the script's group and its marker would be found by no other look."""
        if self._watched is not None:
            for proc in self._watched.members:
                with contextlib.suppress(psutil.Error):
                    proc.kill()

    def breach(self, peak_seen: Optional[int], exit_peak: Optional[int]) -> Optional[MemoryBreach]:
        """After the exit: the breach, if the watchdog or the kernel stopped the tree, or if
        the kernel's count at the exit (``exit_peak``: the most one of the script's processes
        it waited for held) shows the watchdog missed it, having never seen the tree about
        that large: a spike shorter than its looks still ran the script over its limit, and
        what the script did then is no verdict."""
        if self._watched is not None and self._watched.breached.done():
            # one peak in the error and the metrics: what any look saw at the most (a trial
            # read 504.1 MiB in one and 510.3 MiB in the other)
            stop = self._watched.breached.result()
            return dataclasses.replace(stop, peak=most_known(stop.peak, peak_seen))
        if self._cgroup is not None and self.limit is not None and self._cgroup.oom_kills():
            peak = most_known(self._cgroup.peak_memory(), peak_seen)
            return MemoryBreach(self.limit, peak, by_kernel=True)
        watched, limit, peak = self._watched, self.limit, exit_peak or 0
        if watched is None or limit is None or peak <= limit:
            return None
        if peak <= watched.resident_peak + _seen_margin(limit):  # seen at about that size,
            return None  # and judged with its shared pages counted once (a file many map)
        return MemoryBreach(limit, peak, by_kernel=False, stopped=False)

    async def close(self) -> None:
        """Stop watching, and kill what the script left (a daemon), which no limit would hold
        once its script is gone: the watchdog's members still alive, with a sweep of the
        marker after them, or what is left in the cgroup, whose removal waits until it is
        empty (a killed process takes a moment to go)."""
        watched, self._watched = self._watched, None
        if watched is not None:
            self._guard.watchdog.forget(watched)
            if watched.marker is not None and watched.outlived():
                await ProcessTree(watched.marker).kill()
        cgroup, self._cgroup = self._cgroup, None
        if cgroup is not None and not await _emptied(cgroup):
            self._guard.left.add(cgroup)  # removed at the end of the run, once empty
