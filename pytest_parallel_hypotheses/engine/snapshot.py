"""A picture of a script's process tree at its deadline, taken before it is stopped: what was
it doing when it ran out of time?

Every process of the tree (its group and the marked escapees) with its pid, parent, age,
state, CPU time, time spent waiting for a CPU, memory and command line, plus the last lines
of its output; of a tree larger than :data:`DESCRIBED_PROCESSES`, its oldest and youngest
processes, with its count and its CPU figures (the most a process waited for a CPU, the CPUs
it wanted) over all of them. The failure text names the process that most likely held
things up; the JSON report keeps the picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

import psutil

from ..core.diagnosis import tree_figures
from .capture import BoundedCapture
from .tree import ProcessTree
from .usage import boot_clock, cpu_wait, descendant_pids, process_times

#: Lines of each output stream kept in a snapshot.
SNAPSHOT_LINES = 20
#: Characters of a command line kept per process.
COMMAND_CHARS = 500
#: How old a pass over the process table may be to show a tree at its deadline. Waiting for a
#: pass that starts after the deadline held up the stop: when many deadlines fire together,
#: passes run back to back and each takes tens of milliseconds.
RECENT_SECONDS = 0.1
#: How long the tree's stop waits for that pass (one takes 20-100 ms with a few hundred
#: processes); then the picture shows the script and its descendants alone, found without the
#: table: with thousands of processes, or many deadlines at once, a pass takes longer.
WAIT_SECONDS = 0.25
#: The most processes a picture describes: of a larger tree, the oldest half (the script and
#: what it started first) and the youngest half (what it was waiting for). Each takes several
#: reads of ``/proc``, and the stop waits for the picture: 1,300 processes of a script that
#: forked in a loop held its SIGTERM back 0.43 s, and its end past the deadline and grace.
DESCRIBED_PROCESSES = 100

Snapshot = Dict[str, Any]


async def take_snapshot(
    tree: ProcessTree, stdout: BoundedCapture, stderr: BoundedCapture
) -> Snapshot:
    """The tree's processes (oldest first) and the last lines of both output streams;
    ``whole_tree`` is False when the picture could not wait for the process table, and shows
    the script and its descendants alone (processes that left them are then missing)."""
    look = asyncio.ensure_future(tree.look(RECENT_SECONDS))  # off the loop: other deadlines
    done, _pending = await asyncio.wait({look}, timeout=WAIT_SECONDS)  # may be firing
    if look in done:
        members = look.result()
    else:
        look.cancel()  # the shared pass goes on for the trees that wait for it
        members = [] if tree.pgid is None else _processes(descendant_pids(tree.pgid))
    now = datetime.now(timezone.utc).timestamp()  # a moment: when the picture was taken
    alive = _alive_with_vitals(members, _vitals_reader(now))
    described = (_describe(proc, vitals) for vitals, proc in _oldest_and_youngest(alive))
    processes = [entry for entry in described if entry is not None]
    return {
        "taken_at": now,
        "whole_tree": look in done,
        "process_count": len(alive),
        # over every process: a starved one may be neither among the oldest nor the youngest
        **tree_figures(vitals for vitals, _proc in alive),
        "processes": processes,
        "stdout_tail": _last_lines(stdout),
        "stderr_tail": _last_lines(stderr),
    }


def _processes(pids: List[int]) -> List[psutil.Process]:
    """The processes among ``pids`` still there."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


Vitals = Dict[str, Any]


def _vitals_reader(now: float) -> Callable[[psutil.Process], Vitals]:
    """A process's ``age_seconds`` (to the clock tick: from its start in ``/proc/PID/stat``
    and the time since boot in ``/proc/uptime``, both counted from the boot; psutil's start
    time adds the boot time, which Linux gives in whole seconds, and ages came out up to a
    second too old), ``cpu_seconds`` from the same read, and ``waited_seconds``; from psutil
    where ``/proc`` does not serve (``now`` gives the age then). Raises ``psutil.Error`` for
    a process that is gone."""
    clock = boot_clock()
    if clock is None:
        return lambda proc: _psutil_vitals(proc, now)

    def vitals(proc: psutil.Process) -> Vitals:
        times = process_times(proc.pid, clock)
        if times is None or times.age is None:
            return _psutil_vitals(proc, now)
        return _vitals(times.age, times.cpu, proc.pid)

    return vitals


def _psutil_vitals(proc: psutil.Process, now: float) -> Vitals:
    times = proc.cpu_times()
    return _vitals(now - proc.create_time(), times.user + times.system, proc.pid)


def _vitals(age: float, cpu: float, pid: int) -> Vitals:
    return {
        "age_seconds": round(max(0.0, age), 3),
        "cpu_seconds": round(cpu, 3),
        "waited_seconds": cpu_wait(pid),
    }


def _alive_with_vitals(
    members: List[psutil.Process], vitals: Callable[[psutil.Process], Vitals]
) -> List[Tuple[Vitals, psutil.Process]]:
    """The members still there, each with its vitals, oldest first."""
    alive = []
    for proc in members:
        with contextlib.suppress(psutil.Error):  # it ended while we looked
            alive.append((vitals(proc), proc))
    alive.sort(key=lambda pair: (-pair[0]["age_seconds"], pair[1].pid))
    return alive


def _oldest_and_youngest(
    alive: List[Tuple[Vitals, psutil.Process]],
) -> List[Tuple[Vitals, psutil.Process]]:
    """All of ``alive`` (oldest first), or its oldest and youngest halves of
    :data:`DESCRIBED_PROCESSES`."""
    if len(alive) <= DESCRIBED_PROCESSES:
        return alive
    half = DESCRIBED_PROCESSES // 2
    return alive[:half] + alive[-half:]


def _session(pid: int) -> Optional[int]:
    """The process's session id (None once it is gone)."""
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _describe(proc: psutil.Process, vitals: Vitals) -> Optional[Dict[str, Any]]:
    try:
        with proc.oneshot():
            return {
                "pid": proc.pid,
                "ppid": proc.ppid(),
                "session": _session(proc.pid),
                "age_seconds": vitals["age_seconds"],
                "state": proc.status(),
                "cpu_seconds": vitals["cpu_seconds"],
                "waited_seconds": vitals["waited_seconds"],
                "rss_bytes": proc.memory_info().rss,
                "command": (" ".join(proc.cmdline()) or proc.name())[:COMMAND_CHARS],
            }
    except psutil.Error:  # it ended while we looked: nothing to show
        return None


def _last_lines(capture: BoundedCapture) -> List[str]:
    return capture.text().splitlines()[-SNAPSHOT_LINES:]
