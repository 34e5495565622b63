"""Nothing a run started outlives it: no survivors, no zombies, no open descriptors, no warnings.

Whatever ends the run: its end, a timeout, cancellation, an exception or an early exit of a
consumer, or Ctrl-C in the synchronous facade.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import psutil
import pytest

from pytest_parallel_hypotheses import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.engine import tree as tree_module
from pytest_parallel_hypotheses.engine.bridge import BackgroundStream

#: The deadline is far beyond HANG: only the clean-up under test may stop these scripts in time.
QUICK = FalsificationConfig(test_timeout=120, kill_grace=0.3)
#: Generous bound that only catches a hang.
HANG = 20.0

LiveProcesses = Callable[[str], List[psutil.Process]]


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("cleanup")


def long_runners(worktree: Path, write_script: Callable[..., Path], token: str) -> List[str]:
    """Scripts that say they started, then start a child, a setsid escapee and a double fork,
    and wait for ever: only a complete stop gets rid of them."""
    ids = ["r1", "r2", "r3"]
    for hypothesis_id in ids:
        write_script(
            worktree,
            hypothesis_id,
            f"sleep {token} &\n"
            f"setsid sleep {token} >/dev/null 2>&1 </dev/null &\n"
            f"(setsid sleep {token} >/dev/null 2>&1 </dev/null &)\n"
            f"touch started-{hypothesis_id}\n"
            f"sleep {token}",
        )
    return ids


def runs_of(ids: List[str], worktree: Path) -> List[HypothesisRun]:
    return [HypothesisRun(Hypothesis(i, "x"), worktree) for i in ids]


def reached(worktree: Path, ids: List[str], stage: str) -> bool:
    """True once every script has marked ``stage`` with a ``<stage>-<id>`` file."""
    return all((worktree / f"{stage}-{i}").exists() for i in ids)


async def started(worktree: Path, ids: List[str]) -> None:
    while not reached(worktree, ids, "started"):
        await asyncio.sleep(0.02)


def wait_until(worktree: Path, ids: List[str], stage: str = "started") -> None:
    deadline = time.monotonic() + HANG
    while not reached(worktree, ids, stage):
        assert time.monotonic() < deadline, f"the scripts did not reach {stage!r}"
        time.sleep(0.02)


@dataclass
class PassingScript:
    """Hypothesis ``h1`` in a worktree; what it starts sleeps for ``token`` seconds."""

    worktree: Path
    token: str
    write_script: Callable[..., Path]
    live_processes: LiveProcesses

    def write(self, body: str) -> None:
        self.write_script(self.worktree, "h1", body)

    def passes_leaving_nothing(self, config: FalsificationConfig = QUICK) -> TestExecutionResult:
        """Run it: it must pass, and nothing carrying the token may outlive it."""
        result = TestExecutor(config).execute_single(Hypothesis("h1", "x"), self.worktree)
        assert result.result is TestResult.PASS
        assert self.live_processes(self.token) == []
        return result


@pytest.fixture
def h1(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> PassingScript:
    return PassingScript(worktree, sleep_token, write_script, live_processes)


def test_daemons_left_by_a_passing_script_are_killed_when_the_run_returns(
    h1: PassingScript,
) -> None:
    h1.write(
        f"setsid sleep {h1.token} >/dev/null 2>&1 </dev/null &\n"
        f"(setsid sleep {h1.token} >/dev/null 2>&1 </dev/null &)\n"
        f"(sleep {h1.token} >/dev/null 2>&1 </dev/null &)\n"
        "exit 0",
    )
    assert h1.passes_leaving_nothing().duration < HANG


def test_a_run_whose_watchdog_was_killed_still_returns_every_result(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """A script's ``pkill -f``, an administrator or the out-of-memory killer can end the
    run's watchdog process: telling it the run ended then fails, and must not lose the
    results or hang the run's end."""
    started = worktree / "started"
    write_script(worktree, "a", f"touch {started}\nsleep 1\nexit 1")
    write_script(worktree, "b", "exit 0")

    def kill_the_watchdog() -> None:
        deadline = time.monotonic() + HANG
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if any("stop_run" in part for part in child.cmdline()):
                    child.kill()

    def run() -> None:
        executor = TestExecutor(FalsificationConfig(test_timeout=30))
        hypotheses = [Hypothesis("a", "x"), Hypothesis("b", "x")]
        results.extend(executor.execute_parallel(hypotheses, {"a": worktree, "b": worktree}))

    results: List[TestExecutionResult] = []
    killer = threading.Thread(target=kill_the_watchdog)
    runner = threading.Thread(target=run, daemon=True)  # a hung run must not hang the suite
    killer.start()
    runner.start()
    runner.join(HANG)
    killer.join()

    assert not runner.is_alive(), "the run did not return"
    assert [r.result for r in results] == [TestResult.FAIL, TestResult.PASS]


