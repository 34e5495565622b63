"""``repeat=auto``: each hypothesis runs until its pass rate is decided, the cap is reached,
its time budget is spent, or an attempt says nothing; the evidence reaches every report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    HypothesisStatus,
    Polarity,
    TestExecutionResult,
    TestExecutor,
)
from pytest_parallel_hypotheses.core.sequential import Decision, Evidence
from pytest_parallel_hypotheses.report.wording import what_happened

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]


def auto(**settings: Any) -> FalsificationConfig:
    return FalsificationConfig(test_timeout=20, kill_grace=0.2, repeats="auto", **settings)


def run_one(worktree: Path, config: FalsificationConfig) -> TestExecutionResult:
    return TestExecutor(config).execute_single(Hypothesis("h1", "x"), worktree)


@pytest.fixture
def worktree(make_worktree: MakeWorktree) -> Path:
    return make_worktree("auto")


def test_an_always_passing_script_is_falsified_after_the_fewest_runs(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "exit 0")

    result = run_one(worktree, auto())

    assert len(result.attempts) == 15
    assert result.status is HypothesisStatus.FALSIFIED
    assert result.evidence is not None
    assert result.evidence.decision is Decision.PASSES
    assert result.metrics["confidence"] == result.evidence.confidence >= 0.95


def test_an_always_failing_script_is_supported_after_the_fewest_runs(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "exit 1")

    result = run_one(worktree, auto())

    assert (len(result.attempts), result.status) == (15, HypothesisStatus.SUPPORTED)


def test_the_cap_ends_an_undecided_script_as_inconclusive(
    worktree: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    counter = tmp_path / "counter"
    write_script(
        worktree,
        "h1",
        f"n=$(cat '{counter}' 2>/dev/null || echo 0); echo $((n + 1)) > '{counter}'; "
        "exit $((n % 2))",
    )

    result = run_one(worktree, auto(max_repeats=20))

    assert len(result.attempts) == 20
    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert result.evidence is not None
    assert result.evidence.decision is Decision.UNDECIDED


def test_no_attempt_starts_once_the_time_budget_is_spent(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "sleep 0.3; exit 0")

    result = run_one(worktree, auto(repeat_budget=0.5))

    assert 1 <= len(result.attempts) <= 2
    assert result.status is HypothesisStatus.INCONCLUSIVE


def test_a_broken_script_is_not_repeated(worktree: Path, write_script: WriteScript) -> None:
    write_script(worktree, "h1", "exit 126")

    result = run_one(worktree, auto())

    assert len(result.attempts) == 1
    assert result.status is HypothesisStatus.INCONCLUSIVE


def test_a_cap_that_can_never_decide_is_refused() -> None:
    with pytest.raises(ValueError, match=r"max_repeats 5 can never decide.*at least 15 runs"):
        auto(max_repeats=5)


def test_evidence_too_strong_for_a_float_still_decides() -> None:
    evidence = Evidence(500, 0, 0.05, 0.01)  # e ** 2300 against half of "flaky"

    assert evidence.decision is Decision.PASSES
    assert evidence.to_dict()["decision"] == "passes"


def test_the_plugin_reports_the_evidence_in_table_json_and_junit(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "race", "exit 1")
    report, xml = tmp_path / "report.json", tmp_path / "junit.xml"

    result = run_pytest(
        f"--hypotheses={git_repo}",
        "--hypotheses-repeat=auto",
        f"--hypotheses-report={report}",
        f"--junitxml={xml}",
    )

    result.stdout.fnmatch_lines(
        [
            "race *SUPPORTED *fail 15/15 *fails: 15 runs (0 pass, 15 fail), "
            "pass rate 0.00-0.2? at 95% *0.9?"
        ]
    )
    (record,) = json.loads(report.read_text())["hypotheses"]
    evidence = record["evidence"]
    assert (evidence["runs"], evidence["fails"], evidence["decision"]) == (15, 15, "fails")
    assert record["confidence"] == evidence["confidence"] >= 0.95
    (case,) = ET.parse(xml).iter("testcase")
    properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    assert (properties["runs"], properties["decision"], properties["pass_rate_low"]) == (
        "15",
        "fails",
        "0.0",
    )


def test_the_header_names_the_settings_of_auto(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-repeat=auto", "--hypotheses-alpha=0.1"
    )

    result.stdout.fnmatch_lines(
        ["hypotheses: *repeat auto, alpha 0.1, flake tolerance 0.25, at most 40 runs*"]
    )


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--hypotheses-alpha=0.5", "a number strictly between 0 and 0.5"),
        ("--hypotheses-alpha=0", "a number strictly between 0 and 0.5"),
        ("--hypotheses-flake-tolerance=0.5", "a number strictly between 0 and 0.5"),
        ("--hypotheses-max-repeats=0", "a whole number from 1 to 100"),
        ("--hypotheses-repeat-budget=0", "a number of seconds greater than 0"),
        ("--hypotheses-repeat=sometimes", "a whole number from 1 to 100, or 'auto'"),
    ],
)
def test_an_invalid_value_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, option: str, expected: str
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-repeat=auto", option)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option} is not valid: expected {expected}*"])


def test_an_auto_option_without_auto_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-alpha=0.1")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--hypotheses-alpha=0.1 is not valid: expected only with --hypotheses-repeat=auto*"]
    )


def test_a_cap_too_small_to_decide_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-repeat=auto", "--hypotheses-max-repeats=5"
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--hypotheses-max-repeats=5 is not valid: max_repeats 5 can never decide*15 runs*"]
    )


def test_levels_no_allowed_cap_can_decide_are_a_usage_error_naming_them(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(
        f"--hypotheses={git_repo}",
        "--hypotheses-repeat=auto",
        "--hypotheses-alpha=0.01",
        "--hypotheses-flake-tolerance=0.05",
        "--hypotheses-max-repeats=100",
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--hypotheses-alpha=0.01 with --hypotheses-flake-tolerance=0.05 is not valid: "
            "alpha 0.01 and flake tolerance 0.05 need at least 117 runs to decide, more than "
            "the 100 allowed: expected a larger alpha or flake tolerance*"
        ]
    )


def test_an_undecided_script_is_told_as_undecided(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "sleep 0.3; exit 0")

    result = run_one(worktree, auto(repeat_budget=0.1))

    assert what_happened(result) == (
        "the pass rate is undecided after 1 run (the cap or the time budget came first)"
    )


def test_a_confirming_script_that_always_passes_is_supported(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "exit 0")
    run = HypothesisRun(Hypothesis("h1", "x"), worktree, polarity=Polarity.CONFIRM)

    (result,) = TestExecutor(auto()).execute_parallel([run])

    assert (len(result.attempts), result.status) == (15, HypothesisStatus.SUPPORTED)
