"""``pytest --hypotheses``: what is collected, from where, and how it is selected."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

RunPytest = Callable[..., pytest.RunResult]

WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]


def test_a_repository_is_searched_in_every_worktree(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(git_repo, "in-main", "exit 0")
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--co", "-q")

    result.stdout.fnmatch_lines(
        ["repo::in-main", "worktrees/one::cache", "worktrees/two::race", "3 tests collected*"]
    )


def test_a_folder_of_worktrees_is_searched_in_each_of_them_only(
    run_pytest: RunPytest,
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    write_script(git_repo, "in-main", "exit 0")
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 0")

    result = run_pytest(f"--hypotheses={tmp_path / 'worktrees'}", "--co", "-q")

    result.stdout.fnmatch_lines(["worktrees/one::cache", "worktrees/two::race", "2 tests*"])
    result.stdout.no_fnmatch_line("*in-main*")


def test_without_a_value_the_current_repository_is_searched(
    run_pytest: RunPytest,
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    monkeypatch.chdir(git_repo)

    result = run_pytest("--hypotheses", "--co", "-q")

    result.stdout.fnmatch_lines(["worktrees/one::cache", "1 test collected*"])


def test_the_ini_folder_is_searched_when_no_value_is_given(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    pytester.makeini(f"[pytest]\nhypotheses_dir = {make_worktree('two')}\n")

    result = run_pytest("--hypotheses", "--co", "-q")

    result.stdout.fnmatch_lines(["worktrees/one::cache", "1 test collected*"])


def test_a_relative_ini_folder_is_taken_from_the_ini_files_folder_with_a_bare_switch(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    config = tmp_path / "config"
    config.mkdir()
    ini = config / "pytest.ini"
    ini.write_text("[pytest]\nhypotheses_dir = ../worktrees/one\n")
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)

    result = run_pytest("-c", str(ini), "--hypotheses", "--co", "-q")

    result.stdout.fnmatch_lines(["worktrees/one::cache", "1 test collected*"])


def test_a_folder_on_the_command_line_wins_over_the_ini_folder(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    tmp_path: Path,
    git_repo: Path,
    write_script: WriteScript,
) -> None:
    write_script(git_repo, "cache", "exit 0")
    pytester.makeini(f"[pytest]\nhypotheses_dir = {tmp_path / 'missing'}\n")

    result = run_pytest(f"--hypotheses={git_repo}", "--co", "-q")

    result.stdout.fnmatch_lines(["repo::cache", "1 test collected*"])


def test_the_same_id_in_two_worktrees_is_two_items(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "cache", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1, failed=1)


def test_items_are_sorted_by_worktree_then_id(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    for name in ("b", "a"):
        worktree = make_worktree(name)
        for hypothesis_id in ("zeta", "alpha"):
            write_script(worktree, hypothesis_id, "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--co", "-q")

    result.stdout.fnmatch_lines(
        [
            "worktrees/a::alpha",
            "worktrees/a::zeta",
            "worktrees/b::alpha",
            "worktrees/b::zeta",
        ],
        consecutive=True,
    )


def test_python_tests_of_the_project_and_the_worktrees_are_not_collected(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    git_repo: Path,
) -> None:
    worktree = make_worktree("one")
    write_script(worktree, "cache", "exit 0")
    (worktree / "conftest.py").write_text("raise RuntimeError('worktree conftest imported')\n")
    (worktree / "test_code.py").write_text("def test_code():\n    pass\n")
    pytester.makepyfile(test_project="def test_project():\n    pass\n")

    result = run_pytest(f"--hypotheses={git_repo}", "--co", "-q")

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["worktrees/one::cache", "1 test collected*"])


def test_nothing_found_exits_5_saying_where_it_looked_and_what_it_expects(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree
) -> None:
    worktree = make_worktree("one")

    result = run_pytest(f"--hypotheses={git_repo}")

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        [
            "no hypothesis scripts found in *: looked for .falsification/test_<id>.sh*",
            f"  {worktree}",
        ]
    )


def test_a_missing_folder_is_a_usage_error_naming_option_and_value(
    run_pytest: RunPytest, tmp_path: Path
) -> None:
    missing = tmp_path / "missing"

    result = run_pytest(f"--hypotheses={missing}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--hypotheses={missing}: {missing} does not exist*"])


def test_a_folder_outside_git_is_a_usage_error(run_pytest: RunPytest, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()

    result = run_pytest(f"--hypotheses={tmp_path / 'plain'}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hypotheses=*plain: *is not inside a git repository*"])


def test_k_selects_hypotheses_by_id(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    worktree = make_worktree("one")
    write_script(worktree, "cache", "exit 0")
    write_script(worktree, "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "-k", "cache")

    result.assert_outcomes(passed=1, deselected=1)


def test_k_selects_hypotheses_by_branch(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "-k", "hyp-two")

    result.assert_outcomes(failed=1, deselected=1)


def test_deselect_drops_a_hypothesis_by_node_id(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "cache", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "--deselect", "worktrees/two::cache")

    result.assert_outcomes(passed=1, deselected=1)


def test_last_failed_reruns_only_the_failed_hypotheses(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    ran = tmp_path / "ran.log"
    write_script(git_repo, "fails", f"echo fails >> {ran}; exit 1")
    write_script(git_repo, "passes", f"echo passes >> {ran}; exit 0")
    run_pytest(f"--hypotheses={git_repo}").assert_outcomes(passed=1, failed=1)
    ran.unlink()

    result = run_pytest(f"--hypotheses={git_repo}", "--lf")

    result.assert_outcomes(failed=1, deselected=1)
    assert ran.read_text() == "fails\n"


def test_collect_only_runs_no_script(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    touched = tmp_path / "touched"
    write_script(git_repo, "cache", f"touch {touched}")

    result = run_pytest(f"--hypotheses={git_repo}", "--co")

    result.stdout.fnmatch_lines(["*<HypothesisItem cache>*"])
    assert not touched.exists()


def test_a_node_id_on_the_command_line_runs_that_hypothesis_alone(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    two = make_worktree("two")
    write_script(two, "cache", "exit 1")
    write_script(two, "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "-v", "worktrees/two::cache")

    result.stdout.fnmatch_lines(["*collected 1 item", "*worktrees/two::cache SUPPORTED*"])
    result.assert_outcomes(failed=1)


def test_a_worktree_on_the_command_line_runs_its_hypotheses_alone(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    two = make_worktree("two")
    write_script(two, "cache", "exit 1")
    write_script(two, "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", str(two))

    result.assert_outcomes(failed=2)


def test_a_script_on_the_command_line_runs_its_hypothesis_alone(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    script = write_script(make_worktree("two"), "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", str(script))

    result.assert_outcomes(failed=1)


def test_a_positional_argument_naming_no_hypothesis_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "worktrees/one::cahce")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: not found: worktrees/one::cahce (*node id*)"])


def test_testpaths_from_the_ini_file_select_nothing_under_hypotheses(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    pytester.mkdir("tests")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1)


def test_a_relative_path_is_taken_from_the_current_directory_only(
    run_pytest: RunPytest,
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rootdir (here above the current directory) is where node ids start, not where a
    path given on the command line does."""
    write_script(git_repo, "main", "exit 0")
    write_script(make_worktree("one"), "cache", "exit 0")
    two = make_worktree("two")
    write_script(two, "race", "exit 1")
    monkeypatch.chdir(two)

    result = run_pytest(f"--hypotheses={git_repo}", ".")

    result.assert_outcomes(failed=1)


def test_a_script_that_links_to_another_selects_its_own_hypothesis_alone(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    worktree = make_worktree("one")
    target = write_script(worktree, "cache", "exit 0")
    alias = target.with_name("test_alias.sh")
    alias.symlink_to(target.name)

    result = run_pytest(f"--hypotheses={git_repo}", "-v", str(alias))

    result.stdout.fnmatch_lines(["*collected 1 item", "*worktrees/one::alias FALSIFIED*"])


def test_the_scripts_folder_of_a_worktree_selects_its_hypotheses(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    script = write_script(make_worktree("two"), "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", str(script.parent))

    result.assert_outcomes(failed=1)
