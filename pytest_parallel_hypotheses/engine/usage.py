"""What a script's process tree used while it ran: peak memory, CPU time, processes.

One sampler serves a whole run: every tick it reads the process table once, however many
scripts run, and then looks at the processes of each running script's tree.
A tree is the script, its descendants, and every process seen in it before (an escapee that
was re-parented stays tracked). Limits, by construction of sampling: a process that starts and
ends between two ticks is not seen, unless it was waited for by a member of the tree, whose
"children" CPU time then includes it. Where the runner reaps the script itself (pidfds), the
kernel's count for it, as ``wait4`` returns it, fills in what the samples missed: a tree is
first sampled once it has run a whole tick, so a script shorter than that costs no sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections import defaultdict
from typing import (
    Any,
    Callable,
    DefaultDict,
    Dict,
    Hashable,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

import psutil

from ..core.diagnosis import SHARE_MIN_AGE
from .spawn import ExitUsage, oom_first
from .tasks import stop_task

#: Seconds between two samples of the running trees.
SAMPLE_SECONDS = 0.1
_PROC = "/proc"

#: The pids of every process's children, by the parent's pid.
ChildrenMap = Mapping[int, List[int]]


class TreeLook(NamedTuple):
    """One look at a running tree, for ``auto``: how many of its processes run or wait for
    a CPU now, and whether what it wants tells what a script not known yet will want. A
    worktree's setup step does not, nor does a script known from an earlier run: those
    start by what they are known to want, and the sleepers among them, judged first, made
    every script not known look idle. ``kind`` is the digest of a script's text (None for a
    setup step): a script's demand tells what the scripts of the same text will want."""

    runnable: int
    tells: bool
    kind: Optional[str] = None


class TreeUsage:
    """The resources one tree (a script's, or a worktree's setup step's) has used so far,
    from the samples taken."""

    def __init__(
        self,
        pid: int,
        since: float = 0.0,
        *,
        script: bool = True,
        tells: bool = True,
        kind: Optional[str] = None,
    ) -> None:
        self.pid = pid
        #: False for a worktree's setup step.
        self.script = script
        #: Whether what it wants tells what a script not known yet will want (see TreeLook).
        self.tells = script and tells
        #: The digest of its script's text (see TreeLook).
        self.kind = kind if script else None
        #: When the watch began (the loop's clock).
        self.since = since
        self.peak_rss_bytes = 0
        self.cpu_seconds = 0.0
        #: The largest share of its life a process of the tree had waited for a CPU, at any
        #: sample (None: none was old enough to tell). A process that waited, then ended (a
        #: starved step before the script sleeps) counts: the picture at a deadline sees
        #: only the processes still there.
        self.cpu_wait_share: Optional[float] = None
        #: How long each process of the tree had waited for a CPU, at its last sample (those
        #: half a second old or more): with the CPU time, what the tree wanted of the CPUs.
        self._waited: Dict[psutil.Process, float] = {}
        self.seen: Set[psutil.Process] = set()
        self._tracked: Set[psutil.Process] = set()
        #: Looked up at the first sample: a script shorter than a tick costs no lookup.
        self._root: Optional[psutil.Process] = None
        self._sampled = False

    def add_exit_usage(self, cpu_seconds: float, max_rss_bytes: Optional[int]) -> None:
        """Take in the kernel's count for the reaped script (its largest process's peak, where
        known, and CPU time with its waited-for descendants): exact where sampling saw
        little."""
        self.peak_rss_bytes = max(self.peak_rss_bytes, max_rss_bytes or 0)
        self.cpu_seconds = max(self.cpu_seconds, cpu_seconds)

    def metrics(self) -> Dict[str, Any]:
        """``peak_rss_bytes`` (the largest sum over the tree at one sample), ``cpu_seconds``
        (user plus system, waited-for children included), ``processes`` (distinct ones), and
        ``cpu_wait_share`` when a process was old enough to tell."""
        metrics: Dict[str, Any] = {
            "peak_rss_bytes": self.peak_rss_bytes,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "processes": max(1, len(self.seen)),
        }
        if self.cpu_wait_share is not None:
            metrics["cpu_wait_share"] = round(self.cpu_wait_share, 3)
            metrics["cpu_waited_seconds"] = round(sum(self._waited.values()), 3)
        return metrics

    def sample(
        self, children: Optional[ChildrenMap] = None, clock: Optional[BootClock] = None
    ) -> None:
        """Add one sample; without a map of children, of the processes already known (none
        before the first sample with a map). With the ``clock`` of the boot, the processes'
        figures come from their ``/proc`` entries, and their waits for a CPU are noted."""
        if children is None and not self._sampled:
            return
        if not self._sampled:
            self._sampled = True
            with contextlib.suppress(psutil.Error):  # gone already: it counts as one process
                self._root = psutil.Process(self.pid)
        rss = 0
        largest = 0
        cpu = 0.0
        self._tracked = self._members(children or {})
        for proc in self._tracked:
            times = _times(proc, clock)
            if times is None:
                continue
            if proc not in self.seen:
                self.seen.add(proc)
                oom_first(proc.pid)  # it may have forked before the script's score was set
            cpu += times.cpu + times.children_cpu
            self._note_wait(proc, times.age)
            with contextlib.suppress(OSError, ValueError):
                now, peak = _resident(proc.pid)
                rss += now
                largest = max(largest, peak)
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss, largest)
        self.cpu_seconds = max(self.cpu_seconds, cpu)

    def _note_wait(self, proc: psutil.Process, age: Optional[float]) -> None:
        """Keep how long ``proc`` has waited for a CPU, and the largest share of its life
        (``age``) a process waited."""
        waited = None if age is None or age < SHARE_MIN_AGE else cpu_wait(proc.pid)
        if age is not None and waited is not None:
            self._waited[proc] = waited
            self.cpu_wait_share = max(self.cpu_wait_share or 0.0, waited / age)

    def runnable(self) -> int:
        """How many processes of the tree run or wait for a CPU now: the script and its
        descendants, looked up from the script at each look (its shell waits while the
        commands it started work, and a ``make test`` whose grandchild works is seen at once,
        not at the next sample), and those of the last sample that left them (a daemon) with
        their own descendants."""
        members = set(descendant_pids(self.pid))
        for proc in self._tracked:
            if proc.pid not in members:
                members.update(descendant_pids(proc.pid))
        return sum(_pid_runnable(member) for member in members)

    def _members(self, children: ChildrenMap) -> Set[psutil.Process]:
        """The root and the processes of the last sample, if still there, and their
        descendants."""
        return descendants((self._root, *self._tracked), children)


