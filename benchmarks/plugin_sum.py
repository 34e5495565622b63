"""Workload (m): ``pytest --hypotheses`` over many trivial hypotheses, against what its parts
cost on their own in the same repeat: pytest running as many trivial test functions, plus the
spawn limit starting as many trivial scripts.

The plugin runs at its defaults (``--hypotheses-workers=auto``), all scripts in one worktree,
in a fresh process, as a user would run it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .layouts import Job, git_repository, write_script
from .plugin_overhead import PLUGIN, fresh_pytest, require_plugin
from .runners import Batch, run_spawn_limit
from .suite import Measurement, Target, Trial, Workload
from .workloads import Scale

#: The spawn limit's concurrency (as in workload (a)).
SPAWN_CONCURRENCY = 8


def plugin_against_parts(scale: Scale, root: Path) -> Workload:
    """(m) The plugin over N trivial hypotheses against pytest over N trivial tests plus the
    spawn limit over N trivial scripts."""
    count = scale.plugin_sum_items
    repo = git_repository(root / "repo")
    jobs = [Job(f"h{index:04d}", repo) for index in range(count)]
    for job in jobs:
        write_script(job, "exit 0")
    tests = root / "plain" / "test_trivial.py"
    tests.parent.mkdir(parents=True)
    tests.write_text("".join(f"def test_{index}():\n    pass\n\n\n" for index in range(count)))
    require_plugin(repo, count, root)

    def plugin() -> Measurement:
        start = time.perf_counter()
        completed = fresh_pytest(root, f"--hypotheses={repo}", "-q", "-p", "no:cacheprovider")
        wall = time.perf_counter() - start
        _expect_passed(completed, count, PLUGIN)
        return {"wall": wall}

    def parts() -> Measurement:
        start = time.perf_counter()
        completed = fresh_pytest(root, "-q", "-p", "no:cacheprovider", str(tests))
        functions = time.perf_counter() - start
        _expect_passed(completed, count, "pytest")
        start = time.perf_counter()
        outcomes = run_spawn_limit(Batch(jobs, SPAWN_CONCURRENCY))
        spawn = time.perf_counter() - start
        if any(outcome != 0 for outcome in outcomes):
            raise RuntimeError("(m) spawn limit: not every script exited 0")
        return {"wall": functions + spawn, "pytest alone": functions, "spawn limit": spawn}

    return Workload(
        key="m",
        title=f"plugin against its parts: pytest --hypotheses over {count} trivial hypotheses "
        f"(auto) against pytest over {count} trivial tests plus the spawn limit",
        trials=[Trial(PLUGIN, plugin), Trial("pytest + spawn", parts)],
        metrics={"wall": "s", "pytest alone": "s", "spawn limit": "s"},
        targets=[Target(PLUGIN, "wall", 1.5, "pytest + spawn")],
    )


def _expect_passed(completed: subprocess.CompletedProcess[str], count: int, what: str) -> None:
    if completed.returncode != 0 or f"{count} passed" not in completed.stdout:
        raise RuntimeError(
            f"(m) {what} did not pass {count} items (exit {completed.returncode}):\n"
            + completed.stdout[-2000:]
            + completed.stderr[-2000:]
        )
