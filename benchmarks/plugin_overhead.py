"""Workload (g): what ``pytest --hypotheses`` costs on top of the executor alone, per item.

Both sides run as fresh processes over the same real git worktrees (the plugin discovers
through git), so interpreter start-up is paid by both. Running two sizes separates the
per-item cost (the slope: collection, reporting, the summary) from the fixed cost of starting
pytest itself:

    per item = ((pytest(N) - executor(N)) - (pytest(n) - executor(n))) / (N - n)

It is computed from wall times (what a user waits for) and from CPU times (what the processes
spend, their scripts included on both sides): a difference of differences of wall times is
noisy on a busy machine, the CPU figure much less so.

The executor's own look at the worktrees cancels out of that figure, so the slope of pytest's
wall time alone is judged too: it keeps a run's cost linear in its number of worktrees (each
worktree's look once listed every other checkout, and 400 worktrees waited 6 s to start).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

from .child import children_cpu, fresh_environment, run_in_child
from .layouts import Job, worktree_jobs
from .runners import Batch
from .suite import Measurement, Target, Trial, Unavailable, Workload
from .workloads import Scale

PLUGIN = "pytest --hypotheses"
WORKERS = 8


def plugin_overhead(scale: Scale, root: Path) -> Workload:
    """(g) The plugin over many trivial hypotheses, against the executor alone."""
    items, small = scale.plugin_items, scale.plugin_small
    sizes = {
        count: (root / f"repo-{count}", worktree_jobs(root / f"repo-{count}", ["exit 0"] * count))
        for count in (items, small)
    }
    require_plugin(sizes[small][0] / "repo", small, root)
    return Workload(
        key="g",
        title=f"plugin overhead: pytest --hypotheses over {items} trivial hypotheses "
        f"({small} for the fixed part), {WORKERS} workers",
        trials=[_overhead_trial(sizes, root)],
        metrics={
            "overhead per item": "ms",
            "CPU overhead per item": "ms",
            "overhead, fixed": "s",
            "pytest per item": "ms",
            f"pytest, {items} items": "s",
            f"executor alone, {items} items": "s",
        },
        targets=[
            Target(PLUGIN, "overhead per item", 3.0, floor=0.0),
            Target(PLUGIN, "pytest per item", 5.0, floor=0.0),
        ],
    )


def _overhead_trial(sizes: Dict[int, Tuple[Path, List[Job]]], root: Path) -> Trial:
    big, small = max(sizes), min(sizes)
    rounds = [0]

    def run() -> Measurement:
        costs: Dict[Tuple[str, int], Tuple[float, float]] = {}  # (wall, cpu)
        steps = [(side, count) for count in (big, small) for side in ("pytest", "executor")]
        if rounds[0] % 2:
            steps.reverse()  # alternate the order between repeats, as for every workload
        rounds[0] += 1
        for side, count in steps:
            folder, jobs = sizes[count]
            if side == "pytest":
                costs[side, count] = _time_pytest(folder / "repo", count, root)
            else:
                batch = Batch(jobs, WORKERS)
                report = run_in_child("executor", batch, root / f"spec-{count}.json")
                if any(outcome != 0 for outcome in report.outcomes):
                    raise RuntimeError(f"executor alone: not every script passed: {report}")
                costs[side, count] = (report.wall, report.cpu)

        def slope(kind: int) -> Tuple[float, float]:
            extra_big = costs["pytest", big][kind] - costs["executor", big][kind]
            extra_small = costs["pytest", small][kind] - costs["executor", small][kind]
            per_item = (extra_big - extra_small) / (big - small)
            return per_item, extra_small - small * per_item

        per_item, fixed = slope(0)
        return {
            "overhead per item": per_item * 1000,
            "CPU overhead per item": slope(1)[0] * 1000,
            "overhead, fixed": fixed,
            "pytest per item": (costs["pytest", big][0] - costs["pytest", small][0])
            / (big - small)
            * 1000,
            f"pytest, {big} items": costs["pytest", big][0],
            f"executor alone, {big} items": costs["executor", big][0],
        }

    return Trial(PLUGIN, run)


def _time_pytest(repo: Path, count: int, root: Path) -> Tuple[float, float]:
    """Wall and CPU time of one ``pytest --hypotheses`` run that must pass every item."""
    cpu_start = children_cpu()
    start = time.perf_counter()
    completed = run_pytest(repo, root, "-q", f"--hypotheses-workers={WORKERS}")
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu_start
    if completed.returncode != 0 or f"{count} passed" not in completed.stdout:
        raise RuntimeError(
            f"{PLUGIN} did not pass {count} hypotheses (exit {completed.returncode}):\n"
            + completed.stdout[-2000:]
            + completed.stderr[-2000:]
        )
    return wall, cpu


def require_plugin(repo: Path, count: int, root: Path) -> None:
    """Refuse politely when the installed package has no working plugin yet."""
    completed = run_pytest(repo, root, "--collect-only", "-q")
    if completed.returncode != 0 or f"{count} tests collected" not in completed.stdout:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        last = output[-1] if output else f"exit code {completed.returncode}"
        raise Unavailable(f"{PLUGIN} does not collect the hypotheses yet ({last})")


def run_pytest(repo: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest --hypotheses over ``repo`` in a fresh process."""
    return fresh_pytest(cwd, f"--hypotheses={repo}", *args)


def fresh_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh process, away from any project configuration and outer pytest."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env=fresh_environment(cwd / "pycache"),
        capture_output=True,
        text=True,
        check=False,
    )
