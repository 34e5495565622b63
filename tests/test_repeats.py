"""Running each hypothesis several times: every attempt is kept, agreement raises the
confidence, and passes mixed with failures make a flaky, inconclusive result."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Dict

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisStatus,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]


def quick(repeats: int, workers: int = 4) -> FalsificationConfig:
    return FalsificationConfig(
        test_timeout=20, kill_grace=0.2, repeats=repeats, max_concurrent_tests=workers
    )


def alternating(counter: Path, odd: str = "exit 1", even: str = "exit 0") -> str:
    """A script body whose odd runs do ``odd`` and even runs ``even``, counted in a file."""
    return (
        f"n=$(cat '{counter}' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '{counter}'\n"
        f"if [ $((n % 2)) -eq 1 ]; then {odd}; else {even}; fi"
    )


@pytest.fixture
def worktree(make_worktree: MakeWorktree) -> Path:
    return make_worktree("repeats")


def run_one(worktree: Path, config: FalsificationConfig) -> TestExecutionResult:
    return TestExecutor(config).execute_single(Hypothesis("h1", "x"), worktree)


def test_alternating_outcomes_are_flaky_and_inconclusive(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(worktree, "h1", alternating(tmp_path / "counter"))

    result = run_one(worktree, quick(repeats=4))

    assert result.flaky
    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert (result.outcome_counts["pass"], result.outcome_counts["fail"]) == (2, 2)
    assert result.confidence == 0.0


def test_every_attempt_is_kept_in_the_order_it_ran(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(worktree, "h1", alternating(tmp_path / "counter", odd="exit 3"))

    result = run_one(worktree, quick(repeats=3))

    assert [(a.result, a.exit_code) for a in result.attempts] == [
        (TestResult.FAIL, 3),
        (TestResult.PASS, 0),
        (TestResult.FAIL, 3),
    ]
    assert all(attempt.duration >= 0 for attempt in result.attempts)


def test_the_result_shows_the_majority_and_the_output_of_its_last_attempt(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    counter = tmp_path / "counter"
    write_script(
        worktree,
        "h1",
        "echo run $(cat '"
        + str(counter)
        + "' 2>/dev/null)\n"
        + (alternating(counter, odd="exit 0", even="timeout 0.05 sleep 5")),
    )

    result = run_one(worktree, quick(repeats=3))

    assert (result.result, result.exit_code, result.status) == (
        TestResult.PASS,
        0,
        HypothesisStatus.FALSIFIED,
    )
    assert result.stdout == "run 2\n"  # the third run, the last of the two passes
    assert not result.flaky


def test_unanimous_attempts_are_more_trusted_than_one_run(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "exit 1")

    result = run_one(worktree, quick(repeats=3))

    assert result.status is HypothesisStatus.SUPPORTED
    assert result.outcome_counts["fail"] == 3
    assert result.confidence > run_one(worktree, quick(repeats=1)).confidence


def test_a_single_run_keeps_its_one_attempt_and_the_legacy_confidence(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "exit 0")

    result = run_one(worktree, quick(repeats=1))

    assert [attempt.result for attempt in result.attempts] == [TestResult.PASS]
    assert (result.flaky, result.confidence) == (False, 0.6)


def test_attempts_of_one_hypothesis_run_one_after_the_other(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    lock = tmp_path / "lock"
    write_script(worktree, "h1", f"mkdir '{lock}' || exit 3\nsleep 0.1\nrmdir '{lock}'")

    result = run_one(worktree, quick(repeats=3, workers=3))

    assert result.outcome_counts["pass"] == 3


def test_repeats_share_the_concurrency_limit(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    lock = tmp_path / "lock"
    for hypothesis_id in ("a", "b"):
        write_script(
            worktree, hypothesis_id, f"mkdir '{lock}' || exit 3\nsleep 0.05\nrmdir '{lock}'"
        )
    hypotheses = [Hypothesis("a", "x"), Hypothesis("b", "y")]

    results = TestExecutor(quick(repeats=2, workers=1)).execute_parallel(
        hypotheses, {"a": worktree, "b": worktree}
    )

    assert [r.outcome_counts["pass"] for r in results] == [2, 2]


def test_every_attempt_is_in_the_dictionary_form(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(worktree, "h1", alternating(tmp_path / "counter"))

    data = run_one(worktree, quick(repeats=2)).to_dict()

    assert [(a["result"], a["exit_code"]) for a in data["attempts"]] == [("fail", 1), ("pass", 0)]
    assert data["flaky"] is True
    assert data["outcome_counts"] == {"pass": 1, "fail": 1, "timeout": 0, "error": 0, "skip": 0}
    assert json.loads(json.dumps(data)) == data


def test_a_result_built_by_hand_has_no_attempts_and_is_not_flaky() -> None:
    data = TestExecutionResult("h1", TestResult.PASS, 1.0).to_dict()
    assert (data["attempts"], data["flaky"]) == ([], False)


@pytest.mark.parametrize("repeats", [0, 101, 2.5])
def test_the_config_refuses_repeats_out_of_range(repeats: int) -> None:
    with pytest.raises(ValueError, match=r"^repeats must be a whole number from 1 to 100"):
        FalsificationConfig(repeats=repeats)


# Under pytest


def test_a_flaky_hypothesis_fails_as_inconclusive_with_its_counts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "race", alternating(tmp_path / "counter"))

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-repeat=4", "-v")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*hypothesis race is INCONCLUSIVE: flaky: of 4 attempts, 2 passed and 2 failed",
            "race *INCONCLUSIVE *flaky (2 pass, 2 fail)*0.00",
        ]
    )


def test_the_summary_shows_how_many_attempts_agreed(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-repeat=3")

    result.stdout.fnmatch_lines(["cache *SUPPORTED *fail 3/3 *1 *"])


def test_runs_that_neither_passed_nor_failed_say_so_not_zero_runs(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: Callable[[Path, str, object], Path],
) -> None:
    """A new-user trial's script timed out three times, and the table said ``undecided: 0
    runs (0 pass, 0 fail)``."""
    write_script(git_repo, "hang", "sleep 30")
    write_metadata(git_repo, "hang", {"timeout": 0.3})

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-repeat=3", "--hypotheses-grace=0.2"
    )

    result.stdout.fnmatch_lines(["hang *INCONCLUSIVE *timeout 3/3 *no run passed or failed*"])


def test_more_agreeing_runs_under_pytest_raise_the_confidence(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Three agreeing runs decide no pass rate, but must not score below one run."""
    write_script(git_repo, "cache", "exit 1")
    confidence = {}
    for repeats in (1, 3):
        report = tmp_path / f"report-{repeats}.json"
        run_pytest(
            f"--hypotheses={git_repo}",
            f"--hypotheses-repeat={repeats}",
            f"--hypotheses-report={report}",
        )
        (record,) = json.loads(report.read_text())["hypotheses"]
        confidence[repeats] = record["confidence"]

    assert confidence == {1: 0.6, 3: pytest.approx(0.832, abs=0.001)}


