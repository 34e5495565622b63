"""``pytest-hypotheses new --setup CMD --setup-timeout S --confirm --memory SIZE``: what it
writes, what discovery reads back, what ``list`` shows, and the refusals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest

from pytest_parallel_hypotheses import Polarity, cli
from pytest_parallel_hypotheses.finding.discovery import discover


@pytest.fixture
def in_repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(git_repo)
    return git_repo


def metadata_of(worktree: Path, hypothesis_id: str) -> Dict[str, Any]:
    path = worktree / ".falsification" / f"config_{hypothesis_id}.json"
    data: Dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def test_new_writes_the_setup_step_and_the_polarity(in_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "fix"
    args = ["new", "fix", "--run", "exit 0", "--dir", str(folder), "--confirm"]

    assert cli.main([*args, "--setup", "make venv", "--setup-timeout", "90"]) == 0

    data = metadata_of(folder, "fix")
    assert (data["setup"], data["setup_timeout"], data["polarity"]) == ("make venv", 90, "confirm")


def test_new_without_confirm_writes_the_disprove_polarity(in_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cause"

    assert cli.main(["new", "cause", "--run", "exit 0", "--dir", str(folder)]) == 0

    data = metadata_of(folder, "cause")
    assert data["polarity"] == "disprove"
    assert "setup" not in data


def test_discovery_reads_back_what_new_wrote(in_repo: Path, tmp_path: Path) -> None:
    args = ["new", "fix", "--run", "exit 0", "--dir", str(tmp_path / "fix"), "--confirm"]
    assert cli.main([*args, "--setup", "true"]) == 0

    (found,) = [h for h in discover(in_repo) if h.hypothesis_id == "fix"]

    assert (found.problem, found.setup, found.polarity) == (None, "true", Polarity.CONFIRM)


def test_the_script_of_a_confirming_hypothesis_says_exit_0_supports_it(
    in_repo: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "fix"
    assert cli.main(["new", "fix", "--run", "exit 0", "--dir", str(folder), "--confirm"]) == 0

    text = (folder / ".falsification" / "test_fix.sh").read_text("utf-8")

    assert "written to CONFIRM it" in text
    assert "Exit 0 supports the hypothesis" in text
    subprocess.run([str(folder / ".falsification" / "test_fix.sh")], check=True)


@pytest.mark.parametrize("setup", ["", "   "])
def test_an_empty_setup_is_one_sentence(
    in_repo: Path, setup: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["new", "h1", "--run", "exit 0", "--setup", setup]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "setup must be a non-empty string (a shell command)" in err


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_a_bad_setup_timeout_is_refused(
    in_repo: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["new", "h1", "--run", "exit 0", "--setup", "true", "--setup-timeout", value])

    assert exited.value.code == 2
    assert "expected a number of seconds > 0" in capsys.readouterr().err


def test_list_shows_the_setup_and_a_confirming_script(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["new", "fix", "--run", "exit 0", "--dir", str(tmp_path / "fix"), "--confirm"]
    assert cli.main([*args, "--setup", "make venv"]) == 0
    capsys.readouterr()

    assert cli.main(["list"]) == 0

    out = capsys.readouterr().out
    assert "written to confirm" in out
    assert "setup: make venv" in out


def test_new_writes_the_memory_limit_that_discovery_and_list_read_back(
    in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["new", "leak", "--run", "exit 0", "--dir", str(tmp_path / "leak")]
    assert cli.main([*args, "--memory", "200M"]) == 0
    capsys.readouterr()

    (found,) = [h for h in discover(in_repo) if h.hypothesis_id == "leak"]
    assert cli.main(["list"]) == 0

    assert metadata_of(tmp_path / "leak", "leak")["memory"] == "200M"
    assert found.memory == 200 * 1024**2
    assert "memory limit 200 MiB" in capsys.readouterr().out
