"""Ids, script locations and the checks made before a script may run."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from pytest_parallel_hypotheses.finding.layout import (
    CANNOT_EXECUTE_EXIT,
    NOT_FOUND_EXIT,
    ScriptProblem,
    config_path,
    explain_spawn_error,
    is_valid_id,
    locate_script,
    script_path,
)

UNSAFE_IDS = ["../x", "/etc", "", "a\0b", ".hidden", "-rf", "a/b", "a b", "x" * 101, "é"]


@pytest.mark.parametrize("hypothesis_id", ["h1", "H-2", "cache.stale_3", "0", "x" * 100])
def test_safe_file_name_tokens_are_valid_ids(hypothesis_id: str) -> None:
    assert is_valid_id(hypothesis_id)


@pytest.mark.parametrize("hypothesis_id", UNSAFE_IDS)
def test_anything_that_could_name_a_path_is_not_a_valid_id(hypothesis_id: str) -> None:
    assert not is_valid_id(hypothesis_id)


@pytest.mark.parametrize("hypothesis_id", [None, 3, b"h1"])
def test_a_non_string_is_not_a_valid_id(hypothesis_id: object) -> None:
    assert not is_valid_id(hypothesis_id)


def test_script_and_config_paths_follow_the_naming_convention(tmp_path: Path) -> None:
    assert script_path(tmp_path, "h1") == tmp_path / ".falsification" / "test_h1.sh"
    assert config_path(str(tmp_path), "h1") == tmp_path / ".falsification" / "config_h1.json"


def make_script(folder: Path, hypothesis_id: str, body: str = "exit 0", mode: int = 0o755) -> Path:
    script = script_path(folder, hypothesis_id)
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(mode)
    return script


def test_a_good_script_is_located(tmp_path: Path) -> None:
    script = make_script(tmp_path, "h1")
    assert locate_script(tmp_path, "h1") == script


def test_a_worktree_reached_through_a_symlink_keeps_the_path_it_was_given(tmp_path: Path) -> None:
    make_script(tmp_path / "real", "h1")
    make_script(tmp_path / "real", "target")
    script_path(tmp_path / "real", "alias").symlink_to(script_path(tmp_path / "real", "target"))
    (tmp_path / "link").symlink_to(tmp_path / "real")

    assert locate_script(tmp_path / "link", "h1") == script_path(tmp_path / "link", "h1")
    assert locate_script(tmp_path / "link", "alias") == script_path(tmp_path / "real", "target")


def test_a_worktree_path_going_up_through_a_symlink_finds_the_folder_the_system_finds(
    tmp_path: Path,
) -> None:
    # "a/link/.." is the parent of link's target, not "a": the script run is the one there
    (tmp_path / "elsewhere" / "dir").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "link").symlink_to(tmp_path / "elsewhere" / "dir")
    make_script(tmp_path / "a", "h1")
    there = make_script(tmp_path / "elsewhere", "h1")

    located = locate_script(tmp_path / "a" / "link" / "..", "h1")

    assert located.resolve() == there


def test_a_script_symlinked_inside_its_worktree_is_accepted(tmp_path: Path) -> None:
    real = make_script(tmp_path, "real")
    script_path(tmp_path, "alias").symlink_to(real)
    assert locate_script(tmp_path, "alias") == real.resolve()


@pytest.mark.parametrize("hypothesis_id", UNSAFE_IDS)
def test_an_unsafe_id_is_refused_before_looking_at_the_disk(hypothesis_id: str) -> None:
    with pytest.raises(ScriptProblem, match="not a safe file-name token") as problem:
        locate_script(Path("no such worktree"), hypothesis_id)
    assert problem.value.exit_code == CANNOT_EXECUTE_EXIT


def test_no_worktree_is_a_problem() -> None:
    with pytest.raises(ScriptProblem, match="no worktree was given") as problem:
        locate_script(None, "h1")
    assert problem.value.exit_code == NOT_FOUND_EXIT


def test_a_missing_worktree_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ScriptProblem, match="worktree not found"):
        locate_script(tmp_path / "gone", "h1")


def test_a_missing_script_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ScriptProblem, match="not found") as problem:
        locate_script(tmp_path, "h1")
    assert problem.value.exit_code == NOT_FOUND_EXIT


def test_a_dangling_symlink_is_not_found(tmp_path: Path) -> None:
    script = script_path(tmp_path, "h1")
    script.parent.mkdir()
    script.symlink_to(tmp_path / "nowhere.sh")
    with pytest.raises(ScriptProblem, match=r"not found.*symlink"):
        locate_script(tmp_path, "h1")


def test_a_symlink_loop_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    script = script_path(tmp_path, "h1")
    script.parent.mkdir()
    script.symlink_to(script)
    with pytest.raises(ScriptProblem, match=r"test_h1\.sh"):
        locate_script(tmp_path, "h1")


def test_a_script_resolving_outside_its_worktree_is_refused(tmp_path: Path) -> None:
    outside = make_script(tmp_path / "elsewhere", "h1")
    worktree = tmp_path / "wt"
    script_path(worktree, "h1").parent.mkdir(parents=True)
    script_path(worktree, "h1").symlink_to(outside)
    with pytest.raises(ScriptProblem, match=r"refused.*outside its worktree"):
        locate_script(worktree, "h1")


def test_a_script_folder_linked_outside_the_worktree_is_refused(tmp_path: Path) -> None:
    make_script(tmp_path / "elsewhere", "h1")
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".falsification").symlink_to(tmp_path / "elsewhere" / ".falsification")
    with pytest.raises(ScriptProblem, match="outside its worktree"):
        locate_script(worktree, "h1")


def test_a_directory_is_not_a_script(tmp_path: Path) -> None:
    script_path(tmp_path, "h1").mkdir(parents=True)
    with pytest.raises(ScriptProblem, match="not a regular file"):
        locate_script(tmp_path, "h1")


def test_a_script_without_execute_permission_is_refused(tmp_path: Path) -> None:
    make_script(tmp_path, "h1", mode=0o644)
    with pytest.raises(ScriptProblem, match=r"not executable \(run: chmod \+x"):
        locate_script(tmp_path, "h1")


def exec_error(script: Path) -> OSError:
    """The error the kernel really gives when asked to execute ``script``."""
    with pytest.raises(OSError, match=r"^\[Errno \d+\]") as raised:
        subprocess.run([str(script)], check=False)
    return raised.value


def test_no_shebang_is_explained(tmp_path: Path) -> None:
    script = script_path(tmp_path, "h1")
    script.parent.mkdir()
    script.write_text("exit 0\n")
    script.chmod(0o755)
    error = exec_error(script)
    assert error.errno == errno.ENOEXEC
    problem = explain_spawn_error(script, error)
    assert "first line must be a shebang" in str(problem)
    assert "'exit 0'" in str(problem)


def test_a_windows_line_ending_after_the_shebang_is_explained(tmp_path: Path) -> None:
    script = script_path(tmp_path, "h1")
    script.parent.mkdir()
    script.write_bytes(b"#!/bin/sh\r\nexit 0\r\n")
    script.chmod(0o755)
    error = exec_error(script)
    assert error.errno == errno.ENOENT
    problem = explain_spawn_error(script, error)
    assert "interpreter" in str(problem)
    assert "not found" in str(problem)
    assert "Windows line endings" in str(problem)
    assert problem.exit_code == NOT_FOUND_EXIT


def test_a_missing_interpreter_is_explained(tmp_path: Path) -> None:
    script = make_script(tmp_path, "h1")
    script.write_text("#!/no/such/interpreter\n")
    problem = explain_spawn_error(script, exec_error(script))
    assert "interpreter of test script" in str(problem)
    assert "Windows" not in str(problem)


def test_running_out_of_open_files_is_explained() -> None:
    error = OSError(errno.EMFILE, os.strerror(errno.EMFILE))
    problem = explain_spawn_error(Path("test_h1.sh"), error)
    assert "Too many open files" in str(problem)
    assert "lower the number of concurrent tests" in str(problem)
