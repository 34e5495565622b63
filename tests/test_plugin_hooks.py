"""The plugin's hooks, implemented from a ``conftest.py`` as a user would."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import pytest

RunPytest = Callable[..., pytest.RunResult]

WriteScript = Callable[..., Path]


def test_the_classify_hook_overrides_the_core_table(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    pytester.makeconftest(
        """
        from pytest_parallel_hypotheses import TestResult

        def pytest_hypotheses_classify(result):
            if result.exit_code == 3:
                return TestResult.SKIP
        """
    )
    write_script(git_repo, "flaky-env", "exit 3")
    write_script(git_repo, "real", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "-v")

    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(["flaky-env *INCONCLUSIVE *skip *3 *0.00"])


def test_the_confidence_hook_overrides_the_legacy_values(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    pytester.makeconftest(
        """
        def pytest_hypotheses_confidence(result, item):
            return 0.99 if item.found.branch == "main" else None
        """
    )
    write_script(git_repo, "cache", "exit 1")
    report = tmp_path / "report.json"

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    result.stdout.fnmatch_lines(["*confidence:     0.99", "cache *SUPPORTED *fail *1 *s *0.99"])
    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["confidence"] == 0.99


def test_the_finished_hook_is_told_every_result_including_unrunnable_ones(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    told = tmp_path / "told"
    pytester.makeconftest(
        f"""
        def pytest_hypotheses_finished(result, item):
            with open({str(told)!r}, "a") as f:
                f.write(f"{{item.name}} {{result.status.value}} {{result.confidence}}\\n")
        """
    )
    write_script(git_repo, "cache", "exit 0")
    write_script(git_repo, "race", "exit 1")
    write_script(git_repo, "broken", "exit 0")
    (git_repo / ".falsification" / "config_broken.json").write_text("[")

    run_pytest(f"--hypotheses={git_repo}")

    assert sorted(told.read_text().splitlines()) == [
        "broken inconclusive 0.2",
        "cache falsified 0.6",
        "race supported 0.6",
    ]


def test_a_hook_returning_a_wrong_value_is_an_error_of_that_hypothesis(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    pytester.makeconftest(
        """
        def pytest_hypotheses_confidence(result):
            return 7 if result.hypothesis_id == "odd" else None
        """
    )
    write_script(git_repo, "odd", "exit 0")
    write_script(git_repo, "fine", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*pytest_hypotheses_confidence returned 7 for *odd; expected a number from 0 to 1*"]
    )


@pytest.mark.parametrize("repeat", ["1", "3"])
def test_a_failing_hook_leaves_its_hypothesis_run_and_inconclusive_in_the_report(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    repeat: str,
) -> None:
    pytester.makeconftest(
        """
        def pytest_hypotheses_classify(result):
            if result.hypothesis_id == "odd":
                raise RuntimeError("the project's hook broke")
        """
    )
    write_script(git_repo, "odd", "echo ran\nexit 1")
    report = tmp_path / "report.json"

    result = run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-report={report}", f"--hypotheses-repeat={repeat}"
    )

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the project's hook broke*"])
    (record,) = json.loads(report.read_text())["hypotheses"]
    assert (record["status"], record["result"], record["exit_code"]) == ("inconclusive", "error", 1)
    assert "the project's hook broke" in record["error_message"]


def test_junit_xml_carries_the_confidence_at_full_precision(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    pytester.makeconftest(
        """
        def pytest_hypotheses_confidence(result, item):
            return 0.123
        """
    )
    write_script(git_repo, "cache", "exit 1")
    xml = tmp_path / "junit.xml"

    run_pytest(f"--hypotheses={git_repo}", f"--junitxml={xml}")

    (prop,) = [p for p in ET.parse(xml).iter("property") if p.get("name") == "confidence"]
    assert prop.get("value") == "0.123"