class ResourceSampler:
    """Samples every watched tree on one timer task, which runs only while a tree is watched."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self._interval = interval
        self._watched: List[TreeUsage] = []
        self._task: Optional[asyncio.Task[None]] = None
        #: How many scripts' trees have finished (setup steps are not counted).
        self.scripts_finished = 0

    def watch(
        self, pid: int, *, script: bool = True, tells: bool = True, kind: Optional[str] = None
    ) -> TreeUsage:
        """Start sampling the tree of ``pid`` (a script's of the ``kind`` of text, or with
        ``script`` False a setup step's; with ``tells`` False one whose demand tells nothing
        of the scripts not known yet) at the first tick after it has run a whole interval:
        most scripts of a spawn-bound run end sooner, and cost no sample at all."""
        loop_time = asyncio.get_running_loop().time()
        usage = TreeUsage(pid, loop_time, script=script, tells=tells, kind=kind)
        self._watched.append(usage)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._sample_periodically())
        return usage

    def finish(self, usage: TreeUsage, exited: Optional[ExitUsage] = None) -> Dict[str, Any]:
        """Take a last sample of the processes already known and the kernel's count for the
        reaped script (``exited``), stop sampling the tree, and return its metrics. No new
        look for descendants here: that is a pass over the whole process table, which per
        finishing script would dominate the cost of short scripts."""
        usage.sample(clock=boot_clock())
        if exited is not None:
            usage.add_exit_usage(exited.cpu_seconds, exited.max_rss_bytes)
        self.forget(usage)
        if usage.script:
            self.scripts_finished += 1
        return usage.metrics()

    def runnable(self) -> Dict[Hashable, TreeLook]:
        """How many processes of each watched tree run or wait for a CPU now, and whether it
        tells what a script not known yet will want: the CPUs the scripts and setup steps
        want, whatever else loads the machine. Safe from another thread: it reads a copy of
        the watched trees, and each tree's last sample is replaced, never changed in place."""
        return {
            usage: TreeLook(usage.runnable(), usage.tells, usage.kind)
            for usage in list(self._watched)
        }

    def forget(self, usage: TreeUsage) -> None:
        """Stop sampling a tree (nothing happens if it is not watched)."""
        with contextlib.suppress(ValueError):
            self._watched.remove(usage)

    async def aclose(self) -> None:
        """Stop the timer task."""
        task, self._task = self._task, None
        await stop_task(task)

    async def _sample_periodically(self) -> None:
        """Each tick, read the process table in a thread: on the loop, that pass would delay
        noticing the scripts that exit meanwhile, and so lengthen their reported durations."""
        loop = asyncio.get_running_loop()
        while self._watched:
            await asyncio.sleep(self._interval)
            due = [u for u in self._watched if loop.time() - u.since >= self._interval]
            if not due:
                continue  # the pass over the process table costs more than these scripts
            children = await asyncio.to_thread(children_map)
            still = set(self._watched)  # not finished meanwhile
            clock = boot_clock()
            for usage in due:
                if usage in still:
                    usage.sample(children, clock)


