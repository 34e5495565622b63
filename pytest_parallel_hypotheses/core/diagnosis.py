"""The one-line reading of a timeout snapshot: which command the script was stuck in.

A snapshot lists a whole process tree; a failure line has room for one process. The one named
is the youngest descendant (what the script was waiting for), else the script itself.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

#: Characters of the command kept in the one-line reading.
SHORT_COMMAND_CHARS = 80
#: The share of its life a process of a timed-out tree spent ready to run with no CPU free
#: beyond which the script was short of CPUs: three CPU-bound processes on two CPUs each wait
#: a third of the time, and run half as fast again as alone.
STARVED_SHARE = 0.25
#: The most a tree wanted of the CPUs (its CPU time and its processes' waits for one, per
#: second of its run) while it kept one process busy at a time: beyond it, its processes
#: also waited for each other (``pytest -n 2`` keeps three busy), and its wait says little
#: of a crowd. A tenth of a CPU above one, for the shell and the moments two overlap.
ONE_CPU_DEMAND = 1.1
#: Processes younger than this at the deadline tell too little of how the tree ran.
SHARE_MIN_AGE = 0.5


def busiest(snapshot: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The process that most likely held the script up (None when the tree was gone): the
    youngest that stayed in the script's session, since one that left it (``setsid``, a
    daemon) is seldom what the script waits for."""
    processes: List[Dict[str, Any]] = list(snapshot.get("processes") or [])
    if not processes:
        return None
    oldest = max(processes, key=lambda entry: entry["age_seconds"])
    others = [entry for entry in processes if entry is not oldest]
    session = oldest.get("session")
    stayed = [entry for entry in others if session is None or entry.get("session") == session]
    return min(stayed or others or [oldest], key=lambda entry: entry["age_seconds"])


def describe_snapshot(snapshot: Mapping[str, Any]) -> str:
    """``timed out while running: `cmd` (pid 4242, 4m58s, 310 MiB)``, or that nothing ran."""
    process = busiest(snapshot)
    if process is None:
        return "no process of its tree was left at the deadline"
    command = process["command"]
    if len(command) > SHORT_COMMAND_CHARS:
        command = command[: SHORT_COMMAND_CHARS - 3] + "..."
    count = process_count(snapshot)
    others = (
        f"; {count - 1} other process{'es' if count > 2 else ''} in its tree" if count > 1 else ""
    )
    share = cpu_wait_share(snapshot)
    short = (
        f"; its processes waited for a CPU up to {share:.0%} of their time: other work kept "
        "the CPUs busy (the run's other scripts, or other programs)"
        if share is not None and starved_share(share)
        else ""
    )
    return (
        f"timed out while running: `{command}` (pid {process['pid']}, "
        f"{format_elapsed(process['age_seconds'])}, {process['rss_bytes'] / 2**20:.0f} MiB)"
        f"{others}{short}"
    )


def process_count(snapshot: Mapping[str, Any]) -> int:
    """How many processes the tree had in the picture, described or not (a picture taken
    before the count was kept describes them all)."""
    return int(snapshot.get("process_count", len(snapshot.get("processes") or [])))


def cpu_wait_share(snapshot: Mapping[str, Any]) -> Optional[float]:
    """The largest share of its life a process of the tree spent waiting for a CPU (None
    where the kernel did not say, or every process was too young to tell), over every
    process of the tree where the picture kept the figure (it describes a large tree's
    oldest and youngest only)."""
    figures = snapshot if "cpu_wait_share" in snapshot else _figures_of_described(snapshot)
    share = figures["cpu_wait_share"]
    return None if share is None else float(share)


def cpus_wanted(metrics: Mapping[str, Any], duration: float) -> Optional[float]:
    """How many CPUs a run kept busy or waited for on average, from its ``metrics``: its CPU
    time and its processes' waits for a CPU, per second of its run. A script that shared the
    CPUs with others (of the run or not) wanted what it would have used alone. None without
    a CPU time."""
    cpu = metrics.get("cpu_seconds")
    if cpu is None or duration <= 0:
        return None
    return (float(cpu) + float(metrics.get("cpu_waited_seconds") or 0.0)) / duration


def starved(snapshot: Optional[Mapping[str, Any]]) -> bool:
    """Whether the tree of a timed-out script was short of CPUs (:data:`STARVED_SHARE`)."""
    return snapshot is not None and starved_share(cpu_wait_share(snapshot))


def starved_share(share: Optional[float]) -> bool:
    """Whether a tree whose processes waited for a CPU up to ``share`` of their time (None:
    not known) was short of CPUs."""
    return share is not None and share >= STARVED_SHARE


def cpu_demand(snapshot: Mapping[str, Any]) -> float:
    """How many CPUs the tree wanted at its deadline: the share of its life each process ran
    or waited to run, summed (over every process, as :func:`cpu_wait_share`)."""
    figures = snapshot if "cpu_demand" in snapshot else _figures_of_described(snapshot)
    return float(figures["cpu_demand"])


def _figures_of_described(snapshot: Mapping[str, Any]) -> Dict[str, Any]:
    """The figures of a picture kept before they were (it describes every process)."""
    return tree_figures(snapshot.get("processes") or [])


def tree_figures(entries: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """``cpu_wait_share`` and ``cpu_demand`` of processes with ``age_seconds``,
    ``cpu_seconds`` and ``waited_seconds``: those half a second old or more
    (:data:`SHARE_MIN_AGE`) tell how the tree ran."""
    seasoned = [entry for entry in entries if entry["age_seconds"] >= SHARE_MIN_AGE]
    shares = [
        entry["waited_seconds"] / entry["age_seconds"]
        for entry in seasoned
        if entry.get("waited_seconds") is not None
    ]
    demand = sum(
        ((entry.get("cpu_seconds") or 0.0) + (entry.get("waited_seconds") or 0.0))
        / entry["age_seconds"]
        for entry in seasoned
    )
    return {"cpu_wait_share": max(shares, default=None), "cpu_demand": demand}


def format_elapsed(seconds: float) -> str:
    """``4m58s``, ``1h02m``, ``3.2s``: short and exact enough for a status line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
