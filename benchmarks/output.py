"""Workload (o): what many loud scripts cost the runner: ``pytest --hypotheses`` at default
settings over N hypotheses that each print 3 MiB to stdout and 3 MiB to stderr, with the JSON
report written; against the same run over N silent scripts.

The peak resident memory is pytest's own (with what it waited for: its scripts are tiny
shells), from the kernel's ``ru_maxrss`` of the reaped process; the report's size is that of
the JSON file. Each stream is capped at the default 1 MiB, so the kept output alone is
N x 2 MiB: it must go to files, not stay in memory or in the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_parallel_hypotheses.engine.environment import without_pytest_variables

from .layouts import worktree_jobs
from .suite import Measurement, Target, Trial, Workload
from .workloads import MIB, Scale

LOUD = "3 MiB each stream"
SILENT = "silent"
_PRINT = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 3145728"


def output_memory(scale: Scale, root: Path) -> Workload:
    """(o) Peak memory and report size of a run of loud scripts, against silent ones."""
    count = scale.output_items
    worktree_jobs(root / "loud", [f"{_PRINT}\n{_PRINT} >&2\nexit 0"] * count)
    worktree_jobs(root / "silent", ["exit 0"] * count)

    def measured(folder: Path) -> Measurement:
        peak, report = _run(folder, root, count)
        return {"peak RSS": peak / MIB, "JSON report": report / MIB}

    return Workload(
        key="o",
        title=f"output memory: pytest --hypotheses over {count} scripts printing 3 MiB to "
        "stdout and to stderr, against silent ones",
        trials=[
            Trial(LOUD, lambda: measured(root / "loud")),
            Trial(SILENT, lambda: measured(root / "silent")),
        ],
        metrics={"peak RSS": "MiB", "JSON report": "MiB"},
        targets=[
            Target(LOUD, "peak RSS", 250.0, statistic="max"),
            Target(LOUD, "JSON report", 50.0, statistic="max"),
        ],
        repeats=1,
    )


def _run(folder: Path, root: Path, count: int) -> tuple[int, int]:
    """pytest's peak resident bytes and the report's size, of one run that passes every item."""
    report = folder / "report.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--hypotheses={folder / 'repo'}",
        f"--hypotheses-report={report}",
        "-q",
    ]
    process = subprocess.Popen(
        command,
        cwd=root,
        env=without_pytest_variables(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = process.stdout.read()  # pytest's own summary: a few KiB
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    text = output.decode(errors="replace")
    if process.returncode != 0 or f"{count} passed" not in text:
        raise RuntimeError(
            f"pytest --hypotheses did not pass {count} hypotheses (exit {process.returncode}):"
            "\n" + text[-2000:]
        )
    return usage.ru_maxrss * 1024, report.stat().st_size
