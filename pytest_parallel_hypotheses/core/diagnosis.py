"""The one-line reading of a timeout snapshot: which command the script was stuck in.

A snapshot lists a whole process tree; a failure line has room for one process. The one named
is the youngest descendant (what the script was waiting for), else the script itself.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

#: Characters of the command kept in the one-line reading.
SHORT_COMMAND_CHARS = 80


def busiest(snapshot: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The process that most likely held the script up (None when the tree was gone)."""
    processes: List[Dict[str, Any]] = list(snapshot.get("processes") or [])
    if not processes:
        return None
    oldest = max(processes, key=lambda entry: entry["age_seconds"])
    others = [entry for entry in processes if entry is not oldest]
    return min(others or [oldest], key=lambda entry: entry["age_seconds"])


def describe_snapshot(snapshot: Mapping[str, Any]) -> str:
    """``timed out while running: `cmd` (pid 4242, 4m58s, 310 MiB)``, or that nothing ran."""
    process = busiest(snapshot)
    if process is None:
        return "no process of its tree was left at the deadline"
    command = process["command"]
    if len(command) > SHORT_COMMAND_CHARS:
        command = command[: SHORT_COMMAND_CHARS - 3] + "..."
    count = len(snapshot["processes"])
    others = (
        f"; {count - 1} other process{'es' if count > 2 else ''} in its tree" if count > 1 else ""
    )
    return (
        f"timed out while running: `{command}` (pid {process['pid']}, "
        f"{format_elapsed(process['age_seconds'])}, {process['rss_bytes'] / 2**20:.0f} MiB)"
        f"{others}"
    )


def format_elapsed(seconds: float) -> str:
    """``4m58s``, ``1h02m``, ``3.2s``: short and exact enough for a status line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
