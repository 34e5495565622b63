"""The ``hypotheses`` section of the terminal summary: one row per hypothesis, then the verdict
counts and the next action."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from ..core.classification import HypothesisStatus
from .conclusions import counts_line, next_action
from .records import Record, RecordSource
from .tested import code_summary, run_warnings
from .wording import (
    MIB,
    ONE_RUN_NOTE,
    attempts_text,
    cached_words,
    evidence_words,
    is_cut_short,
    record_colour,
    record_not_counted_words,
    record_polarity,
    record_verdict_word,
    setup_text,
    worktree_label,
)

#: A line of the summary and its terminal markup (a colour or bold).
Line = Tuple[str, Dict[str, bool]]

_COLUMNS = (
    "id",
    "worktree (branch)",
    "verdict",
    "polarity",
    "result",
    "exit",
    "duration",
    "evidence",
    "confidence",
)
#: Columns shown under ``-v``, before the confidence: what each script's tree used.
_RESOURCE_COLUMNS = ("peak RSS", "CPU", "procs")


class TerminalSummary:
    """The plugin part that writes the ``hypotheses`` section of the terminal summary;
    ``runner_warnings`` gives what the runner warned of that no record shows."""

    def __init__(
        self, records: RecordSource, runner_warnings: Callable[[], Sequence[str]] = tuple
    ) -> None:
        self._records = records
        self._runner_warnings = runner_warnings

    def pytest_terminal_summary(
        self, terminalreporter: pytest.TerminalReporter, config: pytest.Config
    ) -> None:
        records = self._records.records
        if not records or config.option.collectonly:
            return
        terminalreporter.write_sep("=", "hypotheses")
        verbose = config.option.verbose > 0
        lines = summary_lines(
            records, config.rootpath, verbose=verbose, warnings=self._runner_warnings()
        )
        for line, markup in lines:
            terminalreporter.write_line(line, **markup)


def summary_lines(
    records: Sequence[Record],
    rootpath: Path,
    *,
    verbose: bool = False,
    warnings: Sequence[str] = (),
) -> List[Line]:
    """The summary's lines, each with its markup: one row per hypothesis under a heading,
    then the verdict counts and the next action (also printed by the ``merge`` command).
    ``verbose`` adds the resource columns and the code each script tested; what could not be
    redirected into a worktree is always told, once, and so are the runner's ``warnings``."""
    rows = [_with_resources(list(_COLUMNS), list(_RESOURCE_COLUMNS), verbose)] + [
        _with_resources(_row(record, rootpath), _resource_cells(record), verbose)
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), _markup(record))
        for row, record in zip(rows, [None, *records])
    ]
    if verbose:
        lines += [(_code_line(record, rootpath), {}) for record in records]
        lines += [(line, {}) for line in _setup_lines(records, rootpath)]
    told = [*run_warnings(records), *warnings]
    lines += [(f"warning: {warning}", {"yellow": True}) for warning in told]
    if any(_single_run(record) for record in records):
        lines.append((f"1 run: {ONE_RUN_NOTE} (--hypotheses-repeat=auto decides it)", {}))
    lines.append((f"verdicts: {counts_line(records)}", {"bold": True}))
    lines.append((f"next: {next_action(records)}", {"bold": True}))
    return lines


def _row(record: Record, rootpath: Path) -> List[str]:
    worktree = worktree_label(rootpath, Path(record["worktree_path"]))
    branch = record["branch"] or "detached"
    if record.get("branch_gone"):  # absent from records of older reports (merge)
        branch += ", branch gone"
    ran = record["result"] is not None and record["status"] != HypothesisStatus.PENDING.value
    timed = ran or is_cut_short(record)
    return [
        record["hypothesis_id"],
        f"{worktree} ({branch})",
        record_verdict_word(record),
        record_polarity(record).value,
        _result_cell(record) if ran else "-",
        str(record["exit_code"]) if ran else "-",
        f"{record['duration']:.2f}s" if timed else "-",
        _evidence_cell(record) if ran else "-",
        f"{record['confidence']:.2f}" if ran else "-",
    ]


def _code_line(record: Record, rootpath: Path) -> str:
    """Under ``-v``: where the hypothesis's script imported the project from."""
    worktree = worktree_label(rootpath, Path(record["worktree_path"]))
    summary = code_summary(record.get("code_under_test"))
    return f"code of {record['hypothesis_id']} ({worktree}): {summary}"


def _setup_lines(records: Sequence[Record], rootpath: Path) -> List[str]:
    """Under ``-v``: what each worktree's setup step did (its long first run, or a reuse,
    is otherwise told only by a failure, ``-rA`` and the reports), once per worktree and
    command."""
    told: Dict[Tuple[str, str], str] = {}
    for record in records:
        setup = record.get("setup")
        if setup is not None and record.get("cached_at") is None:  # a reuse ran nothing
            worktree = worktree_label(rootpath, Path(record["worktree_path"]))
            told.setdefault((worktree, setup["command"]), setup_text(setup))
    return [f"setup of {where}: `{command}` {text}" for (where, command), text in told.items()]


def _evidence_cell(record: Record) -> str:
    """What the runs show about the pass rate, and ``cached`` with the date of a reuse."""
    runs = max(1, len(record.get("attempts") or []))
    words = evidence_words(record.get("evidence"), runs)
    uncounted = record_not_counted_words(record)
    words = f"{words}; {uncounted}" if uncounted else words
    cached_at = record.get("cached_at")
    return words if cached_at is None else f"{words}; {cached_words(cached_at)}"


def _single_run(record: Record) -> bool:
    ran = record["result"] is not None and record["status"] != HypothesisStatus.PENDING.value
    return ran and record.get("evidence") is None


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
    peak = metrics["peak_rss_bytes"]  # 0: too short for a sample, smaller than the runner
    return [
        f"{peak / MIB:.1f} MiB" if peak else "-",
        f"{metrics['cpu_seconds']:.2f}s",
        str(metrics["processes"]),
    ]


def _with_resources(row: List[str], resources: List[str], verbose: bool) -> List[str]:
    """The row with the resource cells before its last (the confidence) under ``-v``."""
    return [*row[:-1], *resources, row[-1]] if verbose else row


def _markup(record: Optional[Record]) -> Dict[str, bool]:
    if record is None:
        return {"bold": True}
    return {record_colour(record): True}
