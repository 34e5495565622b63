"""The verdict cache (``--hypotheses-reuse``): unchanged inputs reuse a decided verdict, any
changed input runs the script again, and the store survives concurrency and kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from pytest_parallel_hypotheses import TestExecutionResult, TestResult, cli
from pytest_parallel_hypotheses.finding.cache import (
    VerdictStore,
    entry_of,
    result_of,
    store_folder,
)
from pytest_parallel_hypotheses.finding.git import run_git

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]

REUSE = "--hypotheses-reuse=yes"


def counting(counter: Path, body: str) -> str:
    """A script body that notes each run in ``counter`` (outside the worktree) first."""
    return f"echo run >> '{counter}'\n{body}"


def runs_of(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def report_of(run_pytest: RunPytest, git_repo: Path, report: Path, *args: str) -> Dict[str, Any]:
    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}", REUSE, *args)
    records: List[Dict[str, Any]] = json.loads(report.read_text())["hypotheses"]
    return {record["hypothesis_id"]: record for record in records}


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return tmp_path / "report.json"


@dataclass
class Stored:
    """Hypothesis ``race`` (exit 1), run once with reuse so that its verdict is stored."""

    run_pytest: RunPytest
    repo: Path
    counter: Path

    def again(self, *args: str) -> pytest.RunResult:
        return self.run_pytest(f"--hypotheses={self.repo}", REUSE, *args)

    @property
    def runs(self) -> int:
        return runs_of(self.counter)


@pytest.fixture
def stored(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> Stored:
    counter = tmp_path / "runs"
    write_script(git_repo, "race", counting(counter, "exit 1"))
    run_pytest(f"--hypotheses={git_repo}", REUSE)
    return Stored(run_pytest, git_repo, counter)


def test_an_unchanged_hypothesis_reuses_its_verdict_without_running(stored: Stored) -> None:
    result = stored.again()

    assert stored.runs == 1
    result.stdout.fnmatch_lines(["race *SUPPORTED *fail *1 run; cached (run 20*)*"])
    result.assert_outcomes(failed=1)


def test_reuse_is_off_by_default(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    write_script(git_repo, "race", counting(counter, "exit 1"))

    for _ in range(2):
        run_pytest(f"--hypotheses={git_repo}")

    assert runs_of(counter) == 2
    assert store_folder(git_repo) is not None
    assert not store_folder(git_repo).exists()  # type: ignore[union-attr]


def test_editing_one_script_reruns_only_that_hypothesis(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path, report: Path
) -> None:
    write_script(git_repo, "edited", counting(tmp_path / "edited", "exit 1"))
    write_script(git_repo, "other", counting(tmp_path / "other", "exit 0"))
    run_pytest(f"--hypotheses={git_repo}", REUSE)
    write_script(git_repo, "edited", counting(tmp_path / "edited", "exit 0"))

    records = report_of(run_pytest, git_repo, report)

    assert (runs_of(tmp_path / "edited"), runs_of(tmp_path / "other")) == (2, 1)
    assert (records["edited"]["status"], records["edited"]["cached"]) == ("falsified", False)
    assert records["other"]["cached"] is True


@pytest.mark.parametrize("committed", [False, True], ids=["untracked", "committed"])
def test_an_edited_helper_beside_the_scripts_runs_them_again(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    git_command: Callable[..., str],
    tmp_path: Path,
    report: Path,
    committed: bool,
) -> None:
    """Files under .falsification counted as committed only, so a script that runs a helper
    there (``python .falsification/check.py``) kept its verdict after the helper changed."""
    counter = tmp_path / "runs"
    write_script(git_repo, "race", counting(counter, "sh .falsification/check.sh"))
    helper = git_repo / ".falsification" / "check.sh"
    helper.write_text("exit 1\n")
    if committed:
        git_command(git_repo, "add", ".falsification/check.sh")
        git_command(git_repo, "commit", "-q", "-m", "helper")
    run_pytest(f"--hypotheses={git_repo}", REUSE)
    helper.write_text("exit 0\n")

    records = report_of(run_pytest, git_repo, report)

    assert runs_of(counter) == 2
    assert (records["race"]["status"], records["race"]["cached"]) == ("falsified", False)


def test_a_reused_verdict_that_meets_the_stop_condition_starts_nothing(
    stored: Stored, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(stored.repo, "new", counting(tmp_path / "new", "exit 0"))

    result = stored.again("--hypotheses-stop-on=supported", "-rs")

    assert (stored.runs, runs_of(tmp_path / "new")) == (1, 0)
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*not started because hypothesis race was SUPPORTED (reused)*"])


def test_under_xdist_a_reused_verdict_that_meets_the_stop_condition_stops_the_run(
    stored: Stored, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(stored.repo, "zebra", counting(tmp_path / "zebra", "exit 0"))  # after race

    result = stored.again("--hypotheses-stop-on=supported", "-n", "1")

    assert (stored.runs, runs_of(tmp_path / "zebra")) == (1, 0)
    result.stdout.fnmatch_lines(["*! hypothesis race was SUPPORTED (reused) !*"])


def test_a_reused_verdict_that_does_not_meet_the_stop_condition_runs_the_rest(
    stored: Stored, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(stored.repo, "new", counting(tmp_path / "new", "exit 0"))

    result = stored.again("--hypotheses-stop-on=falsified")

    assert (stored.runs, runs_of(tmp_path / "new")) == (1, 1)
    result.assert_outcomes(failed=1, passed=1)


def test_an_uncommitted_change_to_the_worktree_runs_again(stored: Stored) -> None:
    (stored.repo / "README").write_text("changed\n")

    stored.again()

    assert stored.runs == 2


def test_a_new_untracked_file_runs_again_but_an_ignored_one_does_not(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    (git_repo / ".gitignore").write_text("*.log\n")
    write_script(git_repo, "race", counting(counter, "exit 1"))
    run_pytest(f"--hypotheses={git_repo}", REUSE)
    (git_repo / "build.log").write_text("ignored\n")
    run_pytest(f"--hypotheses={git_repo}", REUSE)
    assert runs_of(counter) == 1

    (git_repo / "input.txt").write_text("new\n")
    run_pytest(f"--hypotheses={git_repo}", REUSE)

    assert runs_of(counter) == 2


def test_a_venv_made_in_the_worktree_runs_again_though_git_ignores_it(stored: Stored) -> None:
    """The scripts run with the worktree's own .venv once it has one: other code is tested."""
    (stored.repo / ".git" / "info" / "exclude").write_text(".venv/\n")
    venv = [sys.executable, "-m", "venv", "--without-pip", str(stored.repo / ".venv")]
    subprocess.run(venv, check=True)

    stored.again()

    assert stored.runs == 2


