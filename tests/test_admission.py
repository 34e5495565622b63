"""``auto`` concurrency: the usable CPUs at once, more only while the CPUs are idle, none while
free memory is short, and always at least one; a timeout counts from the script's own start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import pytest

from pytest_parallel_hypotheses import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.engine.admission import (
    AdaptiveAdmission,
    extra_room,
    plan_adaptive,
)
from pytest_parallel_hypotheses.engine.machine import usable_cpus
from pytest_parallel_hypotheses.engine.usage import ResourceSampler, TreeUsage

MostAliveAtOnce = Callable[[Path, FalsificationConfig, List[str]], int]


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("admission")


def test_auto_starts_as_many_scripts_as_usable_cpus_whatever_the_load(
    worktree: Path, write_script: Callable[..., Path], most_alive_at_once: MostAliveAtOnce
) -> None:
    ids = [f"h{i}" for i in range(6)]
    for hypothesis_id in ids:
        write_script(worktree, hypothesis_id, "sleep 1")
    config = FalsificationConfig(test_timeout=60, adaptive_concurrency=True, max_concurrent_tests=6)

    most = most_alive_at_once(worktree, config, ids)

    assert most >= min(usable_cpus().count, len(ids))


def test_auto_never_runs_more_than_its_ceiling(
    worktree: Path, write_script: Callable[..., Path], most_alive_at_once: MostAliveAtOnce
) -> None:
    ids = [f"h{i}" for i in range(5)]
    for hypothesis_id in ids:
        write_script(worktree, hypothesis_id, "sleep 0.3")
    config = FalsificationConfig(test_timeout=60, adaptive_concurrency=True, max_concurrent_tests=1)

    most = most_alive_at_once(worktree, config, ids)

    assert most == 1


def test_below_the_free_memory_floor_one_script_still_runs_at_a_time(
    worktree: Path, write_script: Callable[..., Path], most_alive_at_once: MostAliveAtOnce
) -> None:
    ids = [f"h{i}" for i in range(4)]
    for hypothesis_id in ids:
        write_script(worktree, hypothesis_id, "sleep 0.3")
    above_any_machine = 2**60
    config = FalsificationConfig(
        test_timeout=60,
        adaptive_concurrency=True,
        max_concurrent_tests=8,
        memory_free_floor=above_any_machine,
    )

    most = most_alive_at_once(worktree, config, ids)

    assert most == 1


def test_a_timeout_counts_from_the_scripts_start_not_from_its_wait_for_a_slot(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    ids = ["first", "second", "third"]
    for hypothesis_id in ids:
        write_script(worktree, hypothesis_id, "sleep 1")
    one_at_a_time = FalsificationConfig(test_timeout=2.5, max_concurrent_tests=1)

    results = TestExecutor(one_at_a_time).execute_parallel(
        [Hypothesis(i, "x") for i in ids], {i: worktree for i in ids}
    )

    assert [r.result for r in results] == [TestResult.PASS] * 3


@pytest.mark.parametrize(
    ("busy", "running", "cpus", "expected"),
    [
        (2.0, 2, 2, 0),  # CPU-bound scripts want every CPU: none starts
        (1.6, 3, 2, 1),  # half a CPU each: one more, within the half CPU of overcommit
        (2.2, 3, 2, 0),  # three quarters of a CPU each, already beyond the CPUs
        (0.04, 2, 2, 123),  # two sleepers on two CPUs: room for many more
        (1.0, 4, 2, 6),  # one CPU idle, a quarter of a CPU each
        (2.0, 10, 2, 2),  # two CPU-bound among sleepers: a few more sleepers fit
        (0.0, 1, 2, 125),  # nothing measured as busy: the least demand counts
    ],
)
def test_the_room_beyond_the_cpus_follows_the_scripts_demand(
    busy: float, running: int, cpus: int, expected: int
) -> None:
    assert extra_room(busy, running, cpus) == expected


def test_the_plan_of_auto_uses_the_cpus_this_process_may_use() -> None:
    plan = plan_adaptive(ceiling=50, memfree=None)

    assert plan.cpus == usable_cpus()  # affinity, and a cgroup's CPU quota where one is set
    assert 1 <= plan.cpus.count <= len(os.sched_getaffinity(0))
    assert plan.ceiling == 50
    assert plan.memfree > 0


@pytest.mark.asyncio
async def test_a_waiting_worker_cancelled_gives_up_its_place() -> None:
    admission = AdaptiveAdmission(plan_adaptive(ceiling=1, memfree=1), ResourceSampler())
    order: List[str] = []

    async def worker(name: str) -> None:
        async with admission.slot():
            order.append(name)
            await asyncio.sleep(0.05)

    first = asyncio.ensure_future(worker("first"))
    await asyncio.sleep(0)
    cancelled = asyncio.ensure_future(worker("cancelled"))
    last = asyncio.ensure_future(worker("last"))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await asyncio.gather(first, last, cancelled, return_exceptions=True)
    await admission.aclose()

    assert order == ["first", "last"]
    assert admission.running == 0


class UnreadableDemand(ResourceSampler):
    """A sampler whose look at the scripts' demand fails, as a bug of ours would."""

    def runnable(self) -> int:
        raise RuntimeError("the demand cannot be read")


@pytest.mark.asyncio
async def test_a_failing_look_at_the_demand_is_logged_and_every_worker_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admission = AdaptiveAdmission(plan_adaptive(ceiling=8, memfree=1), UnreadableDemand())
    ran: List[int] = []

    async def worker(number: int) -> None:
        async with admission.slot():
            ran.append(number)
            await asyncio.sleep(0.1)

    await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(6))), timeout=60)
    await admission.aclose()

    assert sorted(ran) == list(range(6))
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == [
        "cannot read the scripts' demand: no more than the CPUs"
    ]


def test_a_shell_waiting_for_a_busy_child_counts_as_wanting_a_cpu() -> None:
    busy = f"{sys.executable} -c 'while True: pass'"
    shell = subprocess.Popen(["/bin/sh", "-c", f"{busy}; true"], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        seen = 0
        while not seen and time.monotonic() < deadline:  # until the child has started
            seen = TreeUsage(shell.pid).runnable()
            time.sleep(0.05)
        assert seen >= 1
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()


@pytest.mark.asyncio
async def test_a_setup_step_that_waits_leaves_the_cpus_to_other_scripts(
    make_worktree: Callable[[str], Path], write_script: Callable[..., Path]
) -> None:
    """A step waiting on the network (here, asleep) wants no CPU: with one such step per
    usable CPU running, a script without a step still starts."""
    runs = []
    for index in range(usable_cpus().count):
        waiting = make_worktree(f"waiting-{index}")
        write_script(waiting, f"waits{index}", "exit 0")
        runs.append(HypothesisRun(Hypothesis(f"waits{index}", "x"), waiting, setup="sleep 60"))
    quick = make_worktree("quick")
    write_script(quick, "quick", "exit 0")
    runs.append(HypothesisRun(Hypothesis("quick", "x"), quick))
    config = FalsificationConfig(test_timeout=120, adaptive_concurrency=True, kill_grace=0.2)

    async with AsyncTestExecutor(config).as_completed(runs) as results:
        first = await asyncio.wait_for(results.__aiter__().__anext__(), timeout=30)

    assert (first.hypothesis_id, first.result) == ("quick", TestResult.PASS)
