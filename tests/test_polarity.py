"""Scripts written to confirm their hypothesis: the verdict table swapped for the two genuine
outcomes only, in the engine and in every report the plugin writes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    HypothesisStatus,
    Polarity,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.core.classification import verdict_for

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]

QUICK = FalsificationConfig(test_timeout=30, kill_grace=0.2)


WriteMetadata = Callable[[Path, str, object], Path]
Confirming = Callable[[Path, str, str], None]


@pytest.fixture
def confirming(write_script: WriteScript, write_metadata: WriteMetadata) -> Confirming:
    """``confirming(worktree, id, body)``: a script written to confirm its hypothesis."""

    def write(worktree: Path, hypothesis_id: str, body: str) -> None:
        write_script(worktree, hypothesis_id, body)
        write_metadata(worktree, hypothesis_id, {"polarity": "confirm"})

    return write


@pytest.mark.parametrize(
    ("result", "disprove", "confirm"),
    [
        (TestResult.PASS, HypothesisStatus.FALSIFIED, HypothesisStatus.SUPPORTED),
        (TestResult.FAIL, HypothesisStatus.SUPPORTED, HypothesisStatus.FALSIFIED),
        (TestResult.TIMEOUT, HypothesisStatus.INCONCLUSIVE, HypothesisStatus.INCONCLUSIVE),
        (TestResult.ERROR, HypothesisStatus.INCONCLUSIVE, HypothesisStatus.INCONCLUSIVE),
        (TestResult.SKIP, HypothesisStatus.INCONCLUSIVE, HypothesisStatus.INCONCLUSIVE),
    ],
)
def test_confirm_swaps_only_the_genuine_verdicts(
    result: TestResult, disprove: HypothesisStatus, confirm: HypothesisStatus
) -> None:
    assert verdict_for(result) is disprove
    assert verdict_for(result, Polarity.DISPROVE) is disprove
    assert verdict_for(result, Polarity.CONFIRM) is confirm


def test_a_result_built_by_hand_keeps_the_disprove_meaning() -> None:
    result = TestExecutionResult("h1", TestResult.PASS, 1.0)

    assert result.polarity is Polarity.DISPROVE
    assert result.status is HypothesisStatus.FALSIFIED


def test_flaky_attempts_stay_inconclusive_when_confirming() -> None:
    attempts = [
        TestExecutionResult("h1", outcome, 1.0, polarity=Polarity.CONFIRM)
        for outcome in (TestResult.PASS, TestResult.FAIL, TestResult.PASS)
    ]

    assert TestExecutionResult.from_attempts(attempts).status is HypothesisStatus.INCONCLUSIVE


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("exit 0", HypothesisStatus.SUPPORTED),
        ("exit 1", HypothesisStatus.FALSIFIED),
        ("exit 125", HypothesisStatus.INCONCLUSIVE),
        ("exit 127", HypothesisStatus.INCONCLUSIVE),
    ],
)
def test_the_engine_judges_a_confirming_script(
    make_worktree: MakeWorktree, write_script: WriteScript, body: str, status: HypothesisStatus
) -> None:
    worktree = make_worktree("confirm")
    write_script(worktree, "fix", body)
    run = HypothesisRun(Hypothesis("fix", "the fix works"), worktree, polarity=Polarity.CONFIRM)

    (result,) = TestExecutor(QUICK).execute_parallel([run])

    assert result.status is status
    assert result.polarity is Polarity.CONFIRM


def test_repeated_passes_of_a_confirming_script_support_it(
    make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    worktree = make_worktree("confirm")
    write_script(worktree, "fix", "exit 0")
    run = HypothesisRun(Hypothesis("fix", "the fix works"), worktree, polarity=Polarity.CONFIRM)
    config = FalsificationConfig(test_timeout=30, repeats=3)

    (result,) = TestExecutor(config).execute_parallel([run])

    assert result.status is HypothesisStatus.SUPPORTED


@pytest.mark.parametrize(
    ("body", "outcome", "word"),
    [
        pytest.param("exit 0", {"passed": 1}, "SUPPORTED", id="pass-supports-and-passes"),
        pytest.param("exit 1", {"failed": 1}, "FALSIFIED", id="fail-falsifies-and-fails"),
    ],
)
def test_a_confirming_item_passes_when_its_script_passed(
    run_pytest: RunPytest,
    git_repo: Path,
    confirming: Confirming,
    body: str,
    outcome: Dict[str, int],
    word: str,
) -> None:
    confirming(git_repo, "fix", body)

    result = run_pytest(f"--hypotheses={git_repo}", "-v")

    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines([f"*::fix {word}*"])


def test_the_exit_status_is_zero_when_every_confirming_script_passed(
    run_pytest: RunPytest, git_repo: Path, confirming: Confirming
) -> None:
    confirming(git_repo, "fix", "exit 0")

    assert run_pytest(f"--hypotheses={git_repo}").ret == pytest.ExitCode.OK


def test_the_failure_text_names_the_polarity(
    run_pytest: RunPytest, git_repo: Path, confirming: Confirming
) -> None:
    confirming(git_repo, "fix", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        [
            "hypothesis fix is FALSIFIED: the script failed (exit status 1)",
            "  polarity:       confirm (exit 0 supports the hypothesis)",
        ]
    )


def test_the_summary_table_has_a_polarity_column(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, confirming: Confirming
) -> None:
    confirming(git_repo, "fix", "exit 0")
    write_script(git_repo, "cause", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        [
            "id*verdict*polarity*result*",
            "cause*FALSIFIED*disprove*pass*",
            "fix*SUPPORTED*confirm*pass*",
        ]
    )


def test_the_json_report_and_junit_show_the_polarity(
    run_pytest: RunPytest, git_repo: Path, confirming: Confirming, tmp_path: Path
) -> None:
    confirming(git_repo, "fix", "exit 0")
    report, xml = tmp_path / "report.json", tmp_path / "junit.xml"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}", f"--junitxml={xml}")

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert (record["polarity"], record["status"]) == ("confirm", "supported")
    (case,) = ET.parse(xml).iter("testcase")
    properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    assert properties["polarity"] == "confirm"


def test_a_confirmed_fix_is_the_next_thing_to_review_and_merge(
    run_pytest: RunPytest,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    git_repo: Path,
    confirming: Confirming,
) -> None:
    confirming(make_worktree("fix"), "fix", "exit 0")
    write_script(make_worktree("cause"), "cause", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        ["next: A fix is confirmed (fix on branch hyp-fix): review that branch and merge it."]
    )


def test_a_confirmed_fix_not_committed_is_to_commit_before_merging(
    run_pytest: RunPytest,
    make_worktree: MakeWorktree,
    git_repo: Path,
    confirming: Confirming,
    tmp_path: Path,
) -> None:
    """A new-user trial left its fix uncommitted in the worktree: the advice to merge the
    branch named a branch without the code that passed."""
    worktree = make_worktree("fix")
    (worktree / "README").write_text("the fix\n")
    (worktree / ".venv").symlink_to(tmp_path)  # the worktree's own, listed without a "/"
    confirming(worktree, "fix", "exit 0")
    report = tmp_path / "report.json"

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    result.stdout.fnmatch_lines(
        [
            "next: A fix is confirmed (fix on branch hyp-fix): review that branch and merge it. "
            f"First commit what passed: it is not on the branch yet (README in {worktree} not "
            "committed)."
        ]
    )
    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["uncommitted"] == ["README"]


def test_several_confirmed_fixes_are_named_for_review(
    run_pytest: RunPytest, make_worktree: MakeWorktree, confirming: Confirming, git_repo: Path
) -> None:
    confirming(make_worktree("a"), "fix-a", "exit 0")
    confirming(make_worktree("b"), "fix-b", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        ["next: 2 fixes are confirmed (fix-a on branch hyp-a; fix-b on branch hyp-b): review*"]
    )


def test_existing_metadata_keeps_the_disprove_meaning(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    write_metadata: WriteMetadata,
) -> None:
    write_script(git_repo, "cause", "exit 0")
    write_metadata(git_repo, "cause", {"description": "a stale cache", "timeout": 30})
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    records: List[Dict[str, Any]] = json.loads(report.read_text())["hypotheses"]
    assert [(r["polarity"], r["status"]) for r in records] == [("disprove", "falsified")]
