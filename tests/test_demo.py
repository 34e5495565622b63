"""The demo, run end to end as a newcomer runs it: ``python -m pytest_parallel_hypotheses demo``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import psutil
import pytest

from pytest_parallel_hypotheses.cli.scaffold import registered


def run_demo(
    temp: Path, *args: str, path: Optional[str] = None
) -> subprocess.CompletedProcess[str]:
    """Run the demo with its temporary folder inside ``temp``."""
    env: Dict[str, str] = {**os.environ, "TMPDIR": str(temp)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "pytest_parallel_hypotheses", "demo", *args],
        cwd=temp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def demo_folders(temp: Path) -> List[Path]:
    return sorted(temp.glob("pytest-hypotheses-demo-*"))


def processes_inside(folder: Path) -> List[psutil.Process]:
    """Live processes whose working directory is inside ``folder``."""
    found = []
    for proc in psutil.process_iter(["cwd", "status"]):
        cwd = proc.info["cwd"]
        if cwd and proc.info["status"] != psutil.STATUS_ZOMBIE and cwd.startswith(str(folder)):
            found.append(proc)
    return found


class DemoRun:
    """One finished demo: its output and the folder it left."""

    def __init__(self, completed: subprocess.CompletedProcess[str], folder: Path) -> None:
        self.completed = completed
        self.folder = folder


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    temp = tmp_path_factory.mktemp("demo")
    completed = run_demo(temp)
    (folder,) = demo_folders(temp)
    return DemoRun(completed, folder)


def test_demo_succeeds(demo: DemoRun) -> None:
    assert demo.completed.returncode == 0, demo.completed.stdout + demo.completed.stderr
    assert "The demo worked: each hypothesis got its planned verdict." in demo.completed.stdout


def test_demo_streams_pytest_output_with_the_verdict_counts(demo: DemoRun) -> None:
    out = demo.completed.stdout
    assert "verdicts: 2 falsified, 1 supported, 2 inconclusive" in out
    assert "2 failed, 2 passed, 1 error in" in out
    assert "next: Exactly one hypothesis is supported (partial-page" in out


def test_demo_report_has_each_planned_result(demo: DemoRun) -> None:
    report = json.loads((demo.folder / "hypotheses-report.json").read_text("utf-8"))
    results = {r["hypothesis_id"]: (r["status"], r["result"]) for r in report["hypotheses"]}
    assert results == {
        "partial-page": ("supported", "fail"),
        "empty-listing": ("falsified", "pass"),
        "slice-offset": ("falsified", "pass"),
        "indexing-race": ("inconclusive", "timeout"),
        "stale-cache": ("inconclusive", "error"),
    }
    assert Counter(status for status, _ in results.values()) == {
        "falsified": 2,
        "supported": 1,
        "inconclusive": 2,
    }


def test_demo_worktrees_are_made_by_the_scaffolding(demo: DemoRun) -> None:
    ids = [entry.hypothesis_id for entry in registered(demo.folder / "shop")]
    assert ids == ["empty-listing", "indexing-race", "partial-page", "slice-offset", "stale-cache"]


def test_demo_leaves_no_process_behind(demo: DemoRun) -> None:
    assert processes_inside(demo.folder) == []


def test_demo_leaves_its_folder_and_says_what_to_try(demo: DemoRun) -> None:
    assert (demo.folder / "worktrees" / "shop-hyp-partial-page").is_dir()
    assert f"Everything is left in {demo.folder}" in demo.completed.stdout
    assert "-m pytest_parallel_hypotheses clean" in demo.completed.stdout


def test_demo_clean_removes_its_folder(tmp_path: Path) -> None:
    completed = run_demo(tmp_path, "--clean")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert demo_folders(tmp_path) == []


def test_demo_fails_when_a_verdict_is_not_as_planned(tmp_path: Path) -> None:
    git = shutil.which("git")
    assert git is not None
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "git").symlink_to(git)
    # without `sleep` on PATH, the hanging hypothesis ends at once instead of timing out
    completed = run_demo(tmp_path, path=str(bin_folder))
    assert completed.returncode == 1
    assert (
        "pytest-hypotheses demo: hypothesis indexing-race was planned inconclusive (timeout) "
        "but came out "
    ) in completed.stderr
    assert "The demo worked" not in completed.stdout