def test_a_daemons_unmarked_group_mates_are_killed_with_it(h1: PassingScript) -> None:
    """``env -i`` clears the marker, but the process stays in the daemon's group."""
    h1.write(
        f'setsid sh -c \'env -i sh -c "touch cleared; exec sleep {h1.token}" & '
        f"exec sleep {h1.token}' >/dev/null 2>&1 </dev/null &\n"
        "until [ -e cleared ]; do sleep 0.05; done\n"
        "exit 0",
    )
    h1.passes_leaving_nothing()


@pytest.mark.asyncio
async def test_cancelling_the_awaiting_task_stops_every_script(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    ids = long_runners(worktree, write_script, sleep_token)
    task = asyncio.ensure_future(
        AsyncTestExecutor(QUICK).execute_parallel_async(runs_of(ids, worktree))
    )
    await asyncio.wait_for(started(worktree, ids), HANG)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG)
    assert live_processes(sleep_token) == []


@contextlib.contextmanager
def sigint(disposition: Any) -> Iterator[None]:
    """This process's SIGINT handled as ``disposition`` in the block: what scripts started
    then inherit (an ignored signal stays ignored across ``exec``)."""
    previous = signal.signal(signal.SIGINT, disposition)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def cancelled_once_started(config: FalsificationConfig, worktree: Path) -> float:
    """Run hypothesis ``h1``, cancel the run once its script started, wait for the clean-up;
    the moment of the cancellation."""
    task = asyncio.ensure_future(
        AsyncTestExecutor(config).execute_parallel_async(runs_of(["h1"], worktree))
    )
    await asyncio.wait_for(started(worktree, ["h1"]), HANG)
    cancelled = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG)
    return cancelled


