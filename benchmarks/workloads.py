"""Workloads (a) to (f): the scripts each one runs, its runners, references and targets.

Each factory writes its scripts under a scratch folder and returns a :class:`Workload`. Every
trial checks the outcomes its runner reports, so a runner that fails fast never looks fast.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from .child import run_in_child
from .layouts import folder_jobs
from .processes import kill_survivors, survivors, unique_token
from .runners import RUNNERS, Batch, Outcome, Runner
from .schedule import list_schedule_makespan, longest_first, optimal_makespan
from .suite import Measurement, Target, Trial, Workload

ALL_RUNNERS = ("executor", "threadpool", "xargs", "spawn", "asyncio floor")
#: Sleeping workloads are judged against their ideal time; the legacy design and the spawn
#: limit put that in context (xargs, as fast as the spawn limit there, would only add time).
SLEEP_RUNNERS = ("executor", "threadpool", "spawn")
#: Runners whose work happens in this process, so that its CPU time is theirs.
IN_PROCESS = {"executor", "threadpool", "spawn", "asyncio floor"}

#: Workload (d): script durations in input order, in seconds at scale 1. A few long scripts
#: come late, as they do when hypotheses are ranked by likelihood rather than by duration.
SKEWED_DURATIONS = (0.2, 0.2, 0.4, 0.2, 0.2, 0.2, 0.8, 0.2, 0.2, 0.4, 0.2, 0.2, 0.2, 1.6, 0.2, 0.4)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Scale:
    """Sizes of every workload: the full figures of the issue, or a few-second smoke run."""

    spawn_count: int
    spawn_concurrency: int
    overlap_count: int
    overlap_sleep: float
    bounded_count: int
    bounded_concurrency: int
    bounded_sleep: float
    skew_factor: float
    skew_workers: int
    storm_count: int
    storm_timeout: float
    storm_grace: float
    flood_bytes: int
    plugin_items: int
    plugin_small: int
    watch_items: int
    output_items: int
    repeats: Optional[int] = None  # None: each workload's own default
    # Workloads (h)-(l), see fitting.py. The CPU-bound scripts take 2 CPU-s with a
    # 30 s timeout; a quarter of both keeps the sweep of (h) near a minute.
    cpu_count: int = 24
    cpu_seconds: float = 0.5
    cpu_timeout: float = 7.5
    cpu_sweep: int = 8
    mixed_cpu: int = 12
    mixed_sleeping: int = 50
    uneven_count: int = 12
    deadline_timeout: float = 2.0
    burners: int = 4
    hog_step: int = 100
    hog_limit: int = 500
    plugin_sum_items: int = 1000


FULL = Scale(
    spawn_count=400,
    spawn_concurrency=8,
    overlap_count=100,
    overlap_sleep=1.0,
    bounded_count=40,
    bounded_concurrency=8,
    bounded_sleep=0.5,
    skew_factor=1.0,
    skew_workers=4,
    storm_count=50,
    storm_timeout=1.0,
    storm_grace=1.0,
    flood_bytes=1024 * MIB,
    plugin_items=200,
    plugin_small=20,
    watch_items=400,
    output_items=400,
)

QUICK = Scale(
    spawn_count=20,
    spawn_concurrency=4,
    overlap_count=10,
    overlap_sleep=0.2,
    bounded_count=8,
    bounded_concurrency=4,
    bounded_sleep=0.1,
    skew_factor=0.25,
    skew_workers=4,
    storm_count=4,
    storm_timeout=0.3,
    storm_grace=0.3,
    flood_bytes=8 * MIB,
    plugin_items=6,
    plugin_small=2,
    watch_items=6,
    output_items=4,
    repeats=1,
    cpu_count=4,
    cpu_seconds=0.1,
    cpu_timeout=10.0,
    cpu_sweep=2,
    mixed_cpu=2,
    mixed_sleeping=4,
    uneven_count=3,
    deadline_timeout=0.3,
    burners=1,
    hog_step=20,
    hog_limit=100,
    plugin_sum_items=10,
)


def spawn_bound(scale: Scale, root: Path) -> Workload:
    """(a) Trivial scripts: the cost of starting, watching and reaping a process."""
    count, concurrency = scale.spawn_count, scale.spawn_concurrency
    batch = Batch(folder_jobs(root, ["exit 0"] * count), concurrency)
    return Workload(
        key="a",
        title=f"spawn-bound: {count} x exit 0, concurrency {concurrency}",
        trials=[
            _timed(name, RUNNERS[name], batch, expected=0, cpu=name in IN_PROCESS)
            for name in ALL_RUNNERS
        ],
        metrics={"wall": "s", "runner CPU": "s"},
        targets=[
            Target("executor", "wall", 1.0, "threadpool"),
            Target("executor", "wall", 1.3, "spawn"),
        ],
        repeats=5,
    )


def overlap(scale: Scale, root: Path) -> Workload:
    """(b) Every script at once: does the runner overlap them fully?"""
    count, seconds = scale.overlap_count, scale.overlap_sleep
    batch = Batch(folder_jobs(root, [f"sleep {seconds:g}"] * count), count)
    return Workload(
        key="b",
        title=f"overlap: {count} x sleep {seconds:g}, concurrency {count}",
        trials=[_timed(name, RUNNERS[name], batch, expected=0) for name in SLEEP_RUNNERS],
        metrics={"wall": "s"},
        references={"ideal": seconds},
        targets=[Target("executor", "wall", 1.05, "ideal")],
    )


def bounded(scale: Scale, root: Path) -> Workload:
    """(c) More scripts than slots: is the next script started as soon as a slot frees?"""
    count, seconds = scale.bounded_count, scale.bounded_sleep
    concurrency = scale.bounded_concurrency
    batch = Batch(folder_jobs(root, [f"sleep {seconds:g}"] * count), concurrency)
    return Workload(
        key="c",
        title=f"bounded: {count} x sleep {seconds:g}, concurrency {concurrency}",
        trials=[_timed(name, RUNNERS[name], batch, expected=0) for name in SLEEP_RUNNERS],
        metrics={"wall": "s"},
        references={"ideal": math.ceil(count / concurrency) * seconds},
        targets=[Target("executor", "wall", 1.03, "ideal")],
    )


def skewed(scale: Scale, root: Path) -> Workload:
    """(d) Uneven durations on fewer workers than scripts: makespan against the optimum.

    Without expected durations the executor starts scripts in input order; told the durations
    (as the plugin does from an earlier run's), it starts the quick ones first while they are a
    twentieth of the work, then the longest. The same batch pre-sorted longest first by hand
    shows what that order achieves by itself.
    """
    durations = [round(d * scale.skew_factor, 3) for d in SKEWED_DURATIONS]
    workers = scale.skew_workers
    jobs = folder_jobs(root, [f"sleep {d:g}" for d in durations])
    in_order = Batch(jobs, workers)
    told = Batch(jobs, workers, expected=durations)
    sorted_first = Batch([jobs[i] for i in longest_first(durations)], workers)
    return Workload(
        key="d",
        title=f"skewed: {len(jobs)} scripts of {min(durations):g}-{max(durations):g} s "
        f"on {workers} workers",
        trials=[
            _timed("executor", RUNNERS["executor"], in_order, 0, "makespan"),
            _timed("executor, durations known", RUNNERS["executor"], told, 0, "makespan"),
            _timed("executor, sorted input", RUNNERS["executor"], sorted_first, 0, "makespan"),
            _timed("threadpool", RUNNERS["threadpool"], in_order, 0, "makespan"),
        ],
        metrics={"makespan": "s"},
        references={
            "optimum": optimal_makespan(durations, workers),
            "input order, ideal": list_schedule_makespan(durations, workers),
        },
        targets=[
            Target("executor", "makespan", 1.10, "optimum"),
            Target("executor, durations known", "makespan", 1.10, "optimum"),
        ],
    )


def timeout_storm(scale: Scale, root: Path) -> Workload:
    """(e) Every script hangs past its deadline and leaves grandchildren behind.

    Each script leaves one grandchild that holds its output pipes and one that escaped into
    a session of its own; every other script also ignores SIGTERM, so its tree needs the
    SIGKILL after the grace period. Survivors are counted the moment the runner returns.
    """
    holder, escapee = unique_token(4), unique_token(60)
    bodies = [
        ("trap '' TERM\n" if index % 2 else "")
        + f"( sleep {holder} & )\n( setsid sleep {escapee} >/dev/null 2>&1 & )\nsleep {holder}"
        for index in range(scale.storm_count)
    ]
    batch = Batch(
        folder_jobs(root, bodies),
        scale.storm_count,
        timeout=scale.storm_timeout,
        grace=scale.storm_grace,
    )
    return Workload(
        key="e",
        title=f"timeout storm: {scale.storm_count} hanging scripts with grandchildren, "
        f"timeout {scale.storm_timeout:g} s, grace {scale.storm_grace:g} s",
        trials=[
            _storm_trial(name, RUNNERS[name], batch, (holder, escapee))
            for name in ("executor", "threadpool")
        ],
        metrics={"wall": "s", "survivors": "procs"},
        references={"bound": scale.storm_timeout + scale.storm_grace + 0.5},
        targets=[
            Target("executor", "wall", 1.0, "bound", statistic="max"),
            Target("executor", "survivors", 0, statistic="max"),
        ],
    )


def output_flood(scale: Scale, root: Path) -> Workload:
    """(f) One script writes a lot: how much memory does the runner need for it?"""
    size = scale.flood_bytes
    batch = Batch(folder_jobs(root, [f"head -c {size} /dev/zero"]), 1)
    return Workload(
        key="f",
        title=f"output flood: one script writing {_size_text(size)} to stdout "
        "(the threadpool, which buffers it all, runs once)",
        trials=[
            _child_trial("executor", batch, root / "executor.json"),
            _child_trial("threadpool", batch, root / "threadpool.json", repeats=1),
        ],
        metrics={"RSS growth": "MiB", "wall": "s"},
        targets=[Target("executor", "RSS growth", 50)],
    )


def _timed(
    label: str,
    runner: Runner,
    batch: Batch,
    expected: Outcome,
    metric: str = "wall",
    cpu: bool = False,
) -> Trial:
    """A trial timing ``runner``; with ``cpu``, also the CPU time this process spent on it
    (all its threads, not the scripts), which a busy machine distorts far less than time."""

    def run() -> Measurement:
        cpu_start = _own_cpu()
        start = time.perf_counter()
        outcomes = runner(batch)
        wall = time.perf_counter() - start
        cpu_used = _own_cpu() - cpu_start
        _check(label, outcomes, expected)
        return {metric: wall, "runner CPU": cpu_used} if cpu else {metric: wall}

    return Trial(label, run)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _storm_trial(label: str, runner: Runner, batch: Batch, tokens: Sequence[str]) -> Trial:
    def run() -> Measurement:
        start = time.perf_counter()
        outcomes = runner(batch)
        wall = time.perf_counter() - start
        left = sum(len(survivors(token)) for token in tokens)
        for token in tokens:
            kill_survivors(token)
        _check(label, outcomes, None)
        return {"wall": wall, "survivors": float(left)}

    return Trial(label, run)


def _child_trial(
    runner: str, batch: Batch, spec_path: Path, repeats: Optional[int] = None
) -> Trial:
    def run() -> Measurement:
        report = run_in_child(runner, batch, spec_path)
        _check(runner, report.outcomes, 0)
        return {"RSS growth": report.rss_growth / MIB, "wall": report.wall}

    return Trial(runner, run, repeats)


def _check(label: str, outcomes: List[Outcome], expected: Outcome) -> None:
    """Refuse a measurement whose scripts did not all end as the workload intends."""
    wrong: List[Tuple[int, Outcome]] = [
        (index, outcome) for index, outcome in enumerate(outcomes) if outcome != expected
    ]
    if wrong:
        raise RuntimeError(
            f"{label}: {len(wrong)} of {len(outcomes)} scripts did not end with "
            f"{'a timeout' if expected is None else f'exit {expected}'}: {wrong[:5]}"
        )


def _size_text(size: int) -> str:
    return f"{size / 1024**3:g} GiB" if size >= 1024**3 else f"{size / MIB:g} MiB"


FACTORIES = {
    "a": spawn_bound,
    "b": overlap,
    "c": bounded,
    "d": skewed,
    "e": timeout_storm,
    "f": output_flood,
}
