"""How each finished hypothesis script is reported by pytest: outcome, words and text."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable, Dict, List

import pytest

RunPytest = Callable[..., pytest.RunResult]

WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        pytest.param("exit 0", {"passed": 1}, id="pass-passed"),
        pytest.param("exit 1", {"failed": 1}, id="fail-failed"),
        pytest.param("kill -SEGV $$", {"failed": 1}, id="crash-failed"),
        pytest.param("exit 125", {"skipped": 1}, id="skip-skipped"),
        pytest.param("exit 124", {"failed": 1}, id="timeout-failed"),
        pytest.param("exit 127", {"errors": 1}, id="error-error"),
    ],
)
def test_each_result_maps_to_a_pytest_outcome(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    body: str,
    outcome: Dict[str, int],
) -> None:
    write_script(git_repo, "idea", body)

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(**outcome)


def test_a_skip_is_reported_at_its_script(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "idea", "exit 125")

    result = run_pytest(f"--hypotheses={git_repo}", "-rs")

    result.stdout.fnmatch_lines(["*[[]1[]] *.falsification/test_idea.sh:1: hypothesis idea *"])
    result.stdout.no_fnmatch_line("*items.py*")


def test_our_deadline_is_a_failure(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "slow", "sleep 30")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-timeout=0.3")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["hypothesis slow is INCONCLUSIVE: Test exceeded 0.3s timeout*"])


def test_the_exit_code_of_a_timeout_names_our_deadline(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "slow", "sleep 30")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-timeout=0.3")

    result.stdout.fnmatch_lines(["  exit code:      124 (stopped at the 0.3s deadline)"])


def test_the_exit_code_of_an_inner_timeout_is_the_number_alone(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "inner", "exit 124")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["  exit code:      124"])


def test_the_exit_code_of_a_crash_names_the_signal(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "crash", "kill -SEGV $$")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["  exit code:      -11 (killed by SIGSEGV)"])


def test_a_script_that_cannot_start_is_an_error(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "locked", "exit 0", executable=False)

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of hypothesis locked*", "*is not executable*"])


def test_broken_metadata_is_an_error_for_that_hypothesis_only(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "broken", "exit 0")
    write_script(git_repo, "fine", "exit 0")
    (git_repo / ".falsification" / "config_broken.json").write_text("{not json")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*config_broken.json is not valid JSON*"])


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 1000 + "]" * 1000,  # deeper than the JSON decoder goes
        '{"test_results": ' + '{"a": ' * 950 + "1" + "}" * 950 + "}",  # loads, but no report
    ],
    ids=["too deep to load", "too deep to report"],
)
def test_metadata_nested_too_deep_is_an_error_for_that_hypothesis_only(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path, nested: str
) -> None:
    """A fault probe: the first crashed the collection, the second the reports."""
    write_script(git_repo, "deep", "exit 0")
    write_script(git_repo, "fine", "exit 0")
    (git_repo / ".falsification" / "config_deep.json").write_text(nested)
    report = tmp_path / "report.json"

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*config_deep.json nests its values more than 100 levels deep*"])
    assert len(json.loads(report.read_text())["hypotheses"]) == 2


def test_metadata_nested_as_deep_as_allowed_runs_and_is_reported(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "deep", "exit 0")
    nested = '{"test_results": ' + '{"a": ' * 99 + "1" + "}" * 99 + "}"  # 100 objects
    (git_repo / ".falsification" / "config_deep.json").write_text(nested)
    report = tmp_path / "report.json"

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    result.assert_outcomes(passed=1)
    assert len(json.loads(report.read_text())["hypotheses"]) == 1


def test_an_unsafe_id_is_an_error_for_that_hypothesis_only(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "-dash", "exit 0")
    write_script(git_repo, "fine", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*'-dash' is not a safe file-name token*"])


def test_the_failure_text_tells_the_whole_story(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    worktree = make_worktree("one")
    write_script(worktree, "cache", "echo from-stdout; echo from-stderr >&2; exit 3")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        [
            "hypothesis cache is SUPPORTED: the script failed (exit status 3)",
            "  verdict:        supported",
            "  classification: fail",
            "  exit code:      3",
            "  duration:       *s",
            "  confidence:     0.60",
            f"  worktree:       {worktree} (branch hyp-one, HEAD *)",
            "*stderr*",
            "from-stderr",
            "*stdout*",
            "from-stdout",
        ]
    )


@pytest.mark.parametrize(
    ("body", "shown", "not_shown"),
    [
        (
            'for i in $(seq 1 50); do echo "line $i" >&2; done; exit 1',
            ["*stderr (last 20 of 50 lines)*", "line 31", "line 50"],
            "line 30",
        ),
        (  # the attrs trial: 10 MB on one line, headed "all"
            "printf 'a%.0s' $(seq 1 5000); echo; exit 1",
            ["*stdout (last 4000 characters) ---*"],
            "*stdout (all)*",
        ),
    ],
    ids=["many lines", "one long line"],
)
def test_the_failure_text_shows_only_the_tail_of_the_output_and_says_so(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    body: str,
    shown: List[str],
    not_shown: str,
) -> None:
    write_script(git_repo, "chatty", body)

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(shown)
    result.stdout.no_fnmatch_line(not_shown)


def test_an_xfail_marker_on_hypotheses_is_summarised_as_pytest_does(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    """A review: an xfailed hypothesis was reported as skipped, and the short summary of
    -rA crashed on it."""
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.xfail)
        """
    )
    write_script(git_repo, "supported", "exit 1")
    write_script(git_repo, "falsified", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "-rA")

    result.assert_outcomes(xfailed=1, xpassed=1)
    result.stdout.fnmatch_lines(["XFAIL *::supported*", "XPASS *::falsified*"])


