"""The words of the live status and of the heartbeat, from one view of the run."""

from __future__ import annotations

import unicodedata
from typing import List, Optional, Sequence

from ..core.diagnosis import format_elapsed
from .records import Record
from .watch import Progress, Running
from .wording import DURING_SETUP, is_cut_short, output_tail

#: Running hypotheses listed by the live status; the rest are counted on one more line.
MAX_LISTED = 12
#: Running hypotheses named by one heartbeat line.
HEARTBEAT_NAMED = 5


def counts_words(progress: Progress) -> str:
    return f"{progress.done} done, {len(progress.running)} running, {progress.waiting} waiting"


def running_words(entry: Running, now: float) -> str:
    """``h1 12.3s/60s (attempt 2/3)``, or ``h1 (setup) 1m02s/10m00s`` while its worktree's
    setup step runs."""
    elapsed = format_elapsed(max(0.0, now - entry.since))
    limit = "" if entry.timeout is None else f"/{format_elapsed(entry.timeout)}"
    if entry.stage:
        return f"{entry.label} ({entry.stage}) {elapsed}{limit}"
    attempt = f" (attempt {entry.attempt}/{entry.repeats})" if entry.repeats > 1 else ""
    return f"{entry.label} {elapsed}{limit}{attempt}"


def status_lines(progress: Progress, now: float, width: int) -> List[str]:
    """The live status: the counts, then one line per running hypothesis with the last line
    it printed, each cut to ``width`` so none wraps."""
    lines = [f"hypotheses: {counts_words(progress)}"]
    for entry in progress.running[:MAX_LISTED]:
        words = f"  {running_words(entry, now)}"
        last = entry.last_line()
        lines.append(f"{words} | {last}" if last else words)
    hidden = len(progress.running) - MAX_LISTED
    if hidden > 0:
        lines.append(f"  ... and {hidden} more running")
    return [_cut(line, width) for line in lines]


def heartbeat_line(progress: Progress, now: float) -> Optional[str]:
    """``hypotheses still running: h1 4m58s/10m, h2 12.0s (3 done, 2 running, 0 waiting)``;
    None once nothing runs."""
    if not progress.running:
        return None
    named = ", ".join(running_words(entry, now) for entry in progress.running[:HEARTBEAT_NAMED])
    more = len(progress.running) - HEARTBEAT_NAMED
    if more > 0:
        named += f" and {more} more"
    return f"hypotheses still running: {named} ({counts_words(progress)})"


def cut_short_lines(records: Sequence[Record]) -> List[str]:
    """For each hypothesis whose script was stopped before its end: why, after how long, and
    the last lines it printed (none when its worktree's setup step was running)."""
    lines: List[str] = []
    for record in records:
        message = record.get("error_message") or ""
        if not is_cut_short(record):
            continue
        lines.append(f"{record['hypothesis_id']}: {message}, after {record['duration']:.2f}s")
        if message.endswith(DURING_SETUP):
            lines.append("(its script had not started: it printed nothing)")
            continue
        for name in ("stderr", "stdout"):
            lines += output_tail(
                name, record[name], record[f"{name}_bytes"], record[f"{name}_truncated"]
            )
    return lines


def _cut(line: str, width: int) -> str:
    """The line in at most ``width`` terminal columns (a wide character takes two), with
    control characters blanked: a line that wrapped could not be erased."""
    chars = [char if char.isprintable() else " " for char in line]
    columns = [2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in chars]
    if sum(columns) <= width:
        return "".join(chars)
    kept, used = [], 0
    for char, room in zip(chars, columns):
        if used + room > width - 3:
            break
        kept.append(char)
        used += room
    return "".join(kept) + "..."
