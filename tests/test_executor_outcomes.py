"""What a real script does becomes its result: classification, output, environment, order."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, List

import pytest

from pytest_parallel_hypotheses import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    HypothesisStatus,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)

QUICK = FalsificationConfig(test_timeout=20, kill_grace=0.2)

RunScript = Callable[..., TestExecutionResult]


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("outcomes")


@pytest.fixture
def run_script(worktree: Path, write_script: Callable[..., Path]) -> RunScript:
    """``run_script(body, config=QUICK)``: write a script and return its result."""

    def run(body: str, config: FalsificationConfig = QUICK) -> TestExecutionResult:
        write_script(worktree, "h1", body)
        return TestExecutor(config).execute_single(Hypothesis("h1", "a hypothesis"), worktree)

    return run


@pytest.mark.parametrize(
    ("body", "result", "exit_code"),
    [
        ("exit 0", TestResult.PASS, 0),
        ("exit 1", TestResult.FAIL, 1),
        ("exit 123", TestResult.FAIL, 123),
        ("kill -SEGV $$", TestResult.FAIL, -11),
        ("kill -ABRT $$", TestResult.FAIL, -6),
        ("sh -c 'kill -SEGV $$'; exit $?", TestResult.FAIL, 139),
        ("timeout 0.1 sleep 5", TestResult.TIMEOUT, 124),
        ("exit 125", TestResult.SKIP, 125),
        ("exit 126", TestResult.ERROR, 126),
        ("no-such-command-here", TestResult.ERROR, 127),
        ("exit 200", TestResult.ERROR, 200),
        ("kill -USR1 $$", TestResult.ERROR, -10),
        ("kill -KILL $$", TestResult.ERROR, -9),
    ],
    ids=[
        "exit-0",
        "exit-1",
        "exit-123",
        "segv-signal",
        "abort-signal",
        "segv-as-139",
        "inner-timeout",
        "exit-125",
        "exit-126",
        "exit-127",
        "exit-200",
        "usr1-signal",
        "kill-signal",
    ],
)
def test_exit_status_of_a_real_script_is_classified(
    run_script: RunScript, body: str, result: TestResult, exit_code: int
) -> None:
    outcome = run_script(body)
    assert (outcome.result, outcome.exit_code) == (result, exit_code)


def test_a_pass_falsifies_with_legacy_confidence(run_script: RunScript) -> None:
    result = run_script("echo checked")
    assert result.status is HypothesisStatus.FALSIFIED
    assert result.metrics["confidence"] == 0.6
    assert (result.stdout, result.error_message) == ("checked\n", "")


def test_a_genuine_failure_supports_the_hypothesis(run_script: RunScript) -> None:
    result = run_script("echo 'assertion failed' >&2; exit 1")
    assert result.status is HypothesisStatus.SUPPORTED
    assert (result.stderr, result.error_message) == ("assertion failed\n", "")


def test_a_crash_names_its_signal(run_script: RunScript) -> None:
    assert run_script("kill -SEGV $$").error_message == "script killed by SIGSEGV"


def test_a_skip_is_inconclusive_with_no_confidence(run_script: RunScript) -> None:
    result = run_script("exit 125")
    assert (result.status, result.confidence) == (HypothesisStatus.INCONCLUSIVE, 0.0)


def test_an_inner_timeout_is_inconclusive_with_legacy_confidence(run_script: RunScript) -> None:
    result = run_script("exit 124")
    assert (result.status, result.confidence) == (HypothesisStatus.INCONCLUSIVE, 0.3)


def test_an_inner_timeout_is_not_one_of_our_deadlines(run_script: RunScript) -> None:
    result = run_script("exit 124")
    assert (result.result, result.timed_out_after) == (TestResult.TIMEOUT, None)


def test_a_broken_script_is_an_error_with_legacy_confidence(run_script: RunScript) -> None:
    result = run_script("exit 127")
    assert (result.status, result.confidence) == (HypothesisStatus.INCONCLUSIVE, 0.2)
    assert result.error_message == (
        "script exit status 127 (a command it ran was not found: see its stderr)"
    )


def test_stdout_and_stderr_are_kept_apart(run_script: RunScript) -> None:
    result = run_script("echo out; echo err >&2; echo more")
    assert (result.stdout, result.stderr) == ("out\nmore\n", "err\n")
    assert (result.stdout_bytes, result.stderr_bytes) == (9, 4)


def test_invalid_utf8_output_is_decoded_with_replacement(run_script: RunScript) -> None:
    assert run_script(r"printf 'ok \377\376 end'").stdout == "ok \ufffd\ufffd end"


def test_output_over_the_cap_keeps_head_and_tail_and_counts_bytes(run_script: RunScript) -> None:
    config = FalsificationConfig(test_timeout=20, max_output_bytes=16)
    result = run_script("echo FIRST; printf '%01000d' 0; echo; echo LAST", config)
    assert result.stdout.startswith("FIRST\n")
    assert result.stdout.endswith("LAST\n")
    assert "bytes omitted; 1012 bytes in all" in result.stdout
    assert (result.stdout_bytes, result.stdout_truncated) == (1012, True)
    assert result.stderr_truncated is False


STDIN_CHILD = textwrap.dedent(
    """
    import sys
    from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor

    config = FalsificationConfig(test_timeout=20)
    result = TestExecutor(config).execute_single(Hypothesis("h1", "x"), sys.argv[1])
    print(result.result.value, repr(result.stdout))
    """
)


def test_stdin_is_dev_null_even_when_the_runner_has_input(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """The runner's own stdin is a pipe full of data; the script must read end-of-file."""
    write_script(worktree, "h1", "readlink /proc/$$/fd/0; cat; read line || echo EOF")
    child = subprocess.run(
        [sys.executable, "-c", STDIN_CHILD, str(worktree)],
        input="runner input\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout == "pass '/dev/null\\nEOF\\n'\n"


def test_the_script_runs_in_its_worktree(run_script: RunScript, worktree: Path) -> None:
    assert run_script("pwd -P").stdout == f"{worktree.resolve()}\n"


def test_the_environment_is_inherited_without_pytest_variables(
    run_script: RunScript, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INHERITED_SETTING", "kept")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    lines = run_script("env").stdout.splitlines()
    assert "INHERITED_SETTING=kept" in lines
    assert [line for line in lines if line.startswith("PYTEST_")] == []
    assert "HYPOTHESIS_ID=h1" in lines
    assert f"HYPOTHESIS_WORKTREE={worktree}" in lines


def test_results_come_back_in_input_order_not_completion_order(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    ids = ["slow", "medium", "fast", "missing", "instant"]
    write_script(worktree, "slow", "sleep 0.6; echo slow")
    write_script(worktree, "medium", "sleep 0.3; echo medium")
    write_script(worktree, "fast", "sleep 0.1; echo fast")
    write_script(worktree, "instant", "echo instant")
    config = FalsificationConfig(test_timeout=20, max_concurrent_tests=5)
    results = TestExecutor(config).execute_parallel(
        [Hypothesis(i, i) for i in ids], {i: worktree for i in ids}
    )
    assert [r.hypothesis_id for r in results] == ids
    assert [r.stdout for r in results] == ["slow\n", "medium\n", "fast\n", "", "instant\n"]


def test_no_hypotheses_give_no_results() -> None:
    assert TestExecutor(QUICK).execute_parallel([], {}) == []


def test_a_run_may_set_its_own_deadline(worktree: Path, write_script: Callable[..., Path]) -> None:
    write_script(worktree, "h1", "sleep 3")
    run = HypothesisRun(Hypothesis("h1", "x"), worktree, timeout=0.3)
    (result,) = TestExecutor(QUICK).execute_parallel([run])
    assert result.result is TestResult.TIMEOUT
    assert "0.3s timeout" in result.error_message


@pytest.mark.parametrize("timeout", [0, -1.0, True, float("inf"), "5"])
def test_a_run_deadline_must_be_a_positive_number(worktree: Path, timeout: object) -> None:
    with pytest.raises(ValueError, match="must be a number of seconds > 0"):
        HypothesisRun(Hypothesis("h1", "x"), worktree, timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, "500M", 1.5e8, float("inf"), 2**70, True])
def test_a_run_memory_limit_must_be_a_whole_number_of_bytes(worktree: Path, limit: object) -> None:
    with pytest.raises(ValueError, match="must be a whole number of bytes from 1048576"):
        HypothesisRun(Hypothesis("h1", "x"), worktree, memory_limit=limit)  # type: ignore[arg-type]


def test_one_id_may_run_in_several_worktrees(
    make_worktree: Callable[[str], Path], write_script: Callable[..., Path]
) -> None:
    first, second = make_worktree("first"), make_worktree("second")
    write_script(first, "h1", "exit 0")
    write_script(second, "h1", "exit 1")
    hypothesis = Hypothesis("h1", "x")
    results = TestExecutor(QUICK).execute_parallel(
        [HypothesisRun(hypothesis, first), HypothesisRun(hypothesis, second)]
    )
    assert [(r.worktree_path, r.result) for r in results] == [
        (str(first), TestResult.PASS),
        (str(second), TestResult.FAIL),
    ]


@pytest.mark.asyncio
async def test_as_completed_yields_results_as_they_finish(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    go = worktree / "go"  # slow ends only once fast has been handed over (or after 10 s)
    write_script(
        worktree,
        "slow",
        f"n=0; while [ ! -e {go} ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done",
    )
    write_script(worktree, "fast", "exit 0")
    runs = [HypothesisRun(Hypothesis(i, i), worktree) for i in ("slow", "fast")]
    seen: List[str] = []
    async with AsyncTestExecutor(QUICK).as_completed(runs) as results:
        async for result in results:
            seen.append(result.hypothesis_id)
            go.touch()
    assert seen == ["fast", "slow"]


@pytest.mark.asyncio
async def test_execute_single_async_runs_one_script(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "h1", "echo $HYPOTHESIS_ID")
    result = await AsyncTestExecutor(QUICK).execute_single_async(Hypothesis("h1", "x"), worktree)
    assert (result.result, result.stdout) == (TestResult.PASS, "h1\n")


def test_results_name_their_worktree(run_script: RunScript, worktree: Path) -> None:
    assert run_script("exit 0").worktree_path == str(worktree)
