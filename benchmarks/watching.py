"""Workload (n): what watching a run costs: ``pytest --hypotheses`` over many short scripts
with the live status forced on and the event stream written, against the same run with both
off, and how often the live status is redrawn.

Both runs are fresh processes over the same real git worktrees, alternated between repeats; the
ratio is taken per repeat and its median judged. The redraws are counted in the terminal output
of the watched run (each starts with the counts line) and divided by its wall time. The CPU
time of pytest and its scripts is shown too: on a busy machine it varies much less than wall
time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Tuple

from .child import children_cpu
from .layouts import worktree_jobs
from .plugin_overhead import run_pytest
from .suite import Measurement, Target, Trial, Workload
from .workloads import Scale

WATCHED = "live + events"
PLAIN = "both off"
WORKERS = 8
_STATUS = re.compile(r"hypotheses: \d+ done, \d+ running, \d+ waiting")


def watching_overhead(scale: Scale, root: Path) -> Workload:
    """(n) The live status and the event stream over many short scripts, against neither."""
    count = scale.watch_items
    folder = root / "watching"
    worktree_jobs(folder, ["exit 0"] * count)
    repo = folder / "repo"
    watched_options = ("--hypotheses-live=on", f"--hypotheses-events={folder / 'events.jsonl'}")

    def watched() -> Measurement:
        wall, cpu, draws = _time(repo, root, count, *watched_options)
        return {"wall": wall, "CPU": cpu, "redraws per second": draws / wall}

    def plain() -> Measurement:
        wall, cpu, _draws = _time(repo, root, count, "--hypotheses-live=off")
        return {"wall": wall, "CPU": cpu}

    return Workload(
        key="n",
        title=f"watching overhead: pytest --hypotheses over {count} short scripts, "
        f"{WORKERS} workers, live status and events on against both off",
        trials=[Trial(WATCHED, watched), Trial(PLAIN, plain)],
        metrics={"wall": "s", "CPU": "s", "redraws per second": "/s"},
        targets=[
            Target(WATCHED, "wall", 1.05, versus=PLAIN),
            Target(WATCHED, "redraws per second", 4.0),
        ],
    )


def _time(repo: Path, root: Path, count: int, *options: str) -> Tuple[float, float, int]:
    """Wall and CPU time (pytest's and its scripts') of one run that must pass every item, and
    the live status redraws in it."""
    cpu_start = children_cpu()
    start = time.perf_counter()
    completed = run_pytest(
        repo, root, f"--hypotheses-workers={WORKERS}", "--hypotheses-heartbeat=0", *options
    )
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu_start
    if completed.returncode != 0 or f"{count} passed" not in completed.stdout:
        raise RuntimeError(
            f"pytest --hypotheses did not pass {count} hypotheses (exit {completed.returncode}):"
            "\n" + completed.stdout[-2000:] + completed.stderr[-2000:]
        )
    return wall, cpu, len(_STATUS.findall(completed.stdout))