def test_every_attempt_is_in_the_json_report(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "race", alternating(tmp_path / "counter"))
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", "--hypotheses-repeat=3", f"--hypotheses-report={report}")

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert [attempt["result"] for attempt in record["attempts"]] == ["fail", "pass", "fail"]
    assert (record["flaky"], record["status"]) == (True, "inconclusive")


def test_junit_xml_carries_the_counts_of_the_attempts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "race", alternating(tmp_path / "counter"))
    xml = tmp_path / "junit.xml"

    run_pytest(f"--hypotheses={git_repo}", "--hypotheses-repeat=3", f"--junitxml={xml}")

    (case,) = ET.parse(xml).iter("testcase")
    properties: Dict[str, str] = {
        p.get("name", ""): p.get("value", "") for p in case.iter("property")
    }
    assert {k: properties[k] for k in ("attempts", "passes", "fails", "flaky")} == {
        "attempts": "3",
        "passes": "1",
        "fails": "2",
        "flaky": "True",
    }


def test_the_classify_hook_judges_each_attempt(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    pytester.makeconftest(
        """
        from pytest_parallel_hypotheses import TestResult

        def pytest_hypotheses_classify(result):
            return TestResult.SKIP if result.exit_code == 3 else None
        """
    )
    write_script(git_repo, "env", alternating(tmp_path / "counter", odd="exit 3"))
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", "--hypotheses-repeat=4", f"--hypotheses-report={report}")

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert [attempt["result"] for attempt in record["attempts"]] == ["skip", "pass"] * 2
    assert (record["result"], record["flaky"], record["confidence"]) == ("pass", False, 0.0)


def test_the_ini_file_sets_the_repeats(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    pytester.makeini("[pytest]\nhypotheses_repeat = 2\n")
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["cache *FALSIFIED *pass 2/2 *"])


@pytest.mark.parametrize("value", ["0", "101", "twice"])
def test_an_invalid_repeat_count_is_a_usage_error_with_the_range(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, value: str
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-repeat={value}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --hypotheses-repeat={value} is not valid: expected a whole number from 1 to 100*"]
    )
