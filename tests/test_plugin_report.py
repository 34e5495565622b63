"""What a hypotheses run reports: the terminal summary, JUnit properties and the JSON report."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from pytest_parallel_hypotheses.engine.events import about
from pytest_parallel_hypotheses.engine.machine import total_memory
from pytest_parallel_hypotheses.finding.atomic import writes_through
from pytest_parallel_hypotheses.plugin.runnerwarnings import RunnerWarnings
from pytest_parallel_hypotheses.report.conclusions import counts_line, next_action
from tests.conftest import PLUGINS_OFF

RunPytest = Callable[..., pytest.RunResult]

WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]


def head_of(worktree: Path) -> str:
    completed = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=worktree, capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def test_the_summary_has_one_row_per_hypothesis(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 2")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        [
            "*= hypotheses =*",
            "id *worktree (branch) *verdict *result *exit *duration *confidence",
            "cache *worktrees/one (hyp-one) *FALSIFIED *pass *0 *s *0.60",
            "race *worktrees/two (hyp-two) *SUPPORTED *fail *2 *s *0.60",
        ]
    )


def test_the_summary_counts_the_verdicts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "a", "exit 0")
    write_script(git_repo, "b", "exit 0")
    write_script(git_repo, "c", "exit 1")
    write_script(git_repo, "d", "exit 125")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["verdicts: 2 falsified, 1 supported, 1 inconclusive"])


def test_with_none_supported_the_next_action_is_new_hypotheses(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "a", "exit 0")
    write_script(git_repo, "b", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["next: No hypothesis is supported: generate new hypotheses."])


def test_with_none_supported_and_some_inconclusive_the_next_action_is_to_decide_those(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "a", "exit 0")
    write_script(git_repo, "b", "exit 125")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        ["next: No hypothesis is supported, but 1 reached no verdict (b): fix what stopped *"]
    )


def test_with_one_supported_the_next_action_is_to_focus_on_it(
    run_pytest: RunPytest, git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(
        ["next: Exactly one hypothesis is supported (race on branch hyp-two): focus the fix*"]
    )


def test_with_several_supported_the_next_action_is_to_refine_them(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 1")
    write_script(git_repo, "race", "exit 1")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["next: 2 hypotheses are supported (cache, race): refine them*"])


def test_a_verdict_beside_hypotheses_that_reached_none_is_no_conclusion_yet() -> None:
    """A wrong fix that could not be tested beside the real one: merging the one confirmed
    is only the conclusion once the other has a verdict too."""
    records = [
        {**record("fix", "supported"), "polarity": "confirm", "branch": "hyp-fix"},
        record("other-fix", "inconclusive"),
    ]

    assert next_action(records) == (
        "A fix is confirmed (fix on branch hyp-fix): review that branch and merge it. "
        "(1 reached no verdict (other-fix): fix what stopped it before concluding.)"
    )


def test_fixes_confirmed_on_one_branch_name_it_once() -> None:
    fixes = [
        {**record(name, "supported"), "polarity": "confirm", "branch": "hyp-real-fix"}
        for name in ("fix-direct", "real-fix")
    ]

    assert next_action(fixes) == (
        "2 fixes are confirmed (fix-direct, real-fix on branch hyp-real-fix): review that "
        "branch and merge it."
    )


def test_the_summary_tells_the_runners_warnings_once(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """A floor at the machine's whole memory is above the free memory: the scripts wait for
    memory one at a time, which the summary then says (once, however many waited)."""
    for hypothesis_id in ("a", "b", "c"):
        write_script(git_repo, hypothesis_id, "exit 0")
    total = total_memory()
    assert total is not None  # /proc/meminfo, on the systems the tests run on

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-memfree={total}")

    result.assert_outcomes(passed=3)
    warnings = [line for line in result.outlines if line.startswith("warning: free memory")]
    assert len(warnings) == 1, result.outlines
    assert "is below the floor of" in warnings[0]
    assert "one always runs" in warnings[0]


def test_the_summary_leaves_to_the_results_what_they_say(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "locked", "exit 0", executable=False)

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["*locked*INCONCLUSIVE*"])
    result.stdout.no_fnmatch_line("warning: *not executable*")


def record(hypothesis_id: str, status: str, error_message: str = "") -> Dict[str, Any]:
    return {"hypothesis_id": hypothesis_id, "status": status, "error_message": error_message}


CUT = "stopped because the run was interrupted"


@pytest.mark.parametrize(
    ("records", "counts", "action"),
    [
        (
            [record("a", "falsified"), record("b", "pending"), record("c", "pending")],
            "1 falsified, 0 supported, 0 inconclusive, 2 not run",
            "No hypothesis that finished is supported, but 2 did not run: run them before "
            "generating new ones.",
        ),
        (
            [record("a", "pending", CUT), record("b", "pending"), record("c", "pending")],
            "0 falsified, 0 supported, 0 inconclusive, 1 cut short, 2 not run",
            "No hypothesis reached a verdict (1 was cut short and 2 did not run): run them first.",
        ),
        (
            [record("a", "inconclusive"), record("b", "pending", CUT)],
            "0 falsified, 0 supported, 1 inconclusive, 1 cut short",
            "No hypothesis is supported, but 1 reached no verdict (a): fix what stopped it (its "
            "error says) and run it again before generating new ones. (1 was cut short: run it "
            "too.)",
        ),
    ],
)
def test_the_counts_and_the_next_action_tell_what_a_stop_left_undone(
    records: List[Dict[str, Any]], counts: str, action: str
) -> None:
    assert counts_line(records) == counts
    assert next_action(records) == action


@pytest.fixture
def runner_warnings() -> Iterator[RunnerWarnings]:
    handler = RunnerWarnings()
    yield handler
    handler.stop()


def test_a_warning_logged_for_every_script_is_told_once_with_a_count(
    runner_warnings: RunnerWarnings,
) -> None:
    logger = logging.getLogger("pytest_parallel_hypotheses.engine.spill")
    for n in range(200):
        logger.warning("output no longer written to %s: disk full", f"h{n}.out")

    assert runner_warnings.messages() == [
        "output no longer written to h0.out: disk full (and 199 more like it)"
    ]


def test_a_warning_about_each_hypothesis_names_them_ten_at_most(
    runner_warnings: RunnerWarnings,
) -> None:
    """A trial's summary hid, behind "and 1 more like it", the hypothesis whose failure did
    not count."""
    logger = logging.getLogger("pytest_parallel_hypotheses.engine.stream")
    for n in range(20):
        logger.warning("a script failed (%s)", f"h{n}", extra=about(f"h{n}"))

    named = ", ".join(f"h{n}" for n in range(1, 11))
    assert runner_warnings.messages() == [
        f"a script failed (h0) (and 19 more like it: {named} and 9 more)"
    ]


def test_a_malformed_warning_does_not_fail_the_code_that_logged_it(
    runner_warnings: RunnerWarnings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # no traceback on stderr

    logging.getLogger("pytest_parallel_hypotheses.engine").warning("%d scripts", "two")

    assert runner_warnings.messages() == []


def test_junit_xml_carries_verdict_result_confidence_and_polarity(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    write_script(git_repo, "race", "exit 1")
    xml = tmp_path / "junit.xml"

    run_pytest(f"--hypotheses={git_repo}", f"--junitxml={xml}")

    properties = {
        case.get("name"): {prop.get("name"): prop.get("value") for prop in case.iter("property")}
        for case in ET.parse(xml).iter("testcase")
    }
    one_run = "one run says nothing about flakiness"
    assert properties == {
        "cache": {
            "verdict": "falsified",
            "result": "pass",
            "confidence": "0.6",
            "polarity": "disprove",
            "evidence": one_run,
        },
        "race": {
            "verdict": "supported",
            "result": "fail",
            "confidence": "0.6",
            "polarity": "disprove",
            "evidence": one_run,
        },
    }


def run_with_report(
    run_pytest: RunPytest, git_repo: Path, report: Path, *args: str
) -> Dict[str, Any]:
    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}", *args)
    data: Dict[str, Any] = json.loads(report.read_text())
    return data


def test_the_json_report_has_a_schema_version_and_run_metadata(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 1")

    data = run_with_report(run_pytest, git_repo, tmp_path / "report.json")

    assert data["schema_version"] == 1
    assert data["run"]["exit_status"] == pytest.ExitCode.TESTS_FAILED
    assert data["run"]["interrupted"] is False
    assert data["run"]["directory"] == str(git_repo)
    assert data["run"]["duration"] > 0
    assert data["counts"] == {"falsified": 0, "supported": 1, "inconclusive": 0, "pending": 0}
    assert data["next_action"].startswith("Exactly one hypothesis is supported")


def test_the_json_report_has_every_result_field_branch_and_head(
    run_pytest: RunPytest,
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    worktree = make_worktree("one")
    write_script(worktree, "cache", "echo out; echo err >&2; exit 3")
    (worktree / ".falsification" / "config_cache.json").write_text(
        '{"description": "stale cache", "timeout": 30}'
    )

    (record,) = run_with_report(run_pytest, git_repo, tmp_path / "report.json")["hypotheses"]

    assert record["nodeid"] == "worktrees/one::cache"
    assert record["hypothesis_id"] == "cache"
    assert record["worktree_path"] == str(worktree)
    assert record["branch"] == "hyp-one"
    assert record["head"] == head_of(worktree)
    assert record["hypothesis"]["description"] == "stale cache"
    hypothesis = record["hypothesis"]
    assert (hypothesis["status"], hypothesis["confidence_score"]) == ("supported", 0.6)
    assert record["timeout"] == 30
    assert record["result"] == "fail"
    assert record["status"] == "supported"
    assert record["exit_code"] == 3
    assert record["stdout"] == "out\n"
    assert record["stderr"] == "err\n"
    assert record["stdout_bytes"] == 4
    assert record["stderr_truncated"] is False
    assert record["confidence"] == record["metrics"]["confidence"] == 0.6
    assert record["duration"] >= 0
    assert record["error_message"] == ""


@pytest.mark.parametrize(
    ("option", "stopped"), [("--hypotheses-stop-on=supported", True), ("", False)]
)
def test_the_json_report_says_a_stop_condition_ended_the_run_early(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    option: str,
    stopped: bool,
) -> None:
    write_script(git_repo, "fails", "exit 1")
    write_script(git_repo, "sleeps", "sleep 1")

    data = run_with_report(run_pytest, git_repo, tmp_path / "report.json", *filter(None, [option]))

    assert data["run"]["stopped_early"] is stopped
    assert data["run"]["interrupted"] is False


def test_a_script_a_stop_cut_short_has_its_bar_on_the_timeline(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "fails", "sleep 0.3; exit 1")
    write_script(git_repo, "sleeps", "sleep 30")

    data = run_with_report(
        run_pytest, git_repo, tmp_path / "report.json", "--hypotheses-stop-on=supported"
    )

    records = {record["hypothesis_id"]: record for record in data["hypotheses"]}
    [bar] = records["sleeps"]["timeline"]
    assert bar["result"] == "cut short"
    assert bar["end"] > bar["start"]


def test_the_json_report_lists_hypotheses_that_did_not_run_as_pending(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> None:
    write_script(git_repo, "fails", "exit 1")
    write_script(git_repo, "sleeps", f"sleep {sleep_token}")

    data = run_with_report(run_pytest, git_repo, tmp_path / "report.json", "-x")

    assert data["run"]["stopped_early"] is True
    statuses = {record["hypothesis_id"]: record["status"] for record in data["hypotheses"]}
    assert statuses == {"fails": "supported", "sleeps": "pending"}


def test_the_json_report_replaces_the_old_one_and_leaves_no_temporary_file(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.json").write_text("old")

    data = run_with_report(run_pytest, git_repo, reports / "report.json")

    assert data["counts"]["falsified"] == 1
    assert sorted(path.name for path in reports.iterdir()) == ["report.json", "report.json.output"]


def test_the_json_report_folder_is_created(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")

    data = run_with_report(run_pytest, git_repo, tmp_path / "new" / "folder" / "report.json")

    assert len(data["hypotheses"]) == 1


def test_the_ini_report_path_is_relative_to_the_ini_file(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")
    pytester.makeini("[pytest]\nhypotheses_report = out/report.json\n")

    run_pytest(f"--hypotheses={git_repo}")

    assert json.loads((pytester.path / "out" / "report.json").read_text())["hypotheses"]


def test_the_summary_names_the_report_without_dot_dot(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")
    (pytester.path / "sub").mkdir()

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-report=sub/../report.json")

    result.stdout.fnmatch_lines([f"hypotheses report: {pytester.path / 'report.json'}"])


def test_a_report_path_from_the_home_folder_is_written_there(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(git_repo, "cache", "exit 0")
    monkeypatch.setenv("HOME", str(tmp_path))

    run_pytest(f"--hypotheses={git_repo}", "--hypotheses-report=~/report.json")

    assert json.loads((tmp_path / "report.json").read_text())["hypotheses"]


def test_a_usage_error_writes_no_json_report(run_pytest: RunPytest, tmp_path: Path) -> None:
    report = tmp_path / "report.json"

    result = run_pytest(f"--hypotheses={tmp_path / 'missing'}", f"--hypotheses-report={report}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not report.exists()


def test_with_nothing_found_the_json_report_says_to_write_scripts(
    run_pytest: RunPytest, git_repo: Path, tmp_path: Path
) -> None:
    data = run_with_report(run_pytest, git_repo, tmp_path / "report.json")

    assert data["hypotheses"] == []
    assert data["next_action"].startswith("No hypothesis was found: write scripts named")


def test_junit_classname_of_a_worktree_beside_the_rootdir_has_no_leading_dots(
    pytester: pytest.Pytester,
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(git_repo, "race", "exit 1")
    xml = tmp_path / "junit.xml"

    pytester.runpytest(
        f"--rootdir={git_repo}",
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:asyncio",
        f"--hypotheses={git_repo}",
        f"--junitxml={xml}",
    )

    classnames = {
        case.get("name"): case.get("classname") for case in ET.parse(xml).iter("testcase")
    }
    assert classnames == {"cache": "worktrees.one", "race": "repo"}


def test_a_worktree_whose_branch_was_deleted_is_named_so_in_the_summary_and_report(
    run_pytest: RunPytest,
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    write_script(make_worktree("orphan"), "cache", "exit 1")
    subprocess.run(["git", "update-ref", "-d", "refs/heads/hyp-orphan"], cwd=git_repo, check=True)
    report = tmp_path / "report.json"

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    result.stdout.fnmatch_lines(
        [
            "*worktrees/orphan (branch hyp-orphan gone, no commit)*",
            "cache *worktrees/orphan (hyp-orphan, branch gone) *SUPPORTED *",
        ]
    )
    (record,) = json.loads(report.read_text())["hypotheses"]
    assert (record["branch"], record["branch_gone"], record["head"]) == ("hyp-orphan", True, None)


def test_a_report_that_cannot_be_written_at_the_end_fails_the_run_after_the_verdicts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    write_script(git_repo, "cache", f"rm -r {folder} && touch {folder}")

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={folder}/report.json")

    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        ["cache *FALSIFIED *pass *0 *", f"hypotheses report NOT written to {folder}/report.json: *"]
    )


def test_a_report_to_a_fifo_is_written_through_it_and_leaves_it_a_fifo(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """A fault campaign's ``--hypotheses-report=/dev/full``, run as root, turned the device
    into a plain file and made ``/dev/full.output``; a FIFO's reader got nothing."""
    write_script(git_repo, "cache", "exit 0")
    fifo = tmp_path / "out" / "report.pipe"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    read: List[str] = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_text()), daemon=True)
    reader.start()

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={fifo}")
    reader.join(timeout=60)

    assert json.loads(read[0])["counts"]["falsified"] == 1
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [path.name for path in fifo.parent.iterdir()] == ["report.pipe"]  # no .output


