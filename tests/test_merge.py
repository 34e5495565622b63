"""``python -m pytest_parallel_hypotheses merge``: the shards' reports become one run's report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

from pytest_parallel_hypotheses import cli

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]
Report = Dict[str, Any]

#: Scripts of every verdict, in two worktrees (the same id in both).
SCRIPTS = {
    "one": {"cache": "exit 0", "race": "exit 1", "env": "exit 125", "disk": "exit 0"},
    "two": {"cache": "exit 1", "locale": "exit 0"},
}


@pytest.fixture
def hypotheses(git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript) -> Path:
    """A repository whose worktrees hold hypotheses of every verdict."""
    for name, scripts in SCRIPTS.items():
        worktree = make_worktree(name)
        for hypothesis_id, body in scripts.items():
            write_script(worktree, hypothesis_id, body)
    return git_repo


def report_of(run_pytest: RunPytest, repo: Path, path: Path, *args: str) -> Path:
    run_pytest(f"--hypotheses={repo}", f"--hypotheses-report={path}", *args)
    return path


def shard_reports(run_pytest: RunPytest, repo: Path, folder: Path, count: int) -> List[Path]:
    return [
        report_of(run_pytest, repo, folder / f"shard-{k}.json", f"--hypotheses-shard={k}/{count}")
        for k in range(1, count + 1)
    ]


#: What the command did: its exit status, stdout and stderr.
Outcome = Tuple[int, str, str]
Merge = Callable[..., Outcome]


@pytest.fixture
def merge(capsys: pytest.CaptureFixture[str]) -> Merge:
    """``merge(*args)`` runs the command in this process; what the runs before it printed
    is not part of its output."""

    def run(*args: object) -> Outcome:
        capsys.readouterr()
        status = cli.main(["merge", *map(str, args)])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def load(path: Path) -> Report:
    report: Report = json.loads(path.read_text())
    return report


def verdicts(report: Report) -> Dict[str, Tuple[str, str, int]]:
    return {
        record["nodeid"]: (record["status"], record["result"], record["exit_code"])
        for record in report["hypotheses"]
    }


def test_merging_the_shards_reproduces_the_verdicts_of_one_run(
    run_pytest: RunPytest, hypotheses: Path, tmp_path: Path, merge: Merge
) -> None:
    whole = load(report_of(run_pytest, hypotheses, tmp_path / "whole.json"))
    shards = shard_reports(run_pytest, hypotheses, tmp_path, 3)

    merge(*shards, "-o", tmp_path / "merged.json")

    merged = load(tmp_path / "merged.json")
    assert verdicts(merged) == verdicts(whole)
    assert merged["counts"] == whole["counts"]
    assert merged["next_action"] == whole["next_action"]


def test_the_merged_report_lists_the_hypotheses_in_the_order_of_one_run(
    run_pytest: RunPytest, hypotheses: Path, tmp_path: Path, merge: Merge
) -> None:
    whole = load(report_of(run_pytest, hypotheses, tmp_path / "whole.json"))
    shards = shard_reports(run_pytest, hypotheses, tmp_path, 2)

    merge(*reversed(shards), "-o", tmp_path / "merged.json")

    assert list(verdicts(load(tmp_path / "merged.json"))) == list(verdicts(whole))


def test_the_merged_report_has_the_layout_of_one_runs_report(
    run_pytest: RunPytest, hypotheses: Path, tmp_path: Path, merge: Merge
) -> None:
    whole = load(report_of(run_pytest, hypotheses, tmp_path / "whole.json"))
    shards = shard_reports(run_pytest, hypotheses, tmp_path, 2)

    merge(*shards, "-o", tmp_path / "merged.json")

    merged = load(tmp_path / "merged.json")
    assert merged.keys() == whole.keys()
    assert merged["schema_version"] == whole["schema_version"]
    assert set(whole["run"]) <= set(merged["run"])
    assert {tuple(record) for record in merged["hypotheses"]} == {
        tuple(record) for record in whole["hypotheses"]
    }
    assert [run["shard"]["index"] for run in merged["run"]["merged_from"]] == [1, 2]


def test_merge_prints_the_combined_summary_and_verdict(
    run_pytest: RunPytest, hypotheses: Path, tmp_path: Path
) -> None:
    shards = shard_reports(run_pytest, hypotheses, tmp_path, 2)

    completed = subprocess.run(
        [sys.executable, "-m", "pytest_parallel_hypotheses", "merge", *map(str, shards)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    lines = completed.stdout.splitlines()
    assert lines[0] == "2 reports, 6 hypotheses"
    pytest.LineMatcher(lines).fnmatch_lines(
        [
            "id *worktree (branch) *verdict *result *exit *duration *confidence",
            "cache *worktrees/one (hyp-one) *FALSIFIED *pass *0 *",
            "disk *worktrees/one (hyp-one) *FALSIFIED *pass *0 *",
            "env *worktrees/one (hyp-one) *INCONCLUSIVE *skip *125 *",
            "race *worktrees/one (hyp-one) *SUPPORTED *fail *1 *",
            "cache *worktrees/two (hyp-two) *SUPPORTED *fail *1 *",
            "locale *worktrees/two (hyp-two) *FALSIFIED *pass *0 *",
            "verdicts: 3 falsified, 2 supported, 1 inconclusive",
            "next: 2 hypotheses are supported (race, cache): *",
        ]
    )
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED


def test_merge_exits_0_when_every_hypothesis_passed(
    run_pytest: RunPytest, hypotheses: Path, tmp_path: Path, merge: Merge
) -> None:
    reports = [
        report_of(run_pytest, hypotheses, tmp_path / "a.json", "-k", "disk"),
        report_of(run_pytest, hypotheses, tmp_path / "b.json", "-k", "locale"),
    ]

    assert merge(*reports)[0] == pytest.ExitCode.OK


def test_merge_exits_2_when_a_part_was_cancelled(
    run_pytest: RunPytest,
    hypotheses: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    tmp_path: Path,
    merge: Merge,
) -> None:
    """A CI job cancelled mid-run leaves a report of its part: merged with parts that
    passed, it must not read as a clean run."""
    started = tmp_path / "started"
    write_script(make_worktree("three"), "hang", f"touch {started}\nsleep 60")
    passed = report_of(run_pytest, hypotheses, tmp_path / "passed.json", "-k", "disk")
    cancelled = tmp_path / "cancelled.json"
    arguments = ["-p", "no:cacheprovider", "-p", "no:xdist", f"--rootdir={tmp_path}", "-k", "hang"]
    arguments += [f"--hypotheses={hypotheses}", f"--hypotheses-report={cancelled}"]
    pytest_run = subprocess.Popen(
        [sys.executable, "-m", "pytest", *arguments],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pytest_run.send_signal(signal.SIGTERM)
    assert pytest_run.wait(timeout=60) == pytest.ExitCode.INTERRUPTED

    assert merge(passed, cancelled)[0] == pytest.ExitCode.INTERRUPTED


def test_merge_exits_5_when_no_report_holds_a_hypothesis(
    run_pytest: RunPytest, hypotheses: Path, tmp_path: Path, merge: Merge
) -> None:
    report = report_of(run_pytest, hypotheses, tmp_path / "none.json", "-k", "no_such_name")

    assert merge(report)[0] == pytest.ExitCode.NO_TESTS_COLLECTED


def test_merge_without_output_writes_no_file(
    run_pytest: RunPytest, hypotheses: Path, tmp_path: Path, merge: Merge
) -> None:
    shards = shard_reports(run_pytest, hypotheses, tmp_path / "shards", 2)

    merge(*shards)

    files = sorted(path.name for path in (tmp_path / "shards").iterdir() if path.is_file())
    assert files == ["shard-1.json", "shard-2.json"]


def assert_refused(outcome: Outcome, *fragments: str) -> None:
    """A refused merge exits 4 with one sentence on stderr, and prints no summary."""
    status, out, err = outcome
    assert status == cli.MERGE_REFUSED
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pytest-hypotheses: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert out == ""


def test_reports_of_different_schema_versions_are_refused(
    run_pytest: RunPytest,
    hypotheses: Path,
    tmp_path: Path,
    merge: Merge,
) -> None:
    first, second = shard_reports(run_pytest, hypotheses, tmp_path, 2)
    newer = load(second)
    newer["schema_version"] += 1
    second.write_text(json.dumps(newer))

    outcome = merge(first, second, "-o", tmp_path / "merged.json")

    assert_refused(outcome, "different schema versions")
    assert not (tmp_path / "merged.json").exists()


def test_reports_of_another_schema_version_are_refused(
    run_pytest: RunPytest,
    hypotheses: Path,
    tmp_path: Path,
    merge: Merge,
) -> None:
    report = report_of(run_pytest, hypotheses, tmp_path / "whole.json")
    older = load(report)
    older["schema_version"] = 0
    report.write_text(json.dumps(older))

    assert_refused(merge(report), f"{report} has schema version 0")


def test_the_same_hypothesis_in_two_reports_is_refused(
    run_pytest: RunPytest,
    hypotheses: Path,
    tmp_path: Path,
    merge: Merge,
) -> None:
    first = report_of(run_pytest, hypotheses, tmp_path / "first.json", "-k", "cache or race")
    second = report_of(run_pytest, hypotheses, tmp_path / "second.json", "-k", "race")

    outcome = merge(first, second)

    assert_refused(outcome, "::race is in both", str(first), str(second))


def test_a_missing_shard_is_refused(
    run_pytest: RunPytest,
    hypotheses: Path,
    tmp_path: Path,
    merge: Merge,
) -> None:
    first, _second, third = shard_reports(run_pytest, hypotheses, tmp_path, 3)

    assert_refused(merge(first, third), "shard 2/3 is missing")


def test_shards_of_different_splits_are_refused(
    run_pytest: RunPytest,
    hypotheses: Path,
    tmp_path: Path,
    merge: Merge,
) -> None:
    halves = shard_reports(run_pytest, hypotheses, tmp_path / "halves", 2)
    thirds = shard_reports(run_pytest, hypotheses, tmp_path / "thirds", 3)

    assert_refused(merge(halves[0], thirds[1]), "split different hypotheses")


def test_a_shard_given_twice_is_refused(
    run_pytest: RunPytest,
    hypotheses: Path,
    tmp_path: Path,
    merge: Merge,
) -> None:
    first, second = shard_reports(run_pytest, hypotheses, tmp_path, 2)

    assert_refused(merge(first, second, first), "shard 1/2 is given twice")


def test_an_output_that_would_overwrite_a_shard_is_refused(
    run_pytest: RunPytest,
    hypotheses: Path,
    tmp_path: Path,
    merge: Merge,
) -> None:
    first, second = shard_reports(run_pytest, hypotheses, tmp_path, 2)
    kept = first.read_text()

    assert_refused(merge(first, second, "-o", first), "is one of the reports to merge")
    assert first.read_text() == kept


def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path, merge: Merge) -> None:
    other = tmp_path / "package.json"
    other.write_text('{"name": "not a report"}')

    assert_refused(merge(other), f"{other} is not a report")


def test_a_missing_report_file_is_refused(tmp_path: Path, merge: Merge) -> None:
    assert_refused(merge(tmp_path / "absent.json"), "cannot read", "absent.json")
