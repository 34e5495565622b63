"""Both ways of starting scripts (pidfds, from the loop's thread or a spawn pool, and asyncio's
own transport where pidfds are missing) give the same results and leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, Iterator, List

import psutil
import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.engine import spawn

#: The hanging script's deadline, long enough that a busy machine does not time out the others.
QUICK = FalsificationConfig(test_timeout=2.0, kill_grace=0.2, max_concurrent_tests=4)
#: How long every spawn thread is kept busy before a script may start.
BUSY_SECONDS = 4.0


@pytest.fixture(params=["loop", "pool", "asyncio"])
def start_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once through each start path (the pidfd ones, from the loop's thread or
    the spawn pool, only where the kernel has pidfds)."""
    if request.param != "asyncio" and not spawn._pidfds_work():
        pytest.skip("this kernel has no pidfds")
    if request.param == "asyncio":
        monkeypatch.setattr(spawn, "_pidfds_work", lambda: False)
    monkeypatch.setattr(spawn, "_starts", spawn._Starts(in_pool=request.param == "pool"))
    return str(request.param)


def test_both_start_paths_classify_and_capture_alike(
    start_path: str,
    tmp_path: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: Callable[[str], List[psutil.Process]],
) -> None:
    bodies = {
        "pass": "echo out; echo err >&2",
        "fail": "exit 3",
        "hang": f"echo before; sleep {sleep_token}",
        "holder": f"sleep {sleep_token} & exit 0",
        "stdin": "read line || exit 7",
    }
    for hypothesis_id, body in bodies.items():
        write_script(tmp_path, hypothesis_id, body)
    hypotheses = [Hypothesis(hypothesis_id, "") for hypothesis_id in bodies]

    results = TestExecutor(QUICK).execute_parallel(hypotheses, {h.id: tmp_path for h in hypotheses})

    by_id = {r.hypothesis_id: r for r in results}
    assert (by_id["pass"].result, by_id["pass"].stdout, by_id["pass"].stderr) == (
        TestResult.PASS,
        "out\n",
        "err\n",
    )
    assert (by_id["fail"].result, by_id["fail"].exit_code) == (TestResult.FAIL, 3)
    assert (by_id["hang"].result, by_id["hang"].stdout) == (TestResult.TIMEOUT, "before\n")
    assert by_id["holder"].result is TestResult.PASS
    assert by_id["holder"].duration < QUICK.test_timeout  # finished at exit, not at the deadline
    assert by_id["stdin"].exit_code == 7  # stdin is /dev/null: read gets end-of-file at once
    assert live_processes(sleep_token) == []


@pytest.fixture
def fresh_starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Starts as in a new process: on the loop's thread, no spawn pool yet (the pool the
    test made, if any, is shut down after it)."""
    if not spawn._pidfds_work():
        pytest.skip("this kernel has no pidfds, so scripts start through asyncio")
    monkeypatch.setattr(spawn, "_starts", spawn._Starts())
    monkeypatch.setattr(spawn, "_pool", None)
    yield
    if spawn._pool is not None:
        spawn._pool.shutdown()


def run_three(tmp_path: Path, write_script: Callable[..., Path]) -> None:
    ids = ["one", "two", "three"]
    for hypothesis_id in ids:
        write_script(tmp_path, hypothesis_id, "exit 0")
    config = FalsificationConfig(max_concurrent_tests=1)
    results = TestExecutor(config).execute_parallel(
        [Hypothesis(hypothesis_id, "") for hypothesis_id in ids], dict.fromkeys(ids, tmp_path)
    )
    assert [r.result for r in results] == [TestResult.PASS] * 3


class _Exit(asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def process_exited(self) -> None:
        self.exited.set_result(None)


async def start_in_a_row(script: Path, count: int, **options: Any) -> None:
    """Start ``script`` ``count`` times in one turn of the loop, then wait for each exit."""
    started = []
    for _ in range(count):
        protocol = _Exit()
        env = dict(os.environ)
        transport = await spawn.start(
            protocol, [str(script)], cwd=str(script.parent), env=env, **options
        )
        started.append((protocol, transport))
    for protocol, transport in started:
        await asyncio.wait_for(protocol.exited, 30)
        transport.close()


@pytest.mark.usefixtures("fresh_starts")
def test_quick_starts_stay_on_the_loops_thread(
    tmp_path: Path, write_script: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spawn, "SLOW_START_SECONDS", 1.0)
    monkeypatch.setattr(spawn, "TURN_SECONDS", 1.0)

    run_three(tmp_path, write_script)

    assert not spawn._starts.in_pool
    assert spawn._pool is None


@pytest.mark.usefixtures("fresh_starts")
def test_a_slow_start_sends_the_later_starts_to_the_spawn_pool(
    tmp_path: Path, write_script: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spawn, "SLOW_START_SECONDS", 0.0)

    run_three(tmp_path, write_script)

    assert spawn._starts.in_pool
    assert spawn._pool is not None


@pytest.mark.usefixtures("fresh_starts")
def test_a_turn_that_spent_its_time_on_starts_leaves_its_other_starts_to_the_pool(
    tmp_path: Path, write_script: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spawn, "TURN_SECONDS", 1e-9)  # any start spends it
    script = write_script(tmp_path, "quick", "exit 0")

    asyncio.run(start_in_a_row(script, 1))
    assert spawn._pool is None  # the turn's first start runs on the loop's thread

    asyncio.run(start_in_a_row(script, 2))
    assert spawn._pool is not None
    assert not spawn._starts.in_pool  # the next turns start on the loop's thread again


@pytest.mark.usefixtures("fresh_starts")
def test_a_start_that_runs_code_in_the_child_is_left_to_the_pool(
    tmp_path: Path, write_script: Callable[..., Path]
) -> None:
    """``Popen`` forks a copy of the runner for it, in a time that grows with its memory."""
    script = write_script(tmp_path, "quick", "exit 0")

    asyncio.run(start_in_a_row(script, 1, preexec=os.getpid))

    assert spawn._pool is not None
    assert not spawn._starts.in_pool


@pytest.mark.usefixtures("fresh_starts")
def test_a_script_is_timed_from_its_start_not_from_the_wait_for_a_spawn_thread(
    tmp_path: Path, write_script: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hundreds of scripts starting at once, once starts go to the pool, keep every spawn
    thread busy; the time a script waits for one is the runner's, not the script's."""
    monkeypatch.setattr(spawn, "_starts", spawn._Starts(in_pool=True))
    write_script(tmp_path, "quick", "exit 0")
    pool = spawn._spawn_pool()
    release = threading.Event()
    busy = [pool.submit(release.wait, BUSY_SECONDS) for _ in range(pool._max_workers)]
    threading.Timer(BUSY_SECONDS, release.set).start()

    result = TestExecutor(QUICK).execute_single(Hypothesis("quick", ""), tmp_path)

    assert result.result is TestResult.PASS
    futures.wait(busy, timeout=BUSY_SECONDS)  # released when the script could start
    assert all(job.done() for job in busy)
    assert result.duration < BUSY_SECONDS / 2
