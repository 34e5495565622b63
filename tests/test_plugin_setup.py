"""The setup step and the output of passing items under ``pytest --hypotheses``: options,
metadata, what a failed setup looks like, and what ``-rP`` / ``-rA`` show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from pytest_parallel_hypotheses.finding.discovery import discover

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]


WriteMetadata = Callable[[Path, str, object], Path]


def counting(counter: Path) -> str:
    return f"echo ran >> '{counter}' && echo built > made-by-setup"


def run_xdist(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> pytest.RunResult:
    """pytest with two xdist workers, in a subprocess, node ids relative to ``tmp_path``."""
    quiet = ("-p", "no:hypothesispytest", "-p", "no:asyncio", "-p", "no:cacheprovider")
    return pytester.runpytest_subprocess(
        "-n", "2", f"--rootdir={tmp_path}", *quiet, *args, timeout=120
    )


def test_the_setup_option_prepares_every_worktree(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    for name in ("one", "two"):
        write_script(make_worktree(name), name, "test -f made-by-setup")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-setup=echo > made-by-setup")

    result.assert_outcomes(passed=2)


def test_the_setup_ini_key_is_the_option_s_twin(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "idea", "test -f made-by-setup")
    pytester.makeini("[pytest]\nhypotheses_setup = touch made-by-setup\n")

    run_pytest(f"--hypotheses={git_repo}").assert_outcomes(passed=1)


def test_the_metadata_setup_wins_over_the_option(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, write_metadata: WriteMetadata
) -> None:
    write_script(git_repo, "idea", "test -f from-metadata")
    write_metadata(git_repo, "idea", {"setup": "touch from-metadata"})

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-setup=exit 1")

    result.assert_outcomes(passed=1)


def test_the_header_shows_the_setup_command(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "idea", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-setup=true")

    result.stdout.fnmatch_lines(["hypotheses: *setup 'true', setup timeout 600s)"])


def test_a_failed_setup_is_an_inconclusive_error_with_its_output(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, write_metadata: WriteMetadata
) -> None:
    write_script(git_repo, "idea", "exit 1")
    write_metadata(git_repo, "idea", {"setup": "echo no network >&2; exit 2"})

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "hypothesis idea is INCONCLUSIVE: setup failed: `echo no network >&2; exit 2` "
            "exited with status 2; the script did not run",
            "*setup outcome:  failed: *",
            "*Captured stderr setup*",
            "no network",
            "verdicts: 0 falsified, 0 supported, 1 inconclusive",
        ]
    )


def test_a_timed_out_setup_says_setup_failed(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, sleep_token: str
) -> None:
    write_script(git_repo, "idea", "exit 0")

    result = run_pytest(
        f"--hypotheses={git_repo}",
        f"--hypotheses-setup=sleep {sleep_token}",
        "--hypotheses-setup-timeout=0.5",
        "--hypotheses-grace=0.2",
    )

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*setup failed: *exceeded its 0.5s setup timeout*"])


def test_the_json_report_tells_what_the_setup_did(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    write_metadata: WriteMetadata,
) -> None:
    write_script(git_repo, "idea", "exit 0")
    write_metadata(git_repo, "idea", {"setup": "echo installed", "setup_timeout": 60})
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["setup_command"] == "echo installed"
    setup = record["setup"]
    assert (setup["outcome"], setup["stdout"], setup["timeout"]) == ("ran", "installed\n", 60)


def test_minus_v_says_once_per_worktree_whether_its_setup_ran_or_was_reused(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """A passing run said neither: a long first run looked like a slow script."""
    for hypothesis_id in ("a", "b"):
        write_script(git_repo, hypothesis_id, "exit 0")
    args = (f"--hypotheses={git_repo}", "--hypotheses-setup=touch made", "-v")

    first, second = run_pytest(*args), run_pytest(*args)

    first.stdout.fnmatch_lines(["setup of *: `touch made` ran in *s"])
    second.stdout.fnmatch_lines(["setup of *: `touch made` reused (*"])
    assert sum(line.startswith("setup of ") for line in first.outlines) == 1


def test_minus_v_says_nothing_of_a_setup_step_for_a_reused_verdict(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """The reused verdict carries the step of the session that reached it; none ran now."""
    with (git_repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("made\n")  # else the file the step made is a change of content
    write_script(git_repo, "a", "exit 0")
    args = (f"--hypotheses={git_repo}", "--hypotheses-setup=touch made", "-v")
    run_pytest(*args, "--hypotheses-reuse=yes")

    result = run_pytest(*args, "--hypotheses-reuse=yes")

    result.stdout.fnmatch_lines(["*cached (run *"])
    assert not any(line.startswith("setup of ") for line in result.outlines)


def test_a_hypothesis_left_out_by_minus_k_runs_no_setup_step(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: WriteMetadata,
    tmp_path: Path,
) -> None:
    counter = tmp_path / "runs"
    write_script(git_repo, "chosen", "exit 0")
    write_script(git_repo, "left_out", "exit 0")
    write_metadata(git_repo, "left_out", {"setup": counting(counter)})

    result = run_pytest(f"--hypotheses={git_repo}", "-k", "chosen")

    result.assert_outcomes(passed=1, deselected=1)
    assert not counter.exists()


def test_a_second_run_reuses_the_setup(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    write_metadata: WriteMetadata,
) -> None:
    counter = tmp_path / "runs"
    write_script(git_repo, "idea", "exit 0")
    write_metadata(git_repo, "idea", {"setup": counting(counter)})

    run_pytest(f"--hypotheses={git_repo}")
    result = run_pytest(f"--hypotheses={git_repo}", "-rA")

    assert counter.read_text() == "ran\n"
    result.assert_outcomes(passed=1)


def test_minus_r_p_shows_what_a_passing_script_printed(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "idea", "echo checked every entry; echo a warning >&2")

    result = run_pytest(f"--hypotheses={git_repo}", "-rP")

    result.stdout.fnmatch_lines(
        [
            "*= PASSES =*",
            "*Captured stdout call*",
            "checked every entry",
            "*Captured stderr call*",
            "a warning",
        ]
    )


def test_minus_r_a_shows_the_setup_and_script_output_of_a_passing_item(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, write_metadata: WriteMetadata
) -> None:
    write_script(git_repo, "idea", "echo script output")
    write_metadata(git_repo, "idea", {"setup": "echo setup output"})

    result = run_pytest(f"--hypotheses={git_repo}", "-rA")

    result.stdout.fnmatch_lines(
        [
            "*Captured stdout setup*",
            "setup output",
            "*Captured stdout call*",
            "script output",
        ]
    )


def test_without_minus_r_p_a_passing_script_prints_nothing(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "idea", "echo checked every entry")

    result = run_pytest(f"--hypotheses={git_repo}")

    assert "checked every entry" not in result.stdout.str()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param({"setup": 5}, "'setup' must be a non-empty string", id="setup-number"),
        pytest.param({"setup": ["make"]}, "'setup' must be a non-empty string", id="setup-list"),
        pytest.param({"setup": None}, "'setup' must be a non-empty string", id="setup-null"),
        pytest.param({"setup": ""}, "'setup' must be a non-empty string", id="setup-empty"),
        pytest.param({"setup": "  "}, "'setup' must be a non-empty string", id="setup-blank"),
        pytest.param({"setup_timeout": 0}, "'setup_timeout' must be a number", id="timeout-0"),
        pytest.param({"setup_timeout": -5}, "'setup_timeout' must be a number", id="timeout-neg"),
        pytest.param({"setup_timeout": "60"}, "'setup_timeout' must be a number", id="timeout-str"),
        pytest.param(
            {"setup_timeout": True}, "'setup_timeout' must be a number", id="timeout-bool"
        ),
        pytest.param(
            {"polarity": "maybe"},
            "'polarity' must be one of 'disprove', 'confirm'",
            id="polarity-unknown",
        ),
        pytest.param({"polarity": "CONFIRM"}, "'polarity' must be one of", id="polarity-case"),
    ],
)
def test_a_bad_run_key_is_one_problem_for_that_hypothesis(
    git_repo: Path,
    write_script: WriteScript,
    content: Dict[str, Any],
    expected: str,
    write_metadata: WriteMetadata,
) -> None:
    write_script(git_repo, "bad", "exit 0")
    write_script(git_repo, "good", "exit 0")
    write_metadata(git_repo, "bad", content)

    bad, good = discover(git_repo)

    assert bad.problem is not None
    assert expected in bad.problem
    assert "\n" not in bad.problem
    assert good.problem is None


def test_a_bad_setup_in_metadata_stops_only_its_hypothesis(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    write_metadata: WriteMetadata,
) -> None:
    write_script(git_repo, "bad", "exit 0")
    write_script(git_repo, "good", "exit 0")
    write_metadata(git_repo, "bad", {"setup": ""})

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*'setup' must be a non-empty string (a shell command), got ''*"])


def test_a_bad_setup_timeout_ini_value_is_a_usage_error(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "idea", "exit 0")
    pytester.makeini("[pytest]\nhypotheses_setup_timeout = 0\n")

    result = run_pytest(f"--hypotheses={git_repo}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option hypotheses_setup_timeout = 0 is not valid*"])


def test_xdist_workers_set_a_shared_worktree_up_once(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    for hypothesis_id in ("a", "b", "c", "d"):
        write_script(git_repo, hypothesis_id, "test -f made-by-setup")

    result = run_xdist(
        pytester,
        tmp_path,
        f"--hypotheses={git_repo}",
        f"--hypotheses-setup={counting(counter)}; sleep 0.5",
    )

    result.assert_outcomes(passed=4)
    assert counter.read_text() == "ran\n"


def test_under_xdist_a_hypothesis_without_a_setup_waits_for_its_worktrees_step(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: WriteMetadata,
    tmp_path: Path,
) -> None:
    """Each worker knows only the item it runs: the step another item declares still runs
    before this one's script, once in all."""
    counter = tmp_path / "runs"
    write_script(git_repo, "a_plain", "test -f made-by-setup")
    write_script(git_repo, "b_declares", "test -f made-by-setup")
    write_metadata(git_repo, "b_declares", {"setup": f"sleep 0.5 && {counting(counter)}"})

    result = run_xdist(
        pytester,
        tmp_path,
        f"--hypotheses={git_repo}",
    )

    result.assert_outcomes(passed=2)
    assert counter.read_text() == "ran\n"


