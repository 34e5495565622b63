"""Stopping a run once a verdict is reached: what still runs is stopped with its whole tree,
what has not started never starts, and each of them is reported as skipped with the reason."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable, Dict, List

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
from pytest_parallel_hypotheses.engine.bridge import BackgroundStream
from pytest_parallel_hypotheses.engine.gate import StartGate

#: The deadline is far beyond HANG: only the stop under test may end these scripts in time.
QUICK = FalsificationConfig(test_timeout=120, kill_grace=0.3)
#: Generous bound that only catches a hang.
HANG = 20.0

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
LiveProcesses = Callable[[str], List[psutil.Process]]


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("halt")


def long_runner(token: str) -> str:
    """A script that starts a child, a setsid escapee and a double fork, then waits for ever."""
    return (
        f"sleep {token} &\n"
        f"setsid sleep {token} >/dev/null 2>&1 </dev/null &\n"
        f"(setsid sleep {token} >/dev/null 2>&1 </dev/null &)\n"
        f"sleep {token}"
    )


def runs_of(ids: List[str], worktree: Path) -> List[HypothesisRun]:
    return [HypothesisRun(Hypothesis(i, "x"), worktree) for i in ids]


def by_id(results: List[TestExecutionResult]) -> Dict[str, TestExecutionResult]:
    return {result.hypothesis_id: result for result in results}


def test_a_supported_verdict_stops_the_others_with_no_survivors(
    worktree: Path, write_script: WriteScript, sleep_token: str, live_processes: LiveProcesses
) -> None:
    write_script(worktree, "quick", "sleep 0.3; exit 1")
    write_script(worktree, "slow1", long_runner(sleep_token))
    write_script(worktree, "slow2", long_runner(sleep_token))
    started = time.monotonic()

    results = TestExecutor(QUICK).execute_parallel(
        runs_of(["quick", "slow1", "slow2"], worktree), stop_on="supported"
    )

    assert time.monotonic() - started < HANG
    assert [r.result for r in results] == [TestResult.FAIL, TestResult.SKIP, TestResult.SKIP]
    assert live_processes(sleep_token) == []


def test_a_stopped_hypothesis_says_which_hypothesis_reached_which_verdict(
    worktree: Path, write_script: WriteScript, sleep_token: str
) -> None:
    write_script(worktree, "quick", "sleep 0.3; exit 1")
    write_script(worktree, "slow", long_runner(sleep_token))

    results = by_id(
        TestExecutor(QUICK).execute_parallel(
            runs_of(["quick", "slow"], worktree), stop_on="supported"
        )
    )

    assert results["slow"].error_message == "stopped because hypothesis quick was SUPPORTED"
    assert results["slow"].status is not None
    assert results["slow"].status.value == "pending"  # no verdict: not counted as inconclusive


def test_hypotheses_not_started_never_start_and_say_so(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(worktree, "first", "exit 0")
    write_script(worktree, "second", f"touch '{tmp_path / 'second-ran'}'")
    config = FalsificationConfig(test_timeout=120, kill_grace=0.3, max_concurrent_tests=1)

    results = by_id(
        TestExecutor(config).execute_parallel(
            runs_of(["first", "second"], worktree), stop_on="falsified"
        )
    )

    assert results["second"].result is TestResult.SKIP
    assert results["second"].error_message == "not started because hypothesis first was FALSIFIED"
    assert not (tmp_path / "second-ran").exists()


def test_stopping_on_falsified_ignores_supported_results(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "a", "exit 1")
    write_script(worktree, "b", "exit 1")
    config = FalsificationConfig(test_timeout=120, kill_grace=0.3, max_concurrent_tests=1)

    results = TestExecutor(config).execute_parallel(
        runs_of(["a", "b"], worktree), stop_on="falsified"
    )

    assert [r.result for r in results] == [TestResult.FAIL, TestResult.FAIL]


def test_first_stops_on_a_conclusive_verdict_not_on_an_inconclusive_one(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(worktree, "a-skip", "exit 125")
    write_script(worktree, "b-pass", "exit 0")
    write_script(worktree, "c-late", f"touch '{tmp_path / 'late-ran'}'")
    config = FalsificationConfig(test_timeout=120, kill_grace=0.3, max_concurrent_tests=1)

    results = TestExecutor(config).execute_parallel(
        runs_of(["a-skip", "b-pass", "c-late"], worktree), stop_on="first"
    )

    assert [r.exit_code for r in results[:2]] == [125, 0]
    assert results[2].error_message == "not started because hypothesis b-pass was FALSIFIED"


def test_the_config_sets_the_default_stop_condition(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(worktree, "a", "exit 1")
    write_script(worktree, "b", f"touch '{tmp_path / 'b-ran'}'")
    config = FalsificationConfig(
        test_timeout=120, kill_grace=0.3, max_concurrent_tests=1, stop_on="supported"
    )

    results = TestExecutor(config).execute_parallel(runs_of(["a", "b"], worktree))

    assert results[1].result is TestResult.SKIP
    assert not (tmp_path / "b-ran").exists()


def test_any_callable_can_be_the_stop_condition(worktree: Path, write_script: WriteScript) -> None:
    write_script(worktree, "a", "exit 7")
    write_script(worktree, "b", "exit 0")
    config = FalsificationConfig(test_timeout=120, kill_grace=0.3, max_concurrent_tests=1)

    results = TestExecutor(config).execute_parallel(
        runs_of(["a", "b"], worktree), stop_on=lambda result: result.exit_code == 7
    )

    assert results[1].error_message == "not started because hypothesis a was SUPPORTED"


@pytest.mark.asyncio
async def test_an_error_in_the_stop_condition_reaches_the_consumer_with_no_survivors(
    worktree: Path, write_script: WriteScript, sleep_token: str, live_processes: LiveProcesses
) -> None:
    write_script(worktree, "quick", "exit 0")
    write_script(worktree, "slow", long_runner(sleep_token))

    def broken(result: TestExecutionResult) -> bool:
        raise RuntimeError("broken condition")

    executor = AsyncTestExecutor(QUICK)
    with pytest.raises(RuntimeError, match="broken condition"):
        await asyncio.wait_for(
            executor.execute_parallel_async(runs_of(["quick", "slow"], worktree), stop_on=broken),
            HANG,
        )
    assert live_processes(sleep_token) == []


def test_an_unknown_verdict_name_is_refused_with_the_valid_ones(worktree: Path) -> None:
    with pytest.raises(
        ValueError, match="stop_on must be one of 'supported', 'falsified', 'first'"
    ):
        AsyncTestExecutor(QUICK).as_completed(runs_of(["a"], worktree), stop_on="maybe")


def test_the_config_refuses_an_unknown_verdict_name() -> None:
    with pytest.raises(ValueError, match=r"^stop_on must be None or one of"):
        FalsificationConfig(stop_on="sometimes")


@pytest.mark.asyncio
async def test_breaking_out_of_the_stream_without_a_with_block_stops_every_script(
    worktree: Path, write_script: WriteScript, sleep_token: str, live_processes: LiveProcesses
) -> None:
    write_script(worktree, "quick", "exit 0")
    write_script(worktree, "slow", long_runner(sleep_token))
    runs = runs_of(["quick", "slow"], worktree)

    async for result in AsyncTestExecutor(QUICK).as_completed(runs):
        assert result.hypothesis_id == "quick"
        break

    deadline = time.monotonic() + HANG
    cleaning = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    while any(not task.done() for task in cleaning) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert live_processes(sleep_token) == []


def test_breaking_out_of_a_background_stream_without_a_with_block_stops_every_script(
    worktree: Path, write_script: WriteScript, sleep_token: str, live_processes: LiveProcesses
) -> None:
    write_script(worktree, "quick", "exit 0")
    write_script(worktree, "slow", long_runner(sleep_token))
    executor = AsyncTestExecutor(QUICK)
    runs = runs_of(["quick", "slow"], worktree)

    for result in BackgroundStream(lambda: executor.as_completed(runs)):
        assert result.hypothesis_id == "quick"
        break

    assert live_processes(sleep_token) == []


# Under pytest


@pytest.mark.parametrize(
    ("quick", "stop_on", "lines"),
    [
        (
            "sleep 0.3; exit 1",
            "supported",
            [
                "verdicts: 0 falsified, 1 supported, 0 inconclusive, 1 cut short",
                "next: Exactly one hypothesis is supported*(1 was cut short: run it before*",
            ],
        ),
        (  # what was cut short may still be supported: new hypotheses would be premature
            "sleep 0.3",
            "falsified",
            [
                "verdicts: 1 falsified, 0 supported, 0 inconclusive, 1 cut short",
                "next: No hypothesis that finished is supported, but 1 was cut short: run it "
                "before generating new ones.",
            ],
        ),
    ],
)
def test_a_script_a_stop_cut_short_counts_as_cut_short_and_is_to_be_run_again(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    sleep_token: str,
    quick: str,
    stop_on: str,
    lines: List[str],
) -> None:
    write_script(git_repo, "a-quick", quick)
    write_script(git_repo, "b-slow", long_runner(sleep_token))

    result = run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-stop-on={stop_on}", "--hypotheses-grace=0.3"
    )

    result.stdout.fnmatch_lines(lines)


def test_verbose_progress_calls_a_script_a_stop_cut_short_cut_short(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, sleep_token: str
) -> None:
    write_script(git_repo, "a-quick", "sleep 0.3; exit 1")
    write_script(git_repo, "b-slow", long_runner(sleep_token))

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-stop-on=supported", "--hypotheses-grace=0.3", "-v"
    )

    result.stdout.fnmatch_lines(["*::b-slow CUT SHORT*"])
    result.stdout.no_fnmatch_line("*::b-slow NOT RUN*")


def test_stop_on_reports_the_others_as_skipped_with_the_reason(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    write_script(git_repo, "a-quick", "sleep 0.3; exit 1")
    write_script(git_repo, "b-slow", long_runner(sleep_token))
    write_script(git_repo, "c-slow", long_runner(sleep_token))

    result = run_pytest(
        f"--hypotheses={git_repo}",
        "--hypotheses-stop-on=supported",
        "--hypotheses-grace=0.3",
        "-rs",
    )

    result.assert_outcomes(failed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["*hypothesis b-slow has no verdict: stopped because hypothesis a-quick was SUPPORTED"]
    )
    assert live_processes(sleep_token) == []


def test_the_ini_file_sets_the_stop_condition(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    pytester.makeini("[pytest]\nhypotheses_stop_on = first\n")
    write_script(git_repo, "a", "exit 0")
    write_script(git_repo, "b", f"touch '{tmp_path / 'b-ran'}'")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=1")

    result.assert_outcomes(passed=1, skipped=1)
    assert not (tmp_path / "b-ran").exists()


def test_an_invalid_stop_condition_is_a_usage_error_with_the_choices(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "a", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-stop-on=soon")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --hypotheses-stop-on=soon is not valid: expected one of supported, "
            "falsified, first (got 'soon')"
        ]
    )


@pytest.mark.asyncio
async def test_a_shut_gate_holds_the_next_script_until_its_result_is_reported(
    worktree: Path, write_script: WriteScript
) -> None:
    """What -x rests on: no script starts while a result waits for the consumer's report."""
    write_script(worktree, "a-fails", "exit 1")
    started = worktree / "started"
    write_script(worktree, "b-next", f"touch {started}")
    runs = [HypothesisRun(Hypothesis(i, i), worktree) for i in ("a-fails", "b-next")]
    gate = StartGate(lambda result: result.result is TestResult.FAIL)
    executor = AsyncTestExecutor(FalsificationConfig(max_concurrent_tests=1))

    async with executor.as_completed(runs, gate=gate) as stream:
        results = stream.__aiter__()
        first = await asyncio.wait_for(results.__anext__(), HANG)
        await asyncio.sleep(0.5)  # time enough to start the next script, were it let
        held = started.exists()
        gate.reported(first)
        second = await asyncio.wait_for(results.__anext__(), HANG)

    assert (first.hypothesis_id, held) == ("a-fails", False)
    assert (second.hypothesis_id, second.result) == ("b-next", TestResult.PASS)
    assert started.exists()
