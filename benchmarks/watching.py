"""Workload (h): what watching a run costs: ``pytest --hypotheses`` over many short scripts
with the live status forced on and the event stream written, against the same run with both
off, and how often the live status is redrawn.

Both runs are fresh processes over the same real git worktrees, alternated between repeats; the
ratio is taken per repeat and its median judged. The redraws are counted in the terminal output
of the watched run (each starts with the counts line) and divided by its wall time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Tuple

from .layouts import worktree_jobs
from .plugin_overhead import run_pytest
from .suite import Measurement, Target, Trial, Workload
from .workloads import Scale

WATCHED = "live + events"
PLAIN = "both off"
WORKERS = 8
_STATUS = re.compile(r"hypotheses: \d+ done, \d+ running, \d+ waiting")


def watching_overhead(scale: Scale, root: Path) -> Workload:
    """(h) The live status and the event stream over many short scripts, against neither."""
    count = scale.watch_items
    repo = root / "repo"
    worktree_jobs(root, ["exit 0"] * count)
    events = root / "events.jsonl"

    def watched() -> Measurement:
        wall, draws = _time(
            repo, root, count, "--hypotheses-live=on", f"--hypotheses-events={events}"
        )
        return {"wall": wall, "redraws per second": draws / wall}

    def plain() -> Measurement:
        wall, _draws = _time(repo, root, count, "--hypotheses-live=off")
        return {"wall": wall}

    return Workload(
        key="h",
        title=f"watching overhead: pytest --hypotheses over {count} short scripts, "
        f"{WORKERS} workers, live status and events on against both off",
        trials=[Trial(WATCHED, watched), Trial(PLAIN, plain)],
        metrics={"wall": "s", "redraws per second": "/s"},
        targets=[
            Target(WATCHED, "wall", 1.05, versus=PLAIN),
            Target(WATCHED, "redraws per second", 4.0),
        ],
    )


def _time(repo: Path, root: Path, count: int, *options: str) -> Tuple[float, int]:
    """Wall time of one run that must pass every item, and the live status redraws in it."""
    start = time.perf_counter()
    completed = run_pytest(
        repo, root, f"--hypotheses-workers={WORKERS}", "--hypotheses-heartbeat=0", *options
    )
    wall = time.perf_counter() - start
    if completed.returncode != 0 or f"{count} passed" not in completed.stdout:
        raise RuntimeError(
            f"pytest --hypotheses did not pass {count} hypotheses (exit {completed.returncode}):"
            "\n" + completed.stdout[-2000:] + completed.stderr[-2000:]
        )
    return wall, len(_STATUS.findall(completed.stdout))