def test_under_xdist_a_step_runs_once_in_the_session_though_scripts_change_the_worktree(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: WriteMetadata,
    tmp_path: Path,
) -> None:
    """A script's untracked file changes the content the stamp was made for: another worker
    would run the step again, under the scripts still running."""
    counter = tmp_path / "runs"
    for hypothesis_id in ("a_plain", "c_plain"):
        write_script(git_repo, hypothesis_id, "touch out-$$.txt\nsleep 0.5\ntest -f made")
    write_script(git_repo, "d_declares", "test -f made")
    step = f"echo ran >> '{counter}' && rm -f made && sleep 0.5 && touch made"
    write_metadata(git_repo, "d_declares", {"setup": step})

    result = run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=3)
    assert counter.read_text() == "ran\n"


def test_under_xdist_a_failed_step_runs_once_and_leaves_its_worktree_inconclusive(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: WriteMetadata,
    tmp_path: Path,
) -> None:
    counter = tmp_path / "runs"
    for hypothesis_id in ("a", "b", "c", "d"):
        write_script(git_repo, hypothesis_id, "exit 0")
    write_metadata(git_repo, "d", {"setup": f"echo ran >> '{counter}'; exit 3"})

    result = run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}")

    result.assert_outcomes(errors=4)
    assert counter.read_text() == "ran\n"


def test_under_xdist_the_run_wide_step_runs_before_a_hypothesis_with_its_own(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: WriteMetadata,
    tmp_path: Path,
) -> None:
    for hypothesis_id in ("a_own", "b_wide"):
        write_script(git_repo, hypothesis_id, "test -f from-wide")
    write_metadata(git_repo, "a_own", {"setup": "touch from-own"})

    result = run_xdist(
        pytester,
        tmp_path,
        f"--hypotheses={git_repo}",
        "--hypotheses-setup=sleep 1 && touch from-wide",
    )

    result.assert_outcomes(passed=2)


def test_an_empty_setup_option_runs_no_setup_step_whatever_the_ini_file_says(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    pytester.makeini("[pytest]\nhypotheses_setup = echo > made-by-setup\n")
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-setup=")

    result.assert_outcomes(passed=1)
    assert not (git_repo / "made-by-setup").exists()
