"""Finding and stopping every process a script started, including those that left its group.

Each script leads its own session, so one ``killpg`` reaches everything that stayed in its
process group. Descendants that called ``setsid`` (daemons, double forks) escape the group; they
are found by a marker variable the runner puts in each script's environment, which every
descendant inherits. Zombies count as dead: on machines whose init never reaps, orphans stay
zombies forever and must not make a run wait.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Protocol, Set, Tuple

import psutil

_POLL_SECONDS = 0.02
#: The longest pause between looks at whether a stopping tree is gone: many trees stopping at
#: once would otherwise spend the loop on these looks. The grace still ends on time.
_POLL_MAX_SECONDS = 0.16
_KILL_ROUNDS = 5
_KILL_SETTLE_SECONDS = 1.0
#: At most this many looks at the process table while finding a tree (each reads fewer).
_LOOKS = 50
#: Looks in a row that must find no new member before a tree counts as found: a link of a
#: fork-and-exit chain can exit while a look reads it, its successor born after that look's
#: listing, and on a busy machine one look then misses the chain (a listing of /proc costs
#: a millisecond).
_QUIET_LOOKS = 3

#: How the names of the runs' marker variables begin.
MARKER_PREFIX = "PPH_RUN_"

_live_groups: Set[int] = set()
_live_lock = threading.Lock()


@dataclass(frozen=True)
class Marker:
    """An environment variable that tags every process of a run (``value`` None: any value).

    With ``prefix``, ``name`` is the start of the variable's name: one such marker finds the
    processes of many runs, such as every run of every pytest-xdist worker of one session.
    """

    name: str
    value: Optional[str] = None
    prefix: bool = False

    def found_in(self, proc: psutil.Process) -> bool:
        try:
            environ = _environ_markers(proc.pid)
        except (psutil.Error, OSError):
            return False
        return environ is not None and self.matches(environ)

    def matches(self, environ: Mapping[str, str]) -> bool:
        """True when ``environ`` (a process's marker variables) carries this marker."""
        if self.prefix:
            return any(name.startswith(self.name) for name in environ)
        if self.value is None:
            return self.name in environ
        return environ.get(self.name) == self.value


#: The marker variables of each process seen, by its identity (pid, start time). A process
#: inherits its environment when it is created, so one read serves every later scan: a storm of
#: stopping trees would otherwise read every process's environment once per tree.
_markers_seen: OrderedDict[Tuple[int, float], Dict[str, str]] = OrderedDict()
_MARKERS_KEPT = 16384
#: Guards :data:`_markers_seen`: the table is read both on the loop and in its reader thread.
_markers_lock = threading.Lock()
_PROC = "/proc"
_HAS_PROC = os.path.isdir(_PROC)
_PREFIX_BYTES = MARKER_PREFIX.encode()


def _markers_of(pid: int, started: float, *, ours: bool = False) -> Dict[str, str]:
    """The marker variables of the process ``pid`` that started at ``started``. A child of the
    runner (``ours``) is read afresh each time: the runner starts its scripts with their
    marker, which a look made between the fork and the exec would not see yet."""
    key = (pid, started)
    with _markers_lock:
        known = None if ours else _markers_seen.get(key)
    if known is not None:
        return known
    try:
        markers = _environ_markers(pid)
    except (psutil.ZombieProcess, psutil.AccessDenied, PermissionError):
        markers = {}  # a zombie stays dead and a forbidden process stays forbidden
    if markers is None:
        return {}  # in the middle of an exec, its new environment not set up yet
    with _markers_lock:
        _markers_seen[key] = markers
        if len(_markers_seen) > _MARKERS_KEPT:
            _markers_seen.popitem(last=False)
    return markers


def marker_variables(pid: int) -> Dict[str, str]:
    """The marker variables of the process ``pid`` (none if it is gone, out of reach, or in
    the middle of an exec)."""
    try:
        return _environ_markers(pid) or {}
    except (psutil.Error, OSError):
        return {}


def _environ_markers(pid: int) -> Optional[Dict[str, str]]:
    """The variables of the environment of ``pid`` whose names start with
    :data:`MARKER_PREFIX` (read from ``/proc/PID/environ`` where it exists); None when it
    shows no environment at all (an exec under way, or a zombie)."""
    if not _HAS_PROC:
        environ = psutil.Process(pid).environ()
        entries = [os.fsencode(f"{name}={value}") for name, value in environ.items()]
    else:
        with open(f"{_PROC}/{pid}/environ", "rb") as file:
            entries = file.read().split(b"\0")
    if not any(entries):
        return None
    found = {}
    for entry in entries:
        if entry.startswith(_PREFIX_BYTES):
            name, _, value = entry.partition(b"=")
            found[os.fsdecode(name)] = os.fsdecode(value)
    return found


def _identity(pid: int) -> Optional[Tuple[float, int, int]]:
    """When the process ``pid`` started (to tell it from a later one with the same pid), its
    group and its parent; None once it is gone. One read of ``/proc/PID/stat`` where it
    exists: a psutil object costs several, and a look reads every process of the machine."""
    if not _HAS_PROC:
        try:
            proc = psutil.Process(pid)
            return proc.create_time(), os.getpgid(pid), proc.ppid()
        except (psutil.Error, OSError):
            return None
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return float(fields[19]), int(fields[2]), int(fields[1])  # state, ppid, pgrp, ...
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class _Row:
    """One process of the table as a look read it: its pid and start time, its group and its
    marker variables."""

    pid: int
    started: float
    group: int
    markers: Mapping[str, str]

    def process(self) -> Optional[psutil.Process]:
        """The process as a psutil object, made only for the processes a tree owns; None if
        it is gone, or its pid now names another process."""
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return None
        same = _identity(self.pid)  # read after the object: a reuse before it shows here
        return proc if same is not None and same[0] == self.started else None


def _read_table(pids: Optional[Iterable[int]] = None) -> List[_Row]:
    """Every process among ``pids`` (default: the whole table) but the runner itself."""
    me = os.getpid()
    rows = []
    for pid in psutil.pids() if pids is None else pids:
        if pid == me:
            continue
        seen = _identity(pid)
        if seen is None:  # gone already
            continue
        started, group, parent = seen
        try:
            markers: Mapping[str, str] = _markers_of(pid, started, ours=parent == me)
        except (psutil.Error, OSError):
            markers = {}
        rows.append(_Row(pid, started, group, markers))
    return rows


class _TableReader:
    """Reads the whole process table in a thread, once for every tree of a loop that asks
    before the read starts.

    When many scripts reach their deadlines together, each tree's stop needs several looks at
    the table; read on the loop, one per tree, they starved the loop and delayed every later
    deadline by seconds. Here the loop never reads the table itself, and a request waits for
    the next read that starts after it (never an older one), which it shares with every tree
    that asked meanwhile. A request that can use a picture a little older (a snapshot) takes
    the read in progress or the last one, when it started recently enough.
    """

    def __init__(self) -> None:
        # no reference to the loop: the registry of readers forgets a reader with its loop
        self._next: Optional[asyncio.Future[List[_Row]]] = None
        #: The read in progress: when it started, and the future of its rows.
        self._current: Optional[Tuple[float, asyncio.Future[List[_Row]]]] = None
        #: The last read that succeeded: when it started, and its rows.
        self._last: Optional[Tuple[float, List[_Row]]] = None

    async def read(self, recent: float = 0.0) -> List[_Row]:
        """The rows of a read that starts after this call or, with ``recent``, of one that
        started at most that many seconds ago."""
        if recent > 0:
            oldest = asyncio.get_running_loop().time() - recent
            if self._last is not None and self._last[0] >= oldest:
                return self._last[1]
            if self._current is not None and self._current[0] >= oldest:
                return await asyncio.shield(self._current[1])
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiter = self._next
        if self._current is None:
            self._start()
        return await asyncio.shield(waiter)

    def _start(self) -> None:
        waiter, self._next = self._next, None
        if waiter is None:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            reading = loop.run_in_executor(_reader_thread(), _read_table)
        except RuntimeError as error:  # the thread pool is shut down: the interpreter is exiting
            waiter.set_exception(error)
            return
        self._current = (started, waiter)
        reading.add_done_callback(lambda done: self._finished(started, waiter, done))

    def _finished(
        self, started: float, waiter: asyncio.Future[List[_Row]], done: asyncio.Future[List[_Row]]
    ) -> None:
        self._current = None
        if done.cancelled():
            waiter.cancel()
        elif done.exception() is not None:
            waiter.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            self._last = (started, done.result())
            waiter.set_result(done.result())
        self._start()


_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TableReader] = (
    weakref.WeakKeyDictionary()
)
_thread: Optional[ThreadPoolExecutor] = None
_thread_lock = threading.Lock()