def test_a_report_through_a_symlink_replaces_its_target_and_keeps_the_link(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    target = tmp_path / "kept" / "report.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "report.json"
    link.symlink_to(target)

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={link}")

    assert link.is_symlink()
    assert json.loads(target.read_text())["counts"]["falsified"] == 1


def test_an_event_log_that_cannot_be_opened_is_named_below_the_verdicts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """``/proc/x`` passes the checks as root, and cannot be created: a fault campaign missed
    its warning above the verdicts. (Any other user may not write to ``/proc``: a usage
    error, tested with the other checks.)"""
    if os.geteuid() != 0:
        pytest.skip("only root may write to /proc's folder")
    write_script(git_repo, "cache", "exit 0")
    events = Path("/proc/x")

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-events={events}")

    result.assert_outcomes(passed=1)
    warning = f"WARNING: hypotheses events NOT written to {events}: *"
    result.stdout.fnmatch_lines(["cache *FALSIFIED *", "verdicts: *", warning])


def test_an_event_log_to_dev_stdout_shares_the_file_pytest_prints_to(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Opened afresh, ``/dev/stdout`` on ``> out.txt`` was truncated, and pytest's output and
    the events overwrote each other from the file's start."""
    write_script(git_repo, "cache", "exit 0")
    out = tmp_path / "out.txt"
    command = [sys.executable, "-m", "pytest", f"--rootdir={tmp_path}", *PLUGINS_OFF]
    command += [f"--hypotheses={git_repo}", "--hypotheses-events=/dev/fd/1"]
    with open(out, "wb") as into:
        run = subprocess.run(command, stdout=into, timeout=120, check=False)
    printed = out.read_text()

    assert run.returncode == 0, printed
    lines = [line[line.index('{"schema') :] for line in printed.splitlines() if '{"schema' in line]
    events = [json.loads(line) for line in lines]  # some follow pytest's progress on its line
    assert "hypothesis_finished" in [event["type"] for event in events]
    assert printed.startswith("=")  # nothing pytest printed was lost
    assert "verdicts: 1 falsified" in printed


@pytest.mark.parametrize("stdout", ["pipe", "file"])
def test_a_report_to_dev_stdout_follows_what_pytest_printed(
    git_repo: Path, write_script: WriteScript, tmp_path: Path, stdout: str
) -> None:
    """``/dev/stdout`` on a pipe resolves to no file's path, and on a file (``> out.txt``)
    replacing it lost what pytest had printed: the report is written where the process
    writes already. (``/dev/fd/1`` here: run as root, the old code replaced ``/dev/stdout``
    itself, which a failure of this test must not do.)"""
    write_script(git_repo, "cache", "exit 0")
    out = tmp_path / "out.txt"
    command = [sys.executable, "-m", "pytest", f"--rootdir={tmp_path}", *PLUGINS_OFF]
    command += [f"--hypotheses={git_repo}", "--hypotheses-report=/dev/fd/1"]
    with open(out, "wb") as into:
        target = subprocess.PIPE if stdout == "pipe" else into
        run = subprocess.run(command, stdout=target, timeout=120, check=False)
    printed = run.stdout.decode() if stdout == "pipe" else out.read_text()

    assert run.returncode == 0, printed
    report, _end = json.JSONDecoder().raw_decode(printed, printed.index('{\n  "schema_version"'))
    assert report["counts"]["falsified"] == 1
    assert printed.startswith("=")  # nothing pytest printed was lost
    assert "verdicts: 1 falsified" in printed


@pytest.mark.parametrize("path", ["/dev/stdout", "/dev/stderr", "/proc/self/fd/3", "/dev/null"])
def test_the_process_s_own_files_and_devices_are_written_through(path: str) -> None:
    assert writes_through(Path(path))


def test_a_regular_file_and_a_missing_one_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("old")
    assert not writes_through(tmp_path / "report.json")
    assert not writes_through(tmp_path / "missing.json")


def test_every_report_may_go_to_dev_null(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    null = "/dev/null"

    result = run_pytest(
        f"--hypotheses={git_repo}",
        f"--hypotheses-report={null}",
        f"--hypotheses-html={null}",
        f"--junitxml={null}",
    )

    result.assert_outcomes(passed=1)
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert not Path(f"{null}.output").exists()


@pytest.mark.parametrize("option", ["--hypotheses-report", "--hypotheses-events"])
def test_a_device_is_a_report_path_for_a_user_who_may_not_write_to_its_folder(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
) -> None:
    """No user but root may write to ``/dev``, and ``/dev/null`` was refused to every other;
    root passes every permission check, so ``/dev`` is refused here as it is to them."""
    write_script(git_repo, "cache", "exit 0")
    access = os.access

    def as_another_user(path: object, mode: int) -> bool:
        return Path(os.fspath(path)) != Path("/dev") and access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", as_another_user)

    result = run_pytest(f"--hypotheses={git_repo}", f"{option}=/dev/null")

    result.assert_outcomes(passed=1)


def test_each_attempt_and_setup_step_reaches_a_log_file(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Kept out of pytest's captured log, they were lost to ``--log-file`` and the live log
    too, where a user follows a run (a review caught it before it shipped)."""
    write_script(git_repo, "h1", "exit 1")
    (git_repo / ".falsification" / "config_h1.json").write_text('{"setup": "true"}')
    log = tmp_path / "run.log"

    run_pytest(f"--hypotheses={git_repo}", f"--log-file={log}", "--log-file-level=INFO")

    text = log.read_text()
    assert "setting up " in text
    assert "h1 (attempt 1): fail (exit 1" in text