def test_a_verdict_reached_with_the_venv_its_setup_step_made_is_reused(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """The .venv is made by the first session's setup step, after the key was computed."""
    counter = tmp_path / "runs"
    (git_repo / ".git" / "info" / "exclude").write_text(".venv/\n")
    write_script(git_repo, "race", counting(counter, "exit 1"))
    setup = f"--hypotheses-setup={sys.executable} -m venv --without-pip .venv"

    for _ in range(2):
        run_pytest(f"--hypotheses={git_repo}", REUSE, setup)

    assert runs_of(counter) == 1


def test_a_venv_that_git_does_not_ignore_leaves_the_key_as_it_was(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """simplejson does not ignore ``.venv``: the worktree's own venv, with the bytecode Python
    writes into it as the scripts run, was part of the key, which changed at every run."""
    counter = tmp_path / "runs"
    written = "date +%s%N > .venv/written-as-it-ran"
    write_script(git_repo, "race", counting(counter, f"{written}\nexit 1"))
    setup = f"--hypotheses-setup={sys.executable} -m venv --without-pip .venv"

    for _ in range(3):
        run_pytest(f"--hypotheses={git_repo}", REUSE, setup)

    assert runs_of(counter) == 1


def test_a_changed_setup_step_of_another_hypothesis_runs_again(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: Callable[[Path, str, object], Path],
    tmp_path: Path,
) -> None:
    """Another hypothesis's step runs before this script, and changes what it tests."""
    counter = tmp_path / "runs"
    with (git_repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("made\n")  # else the file the step made is a change of content
    write_script(git_repo, "plain", counting(counter, "grep -q v1 made"))
    write_script(git_repo, "declares", "exit 0")
    write_metadata(git_repo, "declares", {"setup": "echo v1 > made"})
    run_pytest(f"--hypotheses={git_repo}", REUSE)
    write_metadata(git_repo, "declares", {"setup": "echo v2 > made"})

    result = run_pytest(f"--hypotheses={git_repo}", REUSE)

    assert runs_of(counter) == 2
    result.assert_outcomes(passed=1, failed=1)


def test_a_new_commit_runs_again(stored: Stored) -> None:
    (stored.repo / "README").write_text("fixed\n")
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    run_git([*identity, "commit", "-q", "-am", "fix"], stored.repo)

    stored.again()

    assert stored.runs == 2


def test_a_changed_timeout_runs_again(stored: Stored) -> None:
    stored.again("--hypotheses-timeout=77")

    assert stored.runs == 2


def test_a_memory_limit_runs_again(stored: Stored) -> None:
    stored.again("--hypotheses-memory=1G")

    assert stored.runs == 2


@pytest.mark.parametrize("body", ["exit 125", "exit 126", "sleep 30"])
def test_an_inconclusive_result_is_never_reused(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path, body: str
) -> None:
    counter = tmp_path / "runs"
    write_script(git_repo, "race", counting(counter, body))

    for _ in range(2):
        run_pytest(f"--hypotheses={git_repo}", REUSE, "--hypotheses-timeout=0.5")

    assert runs_of(counter) == 2


def test_metadata_cache_false_opts_out(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    write_script(git_repo, "clock", counting(counter, "exit 0"))
    (git_repo / ".falsification" / "config_clock.json").write_text('{"cache": false}')

    for _ in range(2):
        run_pytest(f"--hypotheses={git_repo}", REUSE)

    assert runs_of(counter) == 2


def test_a_cache_value_that_is_not_a_boolean_is_that_hypothesis_s_error(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "clock", "exit 0")
    (git_repo / ".falsification" / "config_clock.json").write_text('{"cache": "no"}')

    result = run_pytest(f"--hypotheses={git_repo}", REUSE)

    result.stdout.fnmatch_lines(["*'cache' must be true or false, got 'no'*"])


def test_the_reports_mark_a_reused_verdict_with_its_original_date(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path, report: Path
) -> None:
    write_script(git_repo, "race", "exit 1")
    first = report_of(run_pytest, git_repo, report)["race"]
    xml = tmp_path / "junit.xml"

    second = report_of(run_pytest, git_repo, report, f"--junitxml={xml}")["race"]

    assert (first["cached"], second["cached"]) == (False, True)
    assert second["status"] == "supported"
    (case,) = ET.parse(xml).iter("testcase")
    properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    assert properties["cached"] == second["cached_at"]


def test_a_stored_verdict_keeps_the_attempt_that_did_not_count() -> None:
    """A pass after a failure short of CPUs: reused without it, it would read as one clean
    run again."""
    failed = TestExecutionResult("h", TestResult.FAIL, 3.5, exit_code=1, worktree_path="/w")
    passed = TestExecutionResult("h", TestResult.PASS, 1.2, worktree_path="/w")
    result = TestExecutionResult.from_attempts([passed])
    result.not_counted = [failed]

    stored = result_of(entry_of(result, "2026-12-05T05:00:00+00:00"), "/w")

    assert stored is not None
    assert [(a.result, a.duration) for a in stored.not_counted] == [(TestResult.FAIL, 3.5)]


def test_a_reused_verdict_keeps_what_its_script_printed_and_the_code_it_tested(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, report: Path
) -> None:
    write_script(git_repo, "race", "echo seen on stdout; echo seen on stderr >&2; exit 1")
    first = report_of(run_pytest, git_repo, report)["race"]

    second = report_of(run_pytest, git_repo, report)["race"]

    assert second["cached"]
    kept = ("stdout", "stderr", "stdout_bytes", "code_under_test")
    assert {name: second[name] for name in kept} == {name: first[name] for name in kept}
    assert second["stdout"] == "seen on stdout\n"


def test_with_repeat_auto_stored_runs_count_and_new_runs_add_to_them(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path, report: Path
) -> None:
    counter = tmp_path / "counter"
    write_script(
        git_repo,
        "flaky",
        f"n=$(cat '{counter}' 2>/dev/null || echo 0); echo $((n + 1)) > '{counter}'; "
        "exit $((n % 2))",
    )
    auto = ("--hypotheses-repeat=auto", "--hypotheses-max-repeats=20")
    first = report_of(run_pytest, git_repo, report, *auto)["flaky"]
    assert (first["evidence"]["runs"], first["evidence"]["decision"]) == (20, "undecided")

    second = report_of(run_pytest, git_repo, report, *auto)["flaky"]

    assert second["evidence"]["runs"] == 20 + len(second["attempts"])
    assert second["evidence"]["decision"] == "flaky"


def test_a_corrupt_entry_is_ignored_with_a_warning(
    stored: Stored, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    folder = store_folder(stored.repo)
    assert folder is not None
    for entry in folder.glob("*.json"):
        entry.write_text('{"format": 1, "key": "trunc')

    result = pytester.runpytest_subprocess(
        f"--rootdir={tmp_path}", "-p", "no:asyncio", f"--hypotheses={stored.repo}", REUSE
    )

    assert stored.runs == 2
    output = result.stdout.str() + result.stderr.str()
    assert "ignoring verdict cache entry" in output
    result.assert_outcomes(failed=1)


def test_an_entry_of_another_key_is_never_reused(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path / "store")
    store.save("a" * 64, {"recorded_at": "then", "result": {}})
    (tmp_path / "store" / ("a" * 64 + ".json")).rename(tmp_path / "store" / ("b" * 64 + ".json"))

    with pytest.warns(UserWarning, match="belongs to another key"):
        assert store.load("b" * 64) is None


WRITER = """
import sys
from pathlib import Path
from pytest_parallel_hypotheses.finding.cache import VerdictStore
store = VerdictStore(Path(sys.argv[1]))
big = "x" * 200_000
n = 0
while True:
    store.save(f"{n % 5:064d}", {"recorded_at": "now", "result": {"n": n, "big": big}})
    n += 1
"""


def test_no_entry_is_corrupt_after_a_writer_is_killed_with_sigkill(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder)]) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while len(list(folder.glob("*.json"))) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        for writer in writers:
            writer.send_signal(signal.SIGKILL)
            writer.wait()

    store = VerdictStore(folder)
    entries = [store.load(f"{n:064d}") for n in range(5)]
    assert all(entry is not None and len(entry["result"]["big"]) == 200_000 for entry in entries)


def test_the_cache_clear_command_empties_the_store(
    stored: Stored, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["cache", "clear", str(stored.repo)]) == 0

    assert "removed 1 stored verdict from" in capsys.readouterr().out
    stored.again()
    assert stored.runs == 2


def test_pytest_cache_clear_empties_the_store(stored: Stored) -> None:
    stored.again("--cache-clear")

    assert stored.runs == 2


def test_the_store_of_a_worktree_is_found_once_not_for_each_of_its_hypotheses(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finding it runs git: asked for each of 1,000 hypotheses of one worktree, that took 3 s."""
    for index in range(4):
        write_script(git_repo, f"h{index}", "exit 0")
    calls = tmp_path / "git-calls"
    noting = tmp_path / "bin" / "git"
    noting.parent.mkdir()
    noting.write_text(f"#!/bin/sh\necho \"$*\" >> '{calls}'\nexec '{shutil.which('git')}' \"$@\"\n")
    noting.chmod(0o755)
    monkeypatch.setenv("PATH", f"{noting.parent}{os.pathsep}{os.environ['PATH']}")

    run_pytest(f"--hypotheses={git_repo}", REUSE).assert_outcomes(passed=4)

    assert calls.read_text().splitlines().count("rev-parse --git-common-dir") == 1


def test_a_worktree_of_the_repository_shares_the_store(
    git_repo: Path, make_worktree: MakeWorktree
) -> None:
    assert store_folder(make_worktree("other")) == store_folder(git_repo)


def test_xdist_workers_reuse_and_store_verdicts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        write_script(git_repo, name, counting(tmp_path / name, "exit 0"))
    run_pytest(f"--hypotheses={git_repo}", REUSE, "-n", "2")

    result = run_pytest(f"--hypotheses={git_repo}", REUSE, "-n", "2")

    assert (runs_of(tmp_path / "one"), runs_of(tmp_path / "two")) == (1, 1)
    result.stdout.fnmatch_lines(["one *FALSIFIED*cached*", "two *FALSIFIED*cached*"])


@pytest.mark.parametrize(("exit_status", "verdict"), [(0, "supported"), (1, "falsified")])
def test_a_reused_verdict_of_a_confirming_script_keeps_its_polarity(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    report: Path,
    exit_status: int,
    verdict: str,
) -> None:
    write_script(git_repo, "fix", f"exit {exit_status}")
    (git_repo / ".falsification" / "config_fix.json").write_text('{"polarity": "confirm"}')
    first = report_of(run_pytest, git_repo, report)["fix"]

    second = report_of(run_pytest, git_repo, report)["fix"]

    assert (first["status"], first["cached"]) == (verdict, False)
    assert (second["status"], second["cached"], second["polarity"]) == (verdict, True, "confirm")
