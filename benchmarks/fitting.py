"""Workloads (h) to (l) and (p): does a run fit the machine? ``auto`` concurrency on
CPU-bound, sleeping and mixed scripts and on scripts of uneven demand, deadlines on a loaded
machine, and memory limits.

The CPU-bound scripts burn a fixed amount of CPU time (``time.process_time``), so a script
takes longer only when it has to share a CPU. Every makespan is compared with fixed settings
measured in the same repeat.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from .layouts import folder_jobs
from .runners import RUNNERS, Batch, execute
from .suite import Measurement, Target, Trial, Workload
from .workloads import Scale

#: Script body burning ``{seconds}`` of CPU time in one Python process.
CPU_BODY = (
    f"exec {sys.executable} -S -c '\n"
    "import time\n"
    "end = time.process_time() + {seconds}\n"
    "while time.process_time() < end:\n"
    "    pass\n"
    "'"
)
#: Script body that allocates and touches ``{step}`` MiB every 0.1 s, for ever.
HOG_BODY = (
    f"exec {sys.executable} -S -c '\n"
    "import time\n"
    "chunks = []\n"
    "while True:\n"
    "    chunks.append(bytearray({step} * 1024 * 1024))\n"
    "    time.sleep(0.1)\n"
    "'"
)
#: A generous ceiling for ``auto``, as the open-files limit gives the plugin.
AUTO_CEILING = 1000


def cpu_mix(scale: Scale, root: Path) -> Workload:
    """(h) CPU-bound scripts: ``auto`` against the best fixed count of 1-8 and all at once."""
    count, seconds = scale.cpu_count, scale.cpu_seconds
    jobs = folder_jobs(root, [CPU_BODY.format(seconds=seconds)] * count)
    timeout = scale.cpu_timeout
    sweep = [Batch(jobs, n, timeout=timeout) for n in range(1, scale.cpu_sweep + 1)]
    return _auto_against(
        "h",
        f"CPU-bound: {count} scripts of {seconds:g} CPU-s, timeout {timeout:g} s, "
        f"auto against fixed 1-{scale.cpu_sweep} and all at once",
        Batch(jobs, AUTO_CEILING, timeout=timeout, adaptive=True),
        f"best fixed 1-{scale.cpu_sweep}",
        sweep,
        also=[_makespan("all at once", Batch(jobs, count, timeout=timeout))],
        references={"CPU-bound ideal": count * seconds / _cpus()},
    )


def io_bound(scale: Scale, root: Path) -> Workload:
    """(i) Sleeping scripts: ``auto`` must start them all, as fast as the spawn limit."""
    count, seconds = scale.overlap_count, scale.overlap_sleep
    jobs = folder_jobs(root, [f"sleep {seconds:g}"] * count)
    return Workload(
        key="i",
        title=f"I/O-bound: {count} x sleep {seconds:g} at auto",
        trials=[
            _makespan("auto", Batch(jobs, AUTO_CEILING, adaptive=True)),
            _makespan("all at once", Batch(jobs, count)),
            _makespan("spawn", Batch(jobs, count), runner="spawn"),
        ],
        metrics={"makespan": "s", "timeouts": "scripts"},
        references={"ideal": seconds},
        targets=[Target("auto", "makespan", 1.05, "spawn")],
    )


def mixed(scale: Scale, root: Path) -> Workload:
    """(j) CPU-bound scripts among sleeping ones, interleaved as a ranking would leave them:
    ``auto`` against the better of a fixed count of the CPUs and all at once."""
    cpu, sleeping, seconds = scale.mixed_cpu, scale.mixed_sleeping, scale.cpu_seconds
    total = cpu + sleeping
    cpu_at = {round(i * total / cpu) for i in range(cpu)}
    bodies = [
        CPU_BODY.format(seconds=seconds) if i in cpu_at else f"sleep {scale.overlap_sleep:g}"
        for i in range(total)
    ]
    jobs = folder_jobs(root, bodies)
    timeout = scale.cpu_timeout
    fixed = [Batch(jobs, _cpus(), timeout=timeout), Batch(jobs, total, timeout=timeout)]
    return _auto_against(
        "j",
        f"mixed: {cpu} scripts of {seconds:g} CPU-s among {sleeping} x sleep "
        f"{scale.overlap_sleep:g}, auto against {_cpus()} workers and all at once",
        Batch(jobs, AUTO_CEILING, timeout=timeout, adaptive=True),
        "better fixed",
        fixed,
    )


def uneven(scale: Scale, root: Path) -> Workload:
    """(p) One script keeping two processes busy, then scripts keeping one busy each, as one
    hypothesis whose suite runs in two processes among single-process ones: ``auto`` against
    the best fixed count of 1-4."""
    count, seconds = scale.uneven_count, scale.cpu_seconds
    single = CPU_BODY.format(seconds=seconds)
    dual = f"({single}) &\n({single}) &\nwait"
    jobs = folder_jobs(root, [dual] + [single] * count)
    timeout = scale.cpu_timeout
    sweep = [Batch(jobs, n, timeout=timeout) for n in range(1, 5)]
    return _auto_against(
        "p",
        f"uneven: one script keeping 2 processes busy for {seconds:g} CPU-s each, then "
        f"{count} keeping one, auto against fixed 1-4",
        Batch(jobs, AUTO_CEILING, timeout=timeout, adaptive=True),
        "best fixed 1-4",
        sweep,
        references={"CPU-bound ideal": (count + 2) * seconds / _cpus()},
    )


def _auto_against(
    key: str,
    title: str,
    auto: Batch,
    label: str,
    fixed: Sequence[Batch],
    *,
    also: Sequence[Trial] = (),
    references: Optional[Dict[str, float]] = None,
) -> Workload:
    """``auto`` against the best of the ``fixed`` settings (shown as ``label``) on the same
    scripts, in one repeat each: a makespan within 10% of it, and no timeout."""
    return Workload(
        key=key,
        title=title,
        trials=[_makespan("auto", auto), _best_of(label, fixed), *also],
        metrics={"makespan": "s", "timeouts": "scripts", "best N": "workers"},
        references=references or {},
        targets=[
            Target("auto", "makespan", 1.10, label),
            Target("auto", "timeouts", 0, statistic="max"),
        ],
        repeats=1,
    )


def deadline_under_load(scale: Scale, root: Path) -> Workload:
    """(k) Scripts that ignore SIGTERM and sleep past their deadline, all at once, while CPU
    burners run beside the benchmark: the longest duration must stay within the bound."""
    count, timeout, grace = scale.storm_count, scale.deadline_timeout, scale.storm_grace
    jobs = folder_jobs(root, ["trap '' TERM\nsleep 30"] * count)
    batch = Batch(jobs, count, timeout=timeout, grace=grace)

    def run() -> Measurement:
        with _burners(scale.burners):
            results = execute(batch)
        if any(r.timed_out_after is None for r in results):
            raise RuntimeError("(k): a script did not end at its deadline")
        return {"longest duration": max(r.duration for r in results)}

    return Workload(
        key="k",
        title=f"deadline under load: {count} scripts ignoring SIGTERM, timeout {timeout:g} s, "
        f"grace {grace:g} s, beside {scale.burners} CPU burners",
        trials=[Trial("executor", run)],
        metrics={"longest duration": "s"},
        references={"bound": timeout + grace + 0.5},
        targets=[Target("executor", "longest duration", 1.0, "bound", statistic="max")],
    )


def memory_limit(scale: Scale, root: Path) -> Workload:
    """(l) A script allocating 100 MiB per 0.1 s under a 500 MiB limit: its peak, as the
    kernel counted it for the reaped process, must stay under 600 MiB."""
    jobs = folder_jobs(root, [HOG_BODY.format(step=scale.hog_step)])
    limit = scale.hog_limit

    def run() -> Measurement:
        return _memory_in_child(jobs[0].worktree, jobs[0].hypothesis_id, limit)

    return Workload(
        key="l",
        title=f"memory: a script allocating {scale.hog_step} MiB per 0.1 s under "
        f"--hypotheses-memory={limit}M",
        trials=[Trial("executor", run)],
        metrics={"peak RSS": "MiB", "wall": "s"},
        targets=[Target("executor", "peak RSS", limit * 1.2, statistic="max")],
    )


def _makespan(label: str, batch: Batch, runner: str = "executor") -> Trial:
    def run() -> Measurement:
        start = time.perf_counter()
        outcomes = RUNNERS[runner](batch)
        wall = time.perf_counter() - start
        return {"makespan": wall, "timeouts": float(outcomes.count(None))}

    return Trial(label, run)


def _best_of(label: str, batches: Sequence[Batch]) -> Trial:
    """The fixed setting that ended first, found by running each (in one repeat)."""

    def run() -> Measurement:
        best: Dict[str, float] = {}
        for batch in batches:
            figures = _makespan("", batch).run()
            if not best or figures["makespan"] < best["makespan"]:
                best = {**figures, "best N": float(batch.concurrency)}
        return best

    return Trial(label, run)


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


@contextlib.contextmanager
def _burners(count: int) -> Iterator[None]:
    """``count`` processes spinning on a CPU each, for the time of the block."""
    spin = "while True:\n    pass\n"
    procs: List[subprocess.Popen[bytes]] = []
    try:
        procs = [subprocess.Popen([sys.executable, "-S", "-c", spin]) for _ in range(count)]
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


#: Runs the executor on one script in a fresh process and prints the kernel's figure of the
#: largest reaped child's peak RSS (``RUSAGE_CHILDREN``), which nothing before can inflate.
_MEMORY_CHILD = """
import json, resource, sys, time
from pathlib import Path
from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, HypothesisRun, TestExecutor
worktree, hypothesis_id, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = FalsificationConfig(test_timeout=60, memory_limit=limit * 1024 * 1024)
start = time.perf_counter()
(result,) = TestExecutor(config).execute_parallel(
    [HypothesisRun(Hypothesis(hypothesis_id, "benchmark"), Path(worktree))]
)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"peak": peak, "wall": wall, "message": result.error_message}))
"""


def _memory_in_child(worktree: Path, hypothesis_id: str, limit: int) -> Measurement:
    completed = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(worktree), hypothesis_id, str(limit)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"(l) child failed:\n{completed.stderr}")
    report = json.loads(completed.stdout)
    if "memory limit" not in report["message"]:
        raise RuntimeError(f"(l): the script was not stopped for its memory: {report}")
    return {"peak RSS": report["peak"] / 1024 / 1024, "wall": report["wall"]}


FIT_FACTORIES = {
    "h": cpu_mix,
    "i": io_bound,
    "j": mixed,
    "k": deadline_under_load,
    "l": memory_limit,
}