def descendants(
    roots: Iterable[Optional[psutil.Process]], children: ChildrenMap
) -> Set[psutil.Process]:
    """The live ``roots`` and all their descendants, by the map of children."""
    known = {proc.pid: proc for proc in roots if proc is not None}
    stack = [proc for proc in known.values() if _running(proc)]
    members: Set[psutil.Process] = set()
    while stack:
        proc = stack.pop()
        if proc in members:
            continue
        members.add(proc)
        for pid in children.get(proc.pid, ()):
            child = known.get(pid)
            if child is None:
                with contextlib.suppress(psutil.Error):
                    child = known[pid] = psutil.Process(pid)
            if child is not None:
                stack.append(child)
    return members


def descendant_pids_in(roots: Iterable[int], children: ChildrenMap) -> List[int]:
    """The ``roots`` and all their descendants, by the map of children."""
    return _walk(roots, lambda pid: children.get(pid, ()))


def children_map() -> DefaultDict[int, List[int]]:
    """The pids of every process's children, from one pass over the process table (as much of
    it as could be read: a sample must never break a run).

    Read from ``/proc/PID/stat`` directly where it exists: psutil's iteration costs about
    ten times as much, and this runs every tick of a busy run, off the event loop's thread.
    """
    found: DefaultDict[int, List[int]] = defaultdict(list)
    if not os.path.isdir(_PROC):
        with contextlib.suppress(psutil.Error, OSError):
            for proc in psutil.process_iter(["ppid"]):
                ppid = proc.info.get("ppid")
                if ppid is not None:
                    found[ppid].append(proc.pid)
        return found
    with contextlib.suppress(OSError), os.scandir(_PROC) as entries:
        for entry in entries:
            if entry.name.isdigit():
                ppid = _ppid(entry.name)
                if ppid is not None:
                    found[ppid].append(int(entry.name))
    return found


def _ppid(pid: str) -> Optional[int]:
    """The parent's pid in /proc/PID/stat (after the command name, which may hold anything)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as stat:
            return int(stat.read().rpartition(b")")[2].split(None, 2)[1])
    except (OSError, ValueError, IndexError):
        return None


def descendant_pids(pid: int) -> List[int]:
    """``pid`` and its descendants, from their ``/proc`` lists of children: a few reads per
    process, no pass over the process table."""
    return _walk([pid], _children_of)


def _walk(roots: Iterable[int], children_of: Callable[[int], Iterable[int]]) -> List[int]:
    """The ``roots`` and their descendants, each once, by ``children_of`` each."""
    found, stack, seen = [], list(roots), set()
    while stack:
        member = stack.pop()
        if member not in seen:
            seen.add(member)
            found.append(member)
            stack.extend(children_of(member))
    return found


def _children_of(pid: int) -> List[int]:
    """The children of ``pid``, as each of its threads started them."""
    try:
        threads = os.listdir(f"{_PROC}/{pid}/task")
    except OSError:
        return []
    children: List[int] = []
    for thread in threads:
        try:
            with open(f"{_PROC}/{pid}/task/{thread}/children", "rb") as listed:
                children.extend(int(child) for child in listed.read().split())
        except (OSError, ValueError):
            continue
    return children


def _resident(pid: int) -> Tuple[int, int]:
    """The process's resident memory now and the most it held since it executed its
    program (``VmRSS`` and ``VmHWM`` of ``/proc/PID/status``, in bytes): a peak between two
    samples is not lost while the process lives."""
    fields = {}
    with open(f"{_PROC}/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith((b"VmRSS:", b"VmHWM:")):
                name, value = line.split(b":", 1)
                fields[name] = int(value.split()[0]) * 1024
    return fields.get(b"VmRSS", 0), fields.get(b"VmHWM", 0)


#: The time since boot (``/proc/uptime``) and the clock ticks per second.
BootClock = Tuple[float, int]


def boot_clock() -> Optional[BootClock]:
    """The clock that a process's age is read on, counted from the boot as its start in
    ``/proc/PID/stat`` is: psutil's start time adds the boot time, which Linux gives in whole
    seconds, and ages came out up to a second too old (None where ``/proc`` does not say).
    It is the kernel's boot-time clock, which ``/proc/uptime`` shows too, read without
    opening that file: this is asked as each script finishes."""
    ticks = _clock_ticks()
    return None if ticks is None else (time.clock_gettime(time.CLOCK_BOOTTIME), ticks)


@functools.cache
def _clock_ticks() -> Optional[int]:
    """The ticks per second of ``/proc``'s times, where ``/proc`` and the boot-time clock
    exist (Linux)."""
    if not hasattr(time, "CLOCK_BOOTTIME") or not os.path.isdir(_PROC):
        return None
    return os.sysconf("SC_CLK_TCK")


class ProcessTimes(NamedTuple):
    """A process's age (None where unknown), its own CPU time and its waited-for
    children's, in seconds."""

    age: Optional[float]
    cpu: float
    children_cpu: float


