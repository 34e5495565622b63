"""What a run concluded: verdict counts, the recommended next action, and the terminal section
that shows them with one row per hypothesis."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from .classification import HypothesisStatus
from .discovery import SCRIPT_PATTERN
from .explain import MIB, attempts_text, verdict_colour
from .items import worktree_label
from .records import HypothesisRecords, Record

#: Verdicts in the order they are counted and shown.
COUNTED = (
    HypothesisStatus.FALSIFIED,
    HypothesisStatus.SUPPORTED,
    HypothesisStatus.INCONCLUSIVE,
    HypothesisStatus.PENDING,
)
_COUNT_NAMES = {HypothesisStatus.PENDING: "not run"}
#: A line of the summary and its terminal markup (a colour or bold).
Line = Tuple[str, Dict[str, bool]]

_COLUMNS = ("id", "worktree (branch)", "verdict", "result", "exit", "duration", "confidence")
#: Columns shown under ``-v``, before the confidence: what each script's tree used.
_RESOURCE_COLUMNS = ("peak RSS", "CPU", "procs")


def verdict_counts(records: Sequence[Record]) -> Dict[str, int]:
    """How many hypotheses reached each verdict (``pending``: did not run)."""
    counts = Counter(record["status"] for record in records)
    return {status.value: counts[status.value] for status in COUNTED}


def next_action(records: Sequence[Record]) -> str:
    """What to do next, from the supported hypotheses (the ones the evidence did not refute)."""
    supported = [r for r in records if r["status"] == HypothesisStatus.SUPPORTED.value]
    if not records:
        return f"No hypothesis was found: write scripts named {SCRIPT_PATTERN} first."
    if not supported:
        action = "No hypothesis is supported: generate new hypotheses."
    elif len(supported) == 1:
        only = supported[0]
        where = f"branch {only['branch']}" if only["branch"] else only["worktree_path"]
        action = (
            f"Exactly one hypothesis is supported ({only['hypothesis_id']} on {where}): "
            "focus the fix on it."
        )
    else:
        names = ", ".join(r["hypothesis_id"] for r in supported)
        action = (
            f"{len(supported)} hypotheses are supported ({names}): refine them with tests "
            "that tell them apart."
        )
    not_run = verdict_counts(records)[HypothesisStatus.PENDING.value]
    if not_run:
        action += f" ({not_run} did not run: run them before concluding.)"
    return action


def counts_line(records: Sequence[Record]) -> str:
    """``2 falsified, 1 supported, 0 inconclusive`` (and ``not run`` when any did not run)."""
    counts = verdict_counts(records)
    parts = [
        f"{counts[status.value]} {_COUNT_NAMES.get(status, status.value)}"
        for status in COUNTED
        if counts[status.value] or status is not HypothesisStatus.PENDING
    ]
    return ", ".join(parts)


class TerminalSummary:
    """The plugin part that writes the ``hypotheses`` section of the terminal summary."""

    def __init__(self, records: HypothesisRecords) -> None:
        self._records = records

    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter, config: pytest.Config
    ) -> None:
        records = self._records.records
        if not records or config.option.collectonly:
            return
        terminalreporter.write_sep("=", "hypotheses")
        verbose = config.option.verbose > 0
        for line, markup in summary_lines(records, config.rootpath, verbose=verbose):
            terminalreporter.write_line(line, **markup)


def summary_lines(
    records: Sequence[Record], rootpath: Path, *, verbose: bool = False
) -> List[Line]:
    """The summary's lines, each with its markup: one row per hypothesis under a heading,
    then the verdict counts and the next action (also printed by the ``merge`` command).
    ``verbose`` adds the resource columns."""
    rows = [_with_resources(list(_COLUMNS), list(_RESOURCE_COLUMNS), verbose)] + [
        _with_resources(_row(record, rootpath), _resource_cells(record), verbose)
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), _markup(record))
        for row, record in zip(rows, [None, *records])
    ]
    lines.append((f"verdicts: {counts_line(records)}", {"bold": True}))
    lines.append((f"next: {next_action(records)}", {"bold": True}))
    return lines


def _row(record: Record, rootpath: Path) -> List[str]:
    worktree = worktree_label(rootpath, Path(record["worktree_path"]))
    branch = record["branch"] or "detached"
    ran = record["result"] is not None and record["status"] != HypothesisStatus.PENDING.value
    return [
        record["hypothesis_id"],
        f"{worktree} ({branch})",
        record["status"].upper() if ran else "NOT RUN",
        _result_cell(record) if ran else "-",
        str(record["exit_code"]) if ran else "-",
        f"{record['duration']:.2f}s" if ran else "-",
        f"{record['confidence']:.2f}" if ran else "-",
    ]


def _result_cell(record: Record) -> str:
    """The outcome; for a script run several times also how many attempts agreed, or all
    the counts when they were flaky."""
    attempts = record.get("attempts") or []
    if len(attempts) <= 1:
        return str(record["result"])
    counts = record.get("outcome_counts") or {}
    if record.get("flaky"):
        return f"flaky ({attempts_text(counts)})"
    return f"{record['result']} {counts.get(record['result'], 0)}/{len(attempts)}"


def _resource_cells(record: Record) -> List[str]:
    metrics = record.get("metrics") or {}
    if "peak_rss_bytes" not in metrics:
        return ["-"] * len(_RESOURCE_COLUMNS)
    return [
        f"{metrics['peak_rss_bytes'] / MIB:.1f} MiB",
        f"{metrics['cpu_seconds']:.2f}s",
        str(metrics["processes"]),
    ]


def _with_resources(row: List[str], resources: List[str], verbose: bool) -> List[str]:
    """The row with the resource cells before its last (the confidence) under ``-v``."""
    return [*row[:-1], *resources, row[-1]] if verbose else row


def _markup(record: Optional[Record]) -> Dict[str, bool]:
    if record is None:
        return {"bold": True}
    return {verdict_colour(HypothesisStatus(record["status"])): True}