def _reader_thread() -> ThreadPoolExecutor:
    """The one thread that reads the table for every loop: reads never pile up in parallel."""
    global _thread
    with _thread_lock:
        if _thread is None:
            _thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pph-process-table")
        return _thread


async def _read_shared_table(recent: float = 0.0) -> List[_Row]:
    """The whole table, read off the loop and shared with the other trees asking now (or, with
    ``recent``, read at most that many seconds ago)."""
    loop = asyncio.get_running_loop()
    reader = _readers.get(loop)
    if reader is None:
        reader = _readers[loop] = _TableReader()
    return await reader.read(recent)


class Enclosure(Protocol):
    """Something that holds every process of one script and can kill them all in one step,
    whatever their pids do (a cgroup with ``cgroup.kill``)."""

    def kill(self) -> None: ...


class ProcessTree:
    """The processes of one script (its group plus marked escapees), or of a whole run.

    Stopping it does not trust one look at the process table: a process that forks and exits
    in a loop changes its pid faster than a scan reads the table. So its group is always
    signalled, the members found are frozen (SIGSTOP, their groups with them) before they are
    killed, and the sweep repeats until a look (a pass over the table and one over what started
    since) finds nothing. An ``enclosure``, when there is one, is killed first.
    """

    def __init__(
        self, marker: Marker, pgid: Optional[int] = None, enclosure: Optional[Enclosure] = None
    ) -> None:
        self.marker = marker
        self.pgid = pgid
        self.enclosure = enclosure
        #: Once the group is seen empty its number is free, and may come to lead a stranger's
        #: group (its pid reused): it is never signalled, nor its processes taken, again.
        self._group_gone = False

    def register(self) -> None:
        """Record the group before any await, so an emergency stop can reach it."""
        if self.pgid is not None:
            with _live_lock:
                _live_groups.add(self.pgid)

    def unregister(self) -> None:
        if self.pgid is not None:
            with _live_lock:
                _live_groups.discard(self.pgid)

    def group_is_empty(self) -> bool:
        """True when no process, not even a zombie, is left in the group: the fast path."""
        return self.pgid is not None and self._signal_own(0) is False

    def _own_group(self) -> Optional[int]:
        """The script's group, unless it was seen gone."""
        return None if self._group_gone else self.pgid

    def _signal_own(self, sig: int) -> Optional[bool]:
        """Signal the script's group: True if sent, False if it is gone (then for good, and
        when there is none), None if it is out of reach."""
        if self.pgid is None or self._group_gone:
            return False
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            self._group_gone = True
            return False
        except PermissionError:
            return None
        return True

    def members(self, pids: Optional[Iterable[int]] = None) -> List[psutil.Process]:
        """Every live process of the tree among ``pids`` (default: one pass over the whole
        process table)."""
        return self._owned(_read_table(pids))

    async def look(self, recent: float = 0.0) -> List[psutil.Process]:
        """Every live process of the tree, from a pass over the whole table made off the loop
        and shared with the other trees looking at the same moment (with ``recent``, a pass
        that started at most that many seconds ago will do), then looks at the processes
        started since."""
        members, _groups = self._follow(await _read_shared_table(recent), freeze=False)
        return members

    def _owned(self, rows: Iterable[_Row]) -> List[psutil.Process]:
        """The live members among ``rows``: the group's processes, the marked ones, and those
        in a group with a marked one (a process that cleared its environment, ``env -i``,
        stays in its parent's group); never the runner's own group."""
        rows = list(rows)
        groups = {row.group for row in rows if self.marker.matches(row.markers)}
        groups.discard(os.getpgrp())
        own = self._own_group()
        if own is not None:
            groups.add(own)
        owned = []
        for row in rows:
            if row.group in groups or self.marker.matches(row.markers):
                proc = row.process()
                if proc is not None and alive(proc):
                    owned.append(proc)
        return owned

    def find(self, *, freeze: bool = False) -> Tuple[List[psutil.Process], Set[int]]:
        """The members, found by a look at the whole process table followed by looks at the
        processes started since the last look, until one finds no new member: a process that
        forks and exits in a loop is dead by the time a whole pass reads its pid, but its
        successor is among the few new ones. With ``freeze``, the group and every member found
        are SIGSTOPped at once, with their groups: a stopped process cannot fork, and a chain
        that left the group after one ``setsid`` stays in the group it made. Returns the
        members and the groups (of members, and the script's) that were stopped."""
        self._freeze_group(freeze)
        return self._follow(_read_table(), freeze=freeze)

    async def find_shared(self, *, freeze: bool = False) -> Tuple[List[psutil.Process], Set[int]]:
        """:meth:`find`, with the whole-table pass read off the loop and shared (see
        :meth:`look`); the looks at what started since are few processes and stay here."""
        self._freeze_group(freeze)
        return self._follow(await _read_shared_table(), freeze=freeze)

    def _freeze_group(self, freeze: bool) -> None:
        if freeze:
            self._signal_own(signal.SIGSTOP)

    def _follow(self, table: List[_Row], *, freeze: bool) -> Tuple[List[psutil.Process], Set[int]]:
        """The members in ``table``, then in looks at the processes started since."""
        own = self._own_group()
        groups: Set[int] = set() if own is None else {own}
        found: Dict[int, psutil.Process] = {}
        looked_at: Set[int] = {row.pid for row in table}
        fresh = self._owned(table)
        quiet = 0
        for _look in range(_LOOKS):
            for proc in fresh:
                found[proc.pid] = proc
                if freeze:
                    self._freeze_with_group(proc, groups)
            listed = psutil.pids()
            fresh = self.members(p for p in listed if p not in looked_at and p not in found)
            looked_at.update(listed)
            quiet = 0 if fresh else quiet + 1
            if quiet == _QUIET_LOOKS:
                break
        return list(found.values()), groups

    def _freeze_with_group(self, proc: psutil.Process, groups: Set[int]) -> None:
        group = _group_of(proc)
        if group is not None and group not in groups and group != os.getpgrp():
            groups.add(group)  # never the runner's own: it leads none of a script's processes
            _signal_group(group, signal.SIGSTOP)
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGSTOP)

    def send(
        self,
        sig: int,
        procs: List[psutil.Process],
        groups: Set[int],
        *,
        group_reached: bool = False,
    ) -> None:
        """Signal the group first, then the ``groups`` of the members found outside it, then
        each member in none of them: killing children first would let a shell leader report
        their death as its own exit status, and a script trapping SIGTERM must see it once.
        ``group_reached``: the group was signalled already."""
        reached = set()
        if group_reached or self._signal_own(sig):
            reached.add(self.pgid)
        others = groups - reached - {self.pgid}
        reached.update(group for group in others if _signal_group(group, sig))
        for proc in procs:
            if _group_of(proc) not in reached:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)

    async def stop(self, grace: float) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left or new.

        The group is signalled before the look at the table, so its grace starts at once: a
        look waits for a read shared with the other trees stopping at the same moment."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        reached = bool(self._signal_own(signal.SIGTERM))
        procs, _groups = await self.find_shared()
        # a process that ignores SIGTERM and forks in a loop can dodge a look: the group is
        # done only once empty too; else the kill below SIGKILLs it whatever a look finds
        if not procs and (self.pgid is None or self.group_is_empty()) and self.enclosure is None:
            return
        groups = _groups_of(procs)
        self.send(signal.SIGTERM, procs, groups, group_reached=reached)
        pause = _POLL_SECONDS
        while procs and loop.time() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            procs = [p for p in procs if alive(p)]
            pause = min(2 * pause, _POLL_MAX_SECONDS)
            self.group_is_empty()  # seen gone as soon as it is: its number may be reused
        await self.kill(groups)

    async def kill(self, known_groups: Iterable[int] = ()) -> None:
        """Freeze and SIGKILL until a look finds nothing (a process may fork while it is
        killed; each look is itself a pass over the table and a look at what started since).
        ``known_groups``: those of members found before, killed even if no marked member is
        left in them (a process that cleared its environment stays in its parent's group)."""
        loop = asyncio.get_running_loop()
        first = set(known_groups) - {self.pgid}
        for round_number in range(_KILL_ROUNDS):
            if self.enclosure is not None:
                self.enclosure.kill()
            if round_number == 0:  # at once, before a shared look
                self._signal_own(signal.SIGKILL)
                for group in first:
                    _signal_group(group, signal.SIGKILL)
            procs, groups = await self.find_shared(freeze=True)
            if not procs:  # the group was killed before the look began: only live members
                return  # count, not the zombies that a slow init leaves in it
            self._kill_frozen(procs, groups)
            settle = loop.time() + _KILL_SETTLE_SECONDS
            while procs and loop.time() < settle:
                await asyncio.sleep(_POLL_SECONDS / 4)
                procs = [p for p in procs if alive(p)]

    async def stop_group(self, grace: float, leader_exited: asyncio.Future[None]) -> None:
        """Stop the group alone, without a look at the process table, as Ctrl-C at a terminal
        would and then some: SIGINT; SIGTERM once half of ``grace`` went by with the leader
        alive; SIGKILL once it exits or the grace is over. Where this process ignores SIGINT
        its scripts inherited that, and SIGTERM comes first, with the whole grace. For an
        interrupted run, whose every script stops at once: a pass over the table per script
        would keep a person who pressed Ctrl-C waiting; the run's final sweep finds the
        escapees. SIGINT first because many programs tidy up on it and not on SIGTERM
        (Python's ``finally`` blocks, pip's temporary folders): the run was interrupted, and
        so are they."""
        if self.pgid is None:
            return
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # so it is in the scripts too
            self._signal_own(signal.SIGTERM)  # (under nohup, or started in the background)
            await _lives_on(leader_exited, grace)
        else:
            self._signal_own(signal.SIGINT)
            if await _lives_on(leader_exited, grace / 2):
                self._signal_own(signal.SIGTERM)
                await _lives_on(leader_exited, grace / 2)
        self._signal_own(signal.SIGSTOP)
        self._signal_own(signal.SIGKILL)

    def kill_now(self) -> None:
        """Freeze and SIGKILL the whole tree at once, without waiting: the last resort on an
        exit path."""
        if self.enclosure is not None:
            self.enclosure.kill()
        self._kill_frozen(*self.find(freeze=True))

    def _kill_frozen(self, procs: List[psutil.Process], groups: Set[int]) -> None:
        """SIGKILL the frozen groups, the script's first, then every frozen process."""
        self._signal_own(signal.SIGKILL)
        for group in groups - {self.pgid}:
            _signal_group(group, signal.SIGKILL)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)


async def _lives_on(exited: asyncio.Future[None], seconds: float) -> bool:
    """Wait up to ``seconds`` for ``exited``; True if the process still lives then."""
    if not exited.done():
        await asyncio.wait({exited}, timeout=seconds)
    return not exited.done()


def kill_all_live_groups() -> None:
    """SIGKILL every script group still running in this process (for signal handlers and exit)."""
    with _live_lock:
        groups = list(_live_groups)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)


# The last resort: if the interpreter exits while a run's worker thread is still stopping its
# scripts (a Ctrl-C landing at the worst moment), nothing else would kill them.
atexit.register(kill_all_live_groups)


def _signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False if it is gone or out of reach."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _groups_of(procs: Iterable[psutil.Process]) -> Set[int]:
    """The process groups of ``procs``, never the runner's own."""
    groups = {_group_of(proc) for proc in procs}
    return {group for group in groups if group is not None and group != os.getpgrp()}


def _group_of(proc: psutil.Process) -> Optional[int]:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def alive(proc: psutil.Process) -> bool:
    """True while ``proc`` runs (a zombie is dead)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
