"""What a script's process tree used while it ran: peak memory, CPU time, processes.

One sampler serves a whole run: every tick it reads the process table once, however many
scripts run, and then looks at the processes of each running script's tree.
A tree is the script, its descendants, and every process seen in it before (an escapee that
was re-parented stays tracked). Limits, by construction of sampling: a process that starts and
ends between two ticks is not seen, unless it was waited for by a member of the tree, whose
"children" CPU time then includes it; the CPU time the script itself spends after the last
tick is lost, because asyncio reaps it before it can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any, DefaultDict, Dict, List, Mapping, Optional, Set

import psutil

#: Seconds between two samples of the running trees.
SAMPLE_SECONDS = 0.1

ChildrenMap = Mapping[int, List[psutil.Process]]


class TreeUsage:
    """The resources one script's tree has used so far, from the samples taken."""

    def __init__(self, pid: int) -> None:
        self.peak_rss_bytes = 0
        self.cpu_seconds = 0.0
        self.seen: Set[psutil.Process] = set()
        self._tracked: Set[psutil.Process] = set()
        try:
            self._root: Optional[psutil.Process] = psutil.Process(pid)
        except psutil.Error:  # already gone: it still counts as one process
            self._root = None

    def metrics(self) -> Dict[str, Any]:
        """``peak_rss_bytes`` (the largest sum over the tree at one sample), ``cpu_seconds``
        (user plus system, waited-for children included) and ``processes`` (distinct ones)."""
        return {
            "peak_rss_bytes": self.peak_rss_bytes,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "processes": max(1, len(self.seen)),
        }

    def sample(self, children: Optional[ChildrenMap] = None) -> None:
        """Add one sample; without a map of children, of the processes already known."""
        rss = 0
        cpu = 0.0
        self._tracked = self._members(children or {})
        for proc in self._tracked:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.seen.add(proc)
            cpu += times.user + times.system + times.children_user + times.children_system
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        self.cpu_seconds = max(self.cpu_seconds, cpu)

    def _members(self, children: ChildrenMap) -> Set[psutil.Process]:
        """The root and the processes of the last sample, if still there, and their
        descendants."""
        roots = [p for p in (self._root, *self._tracked) if p is not None and _running(p)]
        members: Set[psutil.Process] = set()
        while roots:
            proc = roots.pop()
            if proc not in members:
                members.add(proc)
                roots.extend(children.get(proc.pid, ()))
        return members


class ResourceSampler:
    """Samples every watched tree on one timer task, which runs only while a tree is watched."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self._interval = interval
        self._watched: List[TreeUsage] = []
        self._task: Optional[asyncio.Task[None]] = None

    def watch(self, pid: int) -> TreeUsage:
        """Start sampling the tree of ``pid``, with a first sample of the process itself."""
        usage = TreeUsage(pid)
        usage.sample()
        self._watched.append(usage)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._sample_periodically())
        return usage

    def finish(self, usage: TreeUsage) -> Dict[str, Any]:
        """Take a last sample of the processes already known, stop sampling the tree, and return
        its metrics. No new look for descendants here: that is a pass over the whole process
        table, which per finishing script would dominate the cost of short scripts."""
        usage.sample()
        self.forget(usage)
        return usage.metrics()

    def forget(self, usage: TreeUsage) -> None:
        """Stop sampling a tree (nothing happens if it is not watched)."""
        with contextlib.suppress(ValueError):
            self._watched.remove(usage)

    async def aclose(self) -> None:
        """Stop the timer task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sample_periodically(self) -> None:
        """Each tick, read the process table in a thread: on the loop, that pass would delay
        noticing the scripts that exit meanwhile, and so lengthen their reported durations."""
        loop = asyncio.get_running_loop()
        while self._watched:
            await asyncio.sleep(self._interval)
            children = await loop.run_in_executor(None, children_map)
            for usage in list(self._watched):
                usage.sample(children)


def children_map() -> DefaultDict[int, List[psutil.Process]]:
    """Every process by its parent's pid, from one pass over the process table (as much of it
    as could be read: a sample must never break a run)."""
    found: DefaultDict[int, List[psutil.Process]] = defaultdict(list)
    with contextlib.suppress(psutil.Error, OSError):
        for proc in psutil.process_iter(["ppid"]):
            ppid = proc.info.get("ppid")
            if ppid is not None:
                found[ppid].append(proc)
    return found


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running()
    except psutil.Error:
        return False