@pytest.mark.asyncio
async def test_an_interrupted_script_is_interrupted_as_ctrl_c_would(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """SIGINT first: a Python script's ``finally`` runs on it (pip removes its temporary
    folders), where SIGTERM ends the interpreter at once."""
    tidy = "import time, pathlib\ntry:\n    pathlib.Path('started-h1').touch()\n"
    tidy += "    time.sleep(120)\nfinally:\n    pathlib.Path('tidied').touch()\n"
    (worktree / "tidy.py").write_text(tidy)
    write_script(worktree, "h1", f"exec {sys.executable} tidy.py")
    patient = FalsificationConfig(test_timeout=120, kill_grace=10)
    with sigint(signal.default_int_handler):  # a pytest-xdist worker ignores it
        await cancelled_once_started(patient, worktree)
    assert (worktree / "tidied").exists()


@pytest.mark.asyncio
async def test_an_interrupted_script_that_inherited_an_ignored_sigint_gets_sigterm(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """Under ``nohup`` or started in the background, the runner ignores SIGINT and so do its
    scripts: SIGTERM must come at once, with the whole grace."""
    write_script(
        worktree,
        "h1",
        "trap 'touch tidied; exit 0' TERM\ntouch started-h1\nwhile :; do sleep 0.05; done",
    )
    patient = FalsificationConfig(test_timeout=120, kill_grace=10)
    with sigint(signal.SIG_IGN):
        cancelled = await cancelled_once_started(patient, worktree)
    assert (worktree / "tidied").exists()
    assert time.monotonic() - cancelled < patient.kill_grace / 2  # no SIGINT waited for


def test_a_daemons_unmarked_group_mates_get_the_grace_period(h1: PassingScript) -> None:
    """SIGTERM, then ``kill_grace`` seconds to finish, as for every process of the tree."""
    (h1.worktree / "mate.sh").write_text(
        f"trap 'sleep 0.5; touch tidied; exit 0' TERM\ntouch cleared\nsleep {h1.token} &\nwait\n"
    )
    h1.write(
        f"setsid sh -c 'env -i /bin/sh mate.sh & exec sleep {h1.token}' "
        ">/dev/null 2>&1 </dev/null &\n"
        "until [ -e cleared ]; do sleep 0.05; done\n"
        "exit 0",
    )
    patient = FalsificationConfig(test_timeout=120, kill_grace=10)
    h1.passes_leaving_nothing(patient)
    assert (h1.worktree / "tidied").exists()


@pytest.mark.asyncio
async def test_a_second_cancellation_kills_every_script_and_forgets_its_group(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    """A group left registered would be killed by a later emergency stop, when its number may
    name another process's group."""
    ids = ["a", "b"]
    for hypothesis_id in ids:
        write_script(
            worktree,
            hypothesis_id,
            f"trap '' INT TERM\necho $$ > group-{hypothesis_id}\ntouch started-{hypothesis_id}\n"
            f"sleep {sleep_token}",
        )
    patient = FalsificationConfig(test_timeout=120, kill_grace=60)
    task = asyncio.ensure_future(
        AsyncTestExecutor(patient).execute_parallel_async(runs_of(ids, worktree))
    )
    await asyncio.wait_for(started(worktree, ids), HANG)
    task.cancel()
    await asyncio.sleep(0.5)  # the scripts ignore SIGINT and SIGTERM: the grace is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG)
    groups = {int((worktree / f"group-{i}").read_text()) for i in ids}
    assert live_processes(sleep_token) == []
    assert groups.isdisjoint(tree_module._live_groups)


@pytest.mark.asyncio
async def test_cancelling_at_any_step_of_the_start_up_stops_every_script(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    ids = ["a", "b"]
    for hypothesis_id in ids:
        write_script(worktree, hypothesis_id, f"sleep {sleep_token} & sleep {sleep_token}")
    executor = AsyncTestExecutor(QUICK)
    for steps in range(8):  # each count of loop steps cancels a different part of the start
        task = asyncio.ensure_future(executor.execute_parallel_async(runs_of(ids, worktree)))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, HANG)
        assert live_processes(sleep_token) == [], f"survivors after {steps} steps"


@pytest.mark.asyncio
async def test_an_exception_in_the_consumer_stops_every_script(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    ids = long_runners(worktree, write_script, sleep_token)
    write_script(worktree, "quick", "exit 0")
    runs = runs_of(["quick", *ids], worktree)

    async def consume() -> None:
        async with AsyncTestExecutor(QUICK).as_completed(runs) as results:
            async for _ in results:
                await asyncio.wait_for(started(worktree, ids), HANG)
                raise RuntimeError("consumer failed")

    with pytest.raises(RuntimeError, match="consumer failed"):
        await asyncio.wait_for(consume(), HANG)
    assert live_processes(sleep_token) == []


@pytest.mark.asyncio
async def test_breaking_out_of_as_completed_stops_every_script(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    ids = long_runners(worktree, write_script, sleep_token)
    write_script(worktree, "quick", "exit 0")
    runs = runs_of(["quick", *ids], worktree)

    async def consume() -> str:
        async with AsyncTestExecutor(QUICK).as_completed(runs) as results:
            async for result in results:
                await asyncio.wait_for(started(worktree, ids), HANG)
                return result.hypothesis_id
        return "nothing"

    assert await asyncio.wait_for(consume(), HANG) == "quick"
    assert live_processes(sleep_token) == []


@pytest.mark.asyncio
async def test_scripts_not_yet_started_never_start_once_the_consumer_leaves(
    worktree: Path, write_script: Callable[..., Path], tmp_path: Path, sleep_token: str
) -> None:
    write_script(worktree, "first", "exit 0")
    write_script(worktree, "second", f"sleep {sleep_token}")
    write_script(worktree, "third", f"touch '{tmp_path / 'third-ran'}'")
    config = FalsificationConfig(test_timeout=120, kill_grace=0.3, max_concurrent_tests=1)
    runs = runs_of(["first", "second", "third"], worktree)

    async def take_one() -> None:
        async with AsyncTestExecutor(config).as_completed(runs) as results:
            async for _ in results:
                break

    await asyncio.wait_for(take_one(), HANG)
    await asyncio.sleep(0.2)
    assert not (tmp_path / "third-ran").exists()


def test_leaving_a_background_stream_early_stops_every_script(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    ids = long_runners(worktree, write_script, sleep_token)
    write_script(worktree, "quick", "exit 0")
    executor = TestExecutor(QUICK)
    runs = runs_of(["quick", *ids], worktree)
    seen = []
    start = time.monotonic()
    with BackgroundStream(lambda: executor.as_completed(runs)) as stream:
        for result in stream:
            seen.append(result.hypothesis_id)
            wait_until(worktree, ids)
            break
    assert time.monotonic() - start < HANG
    assert seen == ["quick"]
    assert live_processes(sleep_token) == []


def test_a_background_stream_hands_over_every_result(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    for hypothesis_id in ("a", "b", "c"):
        write_script(worktree, hypothesis_id, "exit 0")
    executor = TestExecutor(QUICK)
    runs = runs_of(["a", "b", "c"], worktree)
    with BackgroundStream(lambda: executor.as_completed(runs)) as stream:
        ids = sorted(result.hypothesis_id for result in stream)
    assert ids == ["a", "b", "c"]


INTERRUPTED_CHILD = textwrap.dedent(
    """
    import signal, sys
    from pytest_parallel_hypotheses import (
        FalsificationConfig, Hypothesis, HypothesisRun, TestExecutor,
    )
    from pytest_parallel_hypotheses.engine.bridge import BackgroundStream

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    worktree, mode, grace, ids = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    executor = TestExecutor(FalsificationConfig(test_timeout=600, kill_grace=grace))
    runs = [HypothesisRun(Hypothesis(i, "x"), worktree) for i in ids]
    try:
        if mode == "facade":
            executor.execute_parallel(runs)
        else:
            with BackgroundStream(lambda: executor.as_completed(runs)) as stream:
                for _ in stream:
                    pass
    except KeyboardInterrupt:
        print("interrupted")
    else:
        print("finished")
    """
)


def start_interruptible(
    worktree: Path, mode: str, grace: float, ids: List[str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_CHILD, str(worktree), mode, str(grace), *ids],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("mode", ["facade", "stream"])
def test_ctrl_c_in_synchronous_code_stops_every_script(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
    mode: str,
) -> None:
    ids = long_runners(worktree, write_script, sleep_token)
    with start_interruptible(worktree, mode, 0.3, ids) as child:
        try:
            wait_until(worktree, ids)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=HANG)
        finally:
            child.kill()
    assert (out, child.returncode) == ("interrupted\n", 0), err
    assert live_processes(sleep_token) == []


def test_a_second_ctrl_c_skips_the_grace_period(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    """The scripts and their children outlive SIGINT and SIGTERM, so after the first Ctrl-C
    the run would wait out its whole grace period; the second one must end it at once,
    escaped processes included."""
    ids = ["t1", "t2"]
    stubborn = f"sh -c \"trap '' INT TERM; exec sleep {sleep_token}\""
    for hypothesis_id in ids:
        write_script(
            worktree,
            hypothesis_id,
            f"trap 'touch terminated-{hypothesis_id}' INT TERM\n"
            f"{stubborn} &\n"
            f"setsid {stubborn} >/dev/null 2>&1 </dev/null &\n"
            f"touch started-{hypothesis_id}\n"
            "while :; do sleep 0.05; done",
        )
    with start_interruptible(worktree, "facade", 600, ids) as child:
        try:
            wait_until(worktree, ids)
            child.send_signal(signal.SIGINT)
            wait_until(worktree, ids, "terminated")
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=HANG)
        finally:
            child.kill()
    assert (out, child.returncode) == ("interrupted\n", 0), err
    assert live_processes(sleep_token) == []
    assert live_processes(str(worktree)) == []  # the looping scripts themselves


MIXED = {
    "pass": "echo ok",
    "fail": "echo bad >&2; exit 1",
    "slow": "sleep {token} & sleep {token}",
    "holder": "sleep {token} & echo started",
    "escapee": "setsid sleep {token} >/dev/null 2>&1 </dev/null & exit 0",
    "crash": "kill -SEGV $$",
}


@pytest.fixture
def mixed_batch(
    worktree: Path, write_script: Callable[..., Path], sleep_token: str
) -> Tuple[List[Hypothesis], Dict[str, str]]:
    """A batch with every kind of ending: pass, fail, timeout, a child holding the pipes, an
    escaped daemon, a crash, a missing script and a script that cannot be executed."""
    for hypothesis_id, body in MIXED.items():
        write_script(worktree, hypothesis_id, body.format(token=sleep_token))
    bare = worktree / ".falsification" / "test_bare.sh"
    bare.write_text("echo no shebang\n")
    bare.chmod(0o755)
    ids = [*MIXED, "missing", "bare"]
    return [Hypothesis(i, "x") for i in ids], {i: str(worktree) for i in ids}


#: Long enough that a busy machine does not time out the scripts meant to end by themselves.
MIXED_CONFIG = FalsificationConfig(test_timeout=2.0, kill_grace=0.2, max_concurrent_tests=4)


def open_descriptors() -> List[str]:
    return sorted(os.listdir("/proc/self/fd"))


def children() -> List[psutil.Process]:
    return psutil.Process().children(recursive=True)


def test_a_run_leaves_no_children_and_no_zombies(
    mixed_batch: Tuple[List[Hypothesis], Dict[str, str]],
) -> None:
    before = {p.pid for p in children()}
    TestExecutor(MIXED_CONFIG).execute_parallel(*mixed_batch)
    assert [p for p in children() if p.pid not in before] == []


def test_a_run_leaves_no_open_descriptors(
    mixed_batch: Tuple[List[Hypothesis], Dict[str, str]],
) -> None:
    TestExecutor(MIXED_CONFIG).execute_parallel(*mixed_batch)  # warm up lazy imports
    before = open_descriptors()
    results = TestExecutor(MIXED_CONFIG).execute_parallel(*mixed_batch)
    assert open_descriptors() == before
    assert len(results) == len(mixed_batch[0])


def test_a_run_leaves_no_survivors(
    mixed_batch: Tuple[List[Hypothesis], Dict[str, str]],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    results = TestExecutor(MIXED_CONFIG).execute_parallel(*mixed_batch)
    assert [r.result.value for r in results] == [
        "pass",
        "fail",
        "timeout",
        "pass",
        "pass",
        "fail",
        "error",
        "error",
    ]
    assert live_processes(sleep_token) == []


DEV_MODE_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pytest_parallel_hypotheses import (
        AsyncTestExecutor, FalsificationConfig, Hypothesis, HypothesisRun, TestExecutor,
    )

    worktree, ids = sys.argv[1], sys.argv[2:]
    config = FalsificationConfig(test_timeout=0.5, kill_grace=0.2, max_concurrent_tests=4)
    hypotheses = [Hypothesis(i, "x") for i in ids]
    TestExecutor(config).execute_parallel(hypotheses, {i: worktree for i in ids})

    async def leave_early():
        runs = [HypothesisRun(h, worktree) for h in hypotheses]
        async with AsyncTestExecutor(config).as_completed(runs) as results:
            async for _ in results:
                break

    asyncio.run(leave_early())
    """
)


#: Development mode also reports loop steps slower than 0.1 s: a busy machine, not a leak.
SLOW_STEP = re.compile(r"Executing <.*> took [0-9.]+ seconds")


def test_a_run_raises_no_resource_warning_in_development_mode(
    mixed_batch: Tuple[List[Hypothesis], Dict[str, str]],
) -> None:
    hypotheses, worktrees = mixed_batch
    child = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error::ResourceWarning",
            "-c",
            DEV_MODE_CHILD,
            worktrees["pass"],
            *(h.id for h in hypotheses),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert [line for line in child.stderr.splitlines() if not SLOW_STEP.fullmatch(line)] == []


def test_a_daemon_left_by_one_attempt_is_gone_before_the_next(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    """A server the last attempt left holding its port would make the next one fail."""
    write_script(
        worktree,
        "h1",
        # alive, and not a zombie that an init which never reaps would leave
        'if [ -s daemon ] && grep -qs "^State:[^Z]*$" "/proc/$(cat daemon)/status"; then\n'
        "  exit 1\n"
        "fi\n"
        "rm -f daemon\n"
        f"setsid sh -c 'echo $$ > daemon; exec sleep {sleep_token}' "
        ">/dev/null 2>&1 </dev/null &\n"
        "until [ -s daemon ]; do sleep 0.02; done\n"
        "exit 0",
    )
    config = FalsificationConfig(test_timeout=120, kill_grace=0.3, repeats=3)
    result = TestExecutor(config).execute_single(Hypothesis("h1", "x"), worktree)
    assert [attempt.result for attempt in result.attempts] == [TestResult.PASS] * 3
    assert live_processes(sleep_token) == []