def test_verbose_progress_shows_the_verdicts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "a-falsified", "exit 0")
    write_script(git_repo, "b-supported", "exit 1")
    write_script(git_repo, "c-inconclusive", "exit 125")

    result = run_pytest(f"--hypotheses={git_repo}", "-v")

    result.stdout.fnmatch_lines(["*repo::a-falsified FALSIFIED*"])
    result.stdout.fnmatch_lines(["*repo::b-supported SUPPORTED*"])
    result.stdout.fnmatch_lines(["*repo::c-inconclusive INCONCLUSIVE*"])


def test_the_short_summary_names_the_verdict(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "-ra")

    result.stdout.fnmatch_lines(["SUPPORTED *repo::cache - the script failed*"])


def test_the_short_summary_says_why_a_script_told_nothing(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """Said once, after the verdict: it read ``Failed: hypothesis cache is INCONCLUSIVE``."""
    write_script(git_repo, "cache", "sleep 30")
    write_script(git_repo, "broken", "exit 0", executable=False)

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-timeout=0.3", "-rA", "-vv")

    result.stdout.fnmatch_lines(["INCONCLUSIVE *repo::cache - Test exceeded 0.3s timeout*"])
    result.stdout.fnmatch_lines(["INCONCLUSIVE *repo::broken - *not executable*"])
    assert "Failed: hypothesis" not in result.stdout.str()


def test_another_plugins_failure_keeps_its_own_message(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, pytester: pytest.Pytester
) -> None:
    """Only the item's own failure says what its script did."""
    write_script(git_repo, "cache", "exit 1")
    pytester.makeconftest(
        """
        import pytest

        def pytest_runtest_teardown(item):
            pytest.fail("leak checker: 3 files left open", pytrace=False)
        """
    )

    result = run_pytest(f"--hypotheses={git_repo}", "-rA", "-vv")

    result.stdout.fnmatch_lines(["ERROR *repo::cache - *leak checker: 3 files left open*"])


def test_another_plugins_outcome_keeps_its_own_status(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """pytest-rerunfailures reports a failure it retries as "rerun"."""
    write_script(git_repo, "idea", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "-p", "rerunfailures", "--reruns=1")

    assert result.parseoutcomes() == {"failed": 1, "rerun": 1}
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_worktree_whose_path_is_not_utf8_is_run_and_reported(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    odd = tmp_path / os.fsdecode(b"odd\xffname")
    subprocess.run(
        ["git", "worktree", "add", "-q", "-b", "hyp-odd", str(odd)], cwd=git_repo, check=True
    )
    write_script(odd, "idea", "exit 1")
    report = tmp_path / "report.json"

    # pytest's own cache cannot store such a node id, whatever collected it
    result = run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-report={report}", "-p", "no:cacheprovider"
    )

    result.assert_outcomes(failed=1)
    (record,) = json.loads(report.read_text())["hypotheses"]
    assert (record["worktree_path"], record["status"]) == (str(odd), "supported")
