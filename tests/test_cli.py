"""The ``pytest-hypotheses`` command line: output, exit statuses, and plain-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from pytest_parallel_hypotheses import cli
from pytest_parallel_hypotheses.cli.scaffold import Request, create
from pytest_parallel_hypotheses.finding.discovery import discover

TRICKY = 'it\'s "quoted", $(touch injected) `touch injected2` ; touch injected3'

MakeWorktree = Callable[[str], Path]
RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]


def run_cli(
    *args: str, cwd: Path, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would, through ``python -m``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_parallel_hypotheses", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_sentence(stderr: str, *fragments: str) -> None:
    """A user error is a single line naming the command, with no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("pytest-hypotheses: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def in_repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the command from inside the test repository."""
    monkeypatch.chdir(git_repo)
    return git_repo


def test_new_says_where_the_hypothesis_is(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["new", "h1", "--run", "exit 0"]) == 0
    out = capsys.readouterr().out
    worktree = tmp_path / "worktrees" / "repo-hyp-h1"
    assert f"Created hypothesis 'h1' in {worktree}" in out
    assert "hyp-h1" in out
    assert str(worktree / ".falsification" / "test_h1.sh") in out
    assert "pytest --hypotheses" in out


def test_new_stores_the_options_in_the_metadata(in_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    args = ["new", "h1", "--run", TRICKY, "--description", TRICKY, "--timeout", "2.5"]
    assert cli.main([*args, "--dir", str(folder)]) == 0
    data = json.loads((folder / ".falsification" / "config_h1.json").read_text("utf-8"))
    assert data["description"] == TRICKY
    assert data["test_strategy"] == TRICKY
    assert data["timeout"] == 2.5
    assert not list(tmp_path.rglob("injected*"))


def test_relative_dir_is_taken_from_the_current_folder(
    in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (in_repo / "src").mkdir()
    monkeypatch.chdir(in_repo / "src")
    assert cli.main(["new", "h1", "--run", "exit 0", "--dir", "../../wt"]) == 0
    assert (tmp_path / "wt" / ".falsification" / "test_h1.sh").is_file()


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        *(
            ("--timeout", v, "expected a number of seconds > 0")
            for v in ("0", "-1", "soon", "nan", "inf")
        ),
        *(("--memory", v, f"such as 500M, 2G or 1.5 GiB, got {v!r}") for v in ("0", "-1", "12XB")),
    ],
)
def test_a_bad_value_of_new_is_refused_saying_what_is_expected(
    in_repo: Path, option: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["new", "h1", "--run", "exit 0", option, value])
    assert exited.value.code == 2
    assert expected in capsys.readouterr().err


def test_taken_id_is_one_sentence(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["new", "h1", "--run", "exit 0"])
    capsys.readouterr()
    assert cli.main(["new", "h1", "--run", "exit 0", "--dir", "../again"]) == 1
    assert_one_sentence(capsys.readouterr().err, "'h1' is already taken")


def test_existing_folder_is_one_sentence(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["new", "h1", "--run", "exit 0", "--dir", str(tmp_path)]) == 1
    assert_one_sentence(capsys.readouterr().err, "already exists")


def test_dirty_base_is_one_sentence(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_repo / "README").write_text("changed\n")
    assert cli.main(["new", "h1", "--run", "exit 0"]) == 1
    assert_one_sentence(capsys.readouterr().err, "uncommitted changes", "--base")


def test_invalid_id_is_one_sentence(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["new", "a/../b", "--run", "exit 0"]) == 1
    assert_one_sentence(capsys.readouterr().err, "not a safe file-name token")


def listed_ids(out: str) -> List[str]:
    """The ids of ``list`` output: the first word of each row indented by two spaces."""
    return [
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and line[2] != " "
    ]


def test_list_shows_what_discovery_finds(
    in_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.main(["new", "h1", "--run", "exit 0", "--description", "the cache is stale"])
    cli.main(["new", "h2", "--run", "exit 1", "--timeout", "3"])
    write_script(make_worktree("mine"), "own", "exit 0")
    capsys.readouterr()
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert listed_ids(out) == [found.hypothesis_id for found in discover(in_repo)]
    assert out.splitlines()[0] == "3 hypotheses in 3 worktrees of this repository:"
    assert "the cache is stale" in out
    assert "timeout 3 s" in out


def test_list_agrees_with_what_pytest_collects(
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    run_pytest: RunPytest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create(git_repo, Request("h1", "exit 0"))
    write_script(make_worktree("mine"), "own", "exit 0")
    write_script(git_repo, "in-main", "exit 0")
    assert cli.main(["list", str(git_repo)]) == 0
    listed = listed_ids(capsys.readouterr().out)
    result = run_pytest(f"--hypotheses={git_repo}", "--co", "-q")
    collected = [line.rsplit("::", 1)[1] for line in result.outlines if "::" in line]
    assert listed == collected
    assert sorted(listed) == ["h1", "in-main", "own"]


def test_list_of_a_folder_of_worktrees(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["new", "h1", "--run", "exit 0"])
    cli.main(["new", "h2", "--run", "exit 0", "--dir", str(tmp_path / "elsewhere" / "h2")])
    capsys.readouterr()
    assert cli.main(["list", str(tmp_path / "worktrees")]) == 0
    assert listed_ids(capsys.readouterr().out) == ["h1"]


def test_list_says_why_a_hypothesis_will_be_an_error(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["new", "h1", "--run", "exit 0"])
    config = tmp_path / "worktrees" / "repo-hyp-h1" / ".falsification" / "config_h1.json"
    config.write_text("{not json")
    capsys.readouterr()
    assert cli.main(["list"]) == 0
    assert "will be an error: metadata file" in capsys.readouterr().out


def test_list_of_nothing_says_what_it_looks_for(
    in_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["list"]) == 0
    assert ".falsification/test_<id>.sh" in capsys.readouterr().out


def test_list_of_a_missing_folder_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["list", str(tmp_path / "nowhere")]) == 1
    assert_one_sentence(capsys.readouterr().err, "does not exist")


def test_clean_reports_what_it_removed(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["new", "h1", "--run", "exit 0"])
    capsys.readouterr()
    assert cli.main(["clean"]) == 0
    worktree = tmp_path / "worktrees" / "repo-hyp-h1"
    assert capsys.readouterr().out == f"Removed worktree {worktree} and branch hyp-h1\n"


def test_clean_refuses_a_dirty_worktree_with_a_failing_status(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["new", "h1", "--run", "exit 0"])
    worktree = tmp_path / "worktrees" / "repo-hyp-h1"
    (worktree / "fix.py").write_text("pass\n")
    capsys.readouterr()
    assert cli.main(["clean"]) == 1
    assert_one_sentence(capsys.readouterr().err, "uncommitted changes", "--force")
    assert worktree.exists()
    assert cli.main(["clean", "--force"]) == 0
    assert not worktree.exists()


def test_list_into_a_reader_that_stops_early_ends_quietly(
    git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "long", "exit 0")
    config = git_repo / ".falsification" / "config_long.json"
    config.write_text(json.dumps({"description": "far more than a pipe holds " * 40_000}))
    command = [sys.executable, "-m", "pytest_parallel_hypotheses", "list"]
    with subprocess.Popen(
        command, cwd=git_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as lister:
        assert lister.stdout is not None
        assert lister.stderr is not None
        first = lister.stdout.readline()
        lister.stdout.close()  # as `| head -1` does
        errors = lister.stderr.read()
        status = lister.wait(timeout=120)

    assert first == "1 hypothesis in 1 worktree of this repository:\n"
    assert errors == ""
    assert status == cli.READER_GONE


def test_clean_with_nothing_to_do(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["clean"]) == 0
    assert "Nothing to clean" in capsys.readouterr().out


def test_python_m_runs_the_command(git_repo: Path, tmp_path: Path) -> None:
    completed = run_cli("new", "h1", "--run", "exit 0", cwd=git_repo)
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "worktrees" / "repo-hyp-h1" / ".falsification" / "test_h1.sh").is_file()


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "pytest-hypotheses"
    completed = subprocess.run(
        [str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0
    assert "usage: pytest-hypotheses" in completed.stdout


@pytest.mark.parametrize("command", [["new", "h1", "--run", "exit 0"], ["list"], ["clean"]])
def test_outside_a_repository_is_one_sentence(tmp_path: Path, command: List[str]) -> None:
    completed = run_cli(*command, cwd=tmp_path)
    assert completed.returncode == 1
    assert_one_sentence(completed.stderr, "not inside a git repository")


def test_missing_git_is_one_sentence(git_repo: Path, tmp_path: Path) -> None:
    no_git = tmp_path / "bin"
    no_git.mkdir()
    env = {**os.environ, "PATH": str(no_git)}
    completed = run_cli("new", "h1", "--run", "exit 0", cwd=git_repo, env=env)
    assert completed.returncode == 1
    assert_one_sentence(completed.stderr, "git is not installed")


def test_missing_subcommand_shows_usage(tmp_path: Path) -> None:
    completed = run_cli(cwd=tmp_path)
    assert completed.returncode == 2
    assert "usage: pytest-hypotheses" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_clean_names_what_a_kept_worktree_has_uncommitted(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["new", "h1", "--run", "exit 0"])
    (tmp_path / "worktrees" / "repo-hyp-h1" / "notes.txt").write_text("work in progress\n")
    capsys.readouterr()

    assert cli.main(["clean"]) == 1
    assert "uncommitted changes (?? notes.txt;" in capsys.readouterr().err
