"""Run one runner over one batch in a fresh process and print what it cost, as JSON.

A runner's memory is only measurable in a process of its own (the benchmark process holds
the memory of everything before it), and an executor-alone time comparable with a pytest run
must include the same interpreter start. Used as ``python -m benchmarks.child SPEC.json``;
:func:`run_in_child` does that from the benchmark.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import psutil

from pytest_parallel_hypotheses.engine.environment import without_pytest_variables

from .layouts import Job
from .runners import RUNNERS, Batch, Outcome

#: The folder holding the ``benchmarks`` package: the child runs with it as working directory.
PROJECT_ROOT = Path(__file__).absolute().parent.parent


@dataclass(frozen=True)
class ChildReport:
    """Wall and CPU time of the whole child process (its scripts' CPU included) and its
    runner's peak memory growth."""

    wall: float
    cpu: float
    rss_growth: int
    outcomes: List[Outcome]


def fresh_environment(pycache: Path) -> Dict[str, str]:
    """The environment of a fresh interpreter started by a benchmark: no variables of an
    outer pytest run, and compiled bytecode cached in ``pycache`` as on a user's machine. The
    package is installed in development mode here, so without a cache (``PYTHONDONTWRITEBYTECODE``
    is common on CI machines) each fresh process would compile every module of the package
    from source, while pytest's own were compiled when it was installed."""
    env = without_pytest_variables()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def children_cpu() -> float:
    """CPU time of every child process this process has waited for, and of their children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_in_child(runner: str, batch: Batch, spec_path: Path) -> ChildReport:
    """Start ``python -m benchmarks.child`` for ``runner`` over ``batch`` and read its report."""
    spec = {
        "runner": runner,
        "jobs": [[job.hypothesis_id, str(job.worktree)] for job in batch.jobs],
        "concurrency": batch.concurrency,
        "timeout": batch.timeout,
        "grace": batch.grace,
    }
    spec_path.write_text(json.dumps(spec))
    cpu_start = children_cpu()
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.child", str(spec_path)],
        cwd=PROJECT_ROOT,
        env=fresh_environment(spec_path.parent / "pycache"),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu_start
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child for {runner} failed:\n{completed.stderr}")
    report = json.loads(completed.stdout)
    growth = report["rss_peak"] - report["rss_before"]
    return ChildReport(wall, cpu, growth, report["outcomes"])


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    batch = Batch(
        jobs=[Job(hypothesis_id, Path(worktree)) for hypothesis_id, worktree in spec["jobs"]],
        concurrency=spec["concurrency"],
        timeout=spec["timeout"],
        grace=spec["grace"],
    )
    rss_before = psutil.Process().memory_info().rss
    outcomes = RUNNERS[spec["runner"]](batch)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    json.dump(
        {"rss_before": rss_before, "rss_peak": peak_kib * 1024, "outcomes": outcomes}, sys.stdout
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
