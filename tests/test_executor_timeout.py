"""A script that overstays is stopped with its whole process tree and reported as TIMEOUT."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, List

import psutil
import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisStatus,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.engine import process as process_module
from pytest_parallel_hypotheses.engine.snapshot import Snapshot

TIMEOUT = 0.5
GRACE = 0.3
#: Generous bound that only catches a run hanging instead of being stopped.
HANG = 15.0
#: A grace longer than a slow picture of the tree at the deadline takes.
LONG_GRACE = 1.5
PICTURE_SECONDS = 0.6

LiveProcesses = Callable[[str], List[psutil.Process]]
RunScript = Callable[..., TestExecutionResult]


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("timeout")


@pytest.fixture
def run_script(worktree: Path, write_script: Callable[..., Path]) -> RunScript:
    """``run_script(body, timeout=TIMEOUT)``: write a script and return its result."""

    def run(body: str, timeout: float = TIMEOUT) -> TestExecutionResult:
        write_script(worktree, "h1", body)
        config = FalsificationConfig(test_timeout=timeout, kill_grace=GRACE)
        return TestExecutor(config).execute_single(Hypothesis("h1", "x"), worktree)

    return run


def test_an_overstaying_script_times_out_with_exit_124(
    run_script: RunScript, sleep_token: str
) -> None:
    result = run_script(f"sleep {sleep_token}")
    assert (result.result, result.exit_code) == (TestResult.TIMEOUT, 124)
    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert result.confidence == 0.3
    assert result.error_message.startswith(
        "Test exceeded 0.5s timeout; its process tree was stopped"
    )


def test_a_timeout_says_which_deadline_stopped_it(run_script: RunScript, sleep_token: str) -> None:
    result = run_script(f"sleep {sleep_token}")
    assert result.timed_out_after == TIMEOUT


def test_the_duration_of_a_timeout_is_the_real_elapsed_time(
    run_script: RunScript, sleep_token: str
) -> None:
    result = run_script(f"sleep {sleep_token}")
    assert TIMEOUT <= result.duration < TIMEOUT + HANG


def test_output_written_before_the_deadline_is_kept(
    run_script: RunScript, sleep_token: str
) -> None:
    result = run_script(f"echo started; echo warming up >&2; sleep {sleep_token}")
    assert (result.stdout, result.stderr) == ("started\n", "warming up\n")


def test_a_script_exiting_0_on_sigterm_still_times_out(
    run_script: RunScript, sleep_token: str
) -> None:
    result = run_script(f"trap 'echo stopping; exit 0' TERM; sleep {sleep_token} & wait")
    assert (result.result, result.exit_code) == (TestResult.TIMEOUT, 124)
    assert result.stdout == "stopping\n"


def test_sigterm_comes_once_then_sigkill_after_the_grace(
    run_script: RunScript, worktree: Path, sleep_token: str, live_processes: LiveProcesses
) -> None:
    body = f"trap 'echo TERM >> got-signals' TERM; while :; do sleep {sleep_token} & wait; done"
    result = run_script(body)
    assert result.result is TestResult.TIMEOUT
    assert (worktree / "got-signals").read_text() == "TERM\n"
    assert result.duration >= TIMEOUT + GRACE
    assert live_processes(sleep_token) == []


def test_a_script_ignoring_sigterm_is_killed_after_the_grace(
    run_script: RunScript, sleep_token: str, live_processes: LiveProcesses
) -> None:
    result = run_script(f"trap '' TERM; sleep {sleep_token}; sleep {sleep_token}")
    assert result.result is TestResult.TIMEOUT
    assert TIMEOUT + GRACE <= result.duration < TIMEOUT + GRACE + HANG
    assert live_processes(sleep_token) == []


def test_the_grace_counts_from_the_deadline_when_the_picture_takes_long(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tree is photographed before its SIGTERM; with thousands of processes that took
    0.4 s and more, and the script ran that much past its deadline and grace. A picture as
    slow is made here by delaying the real one, since thousands of processes would make the
    test's own timing depend on the machine."""
    slowed = process_module.take_snapshot

    async def slow_picture(*args: Any, **kwargs: Any) -> Snapshot:
        await asyncio.sleep(PICTURE_SECONDS)
        return await slowed(*args, **kwargs)

    monkeypatch.setattr(process_module, "take_snapshot", slow_picture)
    write_script(worktree, "h1", f"trap '' TERM; sleep {sleep_token}")
    config = FalsificationConfig(test_timeout=TIMEOUT, kill_grace=LONG_GRACE)

    result = TestExecutor(config).execute_single(Hypothesis("h1", "x"), worktree)

    assert result.result is TestResult.TIMEOUT
    # before: at least the deadline, the picture and the whole grace
    assert TIMEOUT + LONG_GRACE <= result.duration < TIMEOUT + PICTURE_SECONDS + LONG_GRACE


@pytest.mark.parametrize(
    "start_child",
    [
        "sleep {token} &",
        "sleep {token} >/dev/null 2>&1 &",
        "setsid sleep {token} &",
        "setsid sleep {token} >/dev/null 2>&1 </dev/null &",
        "(setsid sleep {token} >/dev/null 2>&1 </dev/null &)",
        "(sh -c 'sleep {token} & sleep {token}' >/dev/null 2>&1 &)",
    ],
    ids=[
        "child-in-group",
        "detached-child-in-group",
        "setsid-escapee-on-pipe",
        "setsid-escapee-detached",
        "double-fork-setsid",
        "double-fork-in-group",
    ],
)
def test_a_timeout_stops_the_whole_process_tree(
    run_script: RunScript, sleep_token: str, live_processes: LiveProcesses, start_child: str
) -> None:
    result = run_script(f"{start_child.format(token=sleep_token)}\nsleep {sleep_token}")
    assert result.result is TestResult.TIMEOUT
    assert live_processes(sleep_token) == []


def test_a_background_child_holding_stdout_does_not_delay_the_result(
    run_script: RunScript, sleep_token: str, live_processes: LiveProcesses
) -> None:
    result = run_script(f"sleep {sleep_token} & echo done", timeout=HANG)
    assert (result.result, result.stdout) == (TestResult.PASS, "done\n")
    assert result.duration < HANG / 2
    assert live_processes(sleep_token) == []


def test_a_background_child_holding_stderr_is_killed_at_exit(
    run_script: RunScript, sleep_token: str, live_processes: LiveProcesses
) -> None:
    result = run_script(f"sleep {sleep_token} >/dev/null & exit 3", timeout=HANG)
    assert (result.result, result.exit_code) == (TestResult.FAIL, 3)
    assert live_processes(sleep_token) == []