def process_times(pid: int, clock: BootClock) -> Optional[ProcessTimes]:
    """The process's times from one read of its ``/proc/PID/stat``; None if it is gone."""
    since_boot, ticks = clock
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as stat:
            fields = [int(field) for field in stat.read().rpartition(b")")[2].split()[11:20]]
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) < 9:
        return None
    utime, stime, cutime, cstime, *_, started = fields
    return ProcessTimes(
        since_boot - started / ticks, (utime + stime) / ticks, (cutime + cstime) / ticks
    )


def _times(proc: psutil.Process, clock: Optional[BootClock]) -> Optional[ProcessTimes]:
    """The process's times from ``/proc`` with the boot's ``clock``, else from psutil
    (with no age); None if it is gone."""
    if clock is not None:
        return process_times(proc.pid, clock)
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return ProcessTimes(
        None, times.user + times.system, times.children_user + times.children_system
    )


def cpu_wait(pid: int) -> Optional[float]:
    """How long the process was ready to run but had no CPU (the kernel's run-queue wait in
    ``/proc/PID/schedstat``), in the thread that waited most: a script that timed out while
    it waited long for a CPU was short of the CPUs, not stuck. None where the kernel does not
    keep it."""
    waits = []
    for task in _tasks(pid):
        try:
            with open(f"{task}/schedstat", "rb") as schedstat:
                waits.append(int(schedstat.read().split()[1]))
        except (OSError, ValueError, IndexError):
            continue
    return round(max(waits) / 1e9, 3) if waits else None


def _pid_runnable(pid: int) -> int:
    """How many threads of the process run or wait for a CPU (state R). The process's own
    ``/proc/PID/stat`` tells its main thread's state only, which a program whose work runs
    in other threads (``cargo test``, a JVM, a thread pool) keeps asleep, waiting for them: a
    fault probe's six such scripts looked idle, started at once on 2 CPUs and timed out."""
    fields = _stat_fields(f"{_PROC}/{pid}")
    if len(fields) <= _THREADS_FIELD or fields[_THREADS_FIELD] == b"1":
        return int(fields[:1] == [b"R"])
    runnable = 0
    for task in _tasks(pid):  # 5 µs a thread: a JVM's hundreds are read while few are busy
        runnable += int(_stat_fields(task)[:1] == [b"R"])
        if runnable >= _MACHINE_CPUS:  # more tells the admission nothing
            break
    return runnable


#: The place of the thread count among ``/proc/PID/stat``'s fields after the command's name.
_THREADS_FIELD = 17
#: The machine's CPUs: a process with as many threads running keeps all of them busy.
_MACHINE_CPUS = os.cpu_count() or 1


def _stat_fields(folder: str) -> List[bytes]:
    """The fields of a process's or thread's ``stat`` in ``folder`` after its command's name,
    the state first (none once it is gone)."""
    try:
        with open(f"{folder}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()
    except OSError:
        return []


def _tasks(pid: int) -> List[str]:
    """The ``/proc`` folders of the process's threads (its own where they cannot be listed)."""
    folder = f"{_PROC}/{pid}/task"
    try:
        return [f"{folder}/{task}" for task in os.listdir(folder)]
    except OSError:
        return [f"{_PROC}/{pid}"]


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running()
    except psutil.Error:
        return False
