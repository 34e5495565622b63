"""Watching a run through the plugin: the event stream, the heartbeat, the timeout snapshot in
the reports, the output of scripts cut short, and bad paths."""

from __future__ import annotations

import json
import queue
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from tests.conftest import PLUGINS_OFF, started_pytest

WriteScript = Callable[..., Path]
RunPytest = Callable[..., pytest.RunResult]

#: Generous bound for anything that should take seconds: catches hangs, not slowness.
HANG_SECONDS = 120


def read_events(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def finished_ids(path: Path) -> List[str]:
    if not path.exists():
        return []
    return [
        event["record"]["hypothesis_id"]
        for event in read_events(path)
        if event["type"] == "hypothesis_finished"
    ]


def run_with_events(run_pytest: RunPytest, repo: Path, events: Path, *args: str) -> None:
    """A run of the hypotheses of ``repo`` that writes its events to ``events``."""
    run_pytest(f"--hypotheses={repo}", f"--hypotheses-events={events}", *args)


def test_the_event_stream_tells_the_run_from_start_to_finish(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "a", "exit 0")
    events = tmp_path / "events.jsonl"

    run_with_events(run_pytest, git_repo, events)

    types = [event["type"] for event in read_events(events)]
    assert types == [
        "run_started",
        "hypothesis_started",
        "attempt_finished",
        "hypothesis_finished",
        "run_finished",
    ]


def test_a_hypothesis_whose_worktree_was_set_up_waits_again_until_its_script_starts(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Under ``auto`` the script may wait for the CPUs after its step: the status said
    ``(setup)`` all that time."""
    write_script(git_repo, "a", "exit 0")
    events = tmp_path / "events.jsonl"

    run_with_events(run_pytest, git_repo, events, "--hypotheses-setup=true")

    types = [event["type"] for event in read_events(events)]
    assert types[1:4] == ["setup_started", "setup_finished", "hypothesis_started"]


def test_every_event_has_its_schema_version_a_utc_time_and_a_growing_offset(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "a", "exit 0")
    write_script(git_repo, "b", "exit 1")
    events = tmp_path / "events.jsonl"

    run_with_events(run_pytest, git_repo, events)

    stream = read_events(events)
    assert {event["schema_version"] for event in stream} == {1}
    for event in stream:
        assert datetime.fromisoformat(event["time"]).utcoffset() == timezone.utc.utcoffset(None)
    offsets = [event["offset"] for event in stream]
    assert offsets == sorted(offsets)
    assert offsets[0] >= 0


def test_a_finished_hypothesis_event_holds_the_record_of_the_json_report(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "a", "echo hello; exit 1")
    events, report = tmp_path / "events.jsonl", tmp_path / "report.json"

    run_with_events(run_pytest, git_repo, events, f"--hypotheses-report={report}")

    [finished] = [e for e in read_events(events) if e["type"] == "hypothesis_finished"]
    [record] = json.loads(report.read_text())["hypotheses"]
    assert finished["record"] == record
    assert record["stdout"] == "hello\n"


def test_the_run_finished_event_counts_the_verdicts_and_says_what_next(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "a", "exit 1")
    events = tmp_path / "events.jsonl"

    run_with_events(run_pytest, git_repo, events)

    last = read_events(events)[-1]
    assert last["counts"] == {"falsified": 0, "supported": 1, "inconclusive": 0, "pending": 0}
    assert last["next_action"].startswith("Exactly one hypothesis is supported")
    assert (last["interrupted"], last["exit_status"]) == (False, 1)


def test_a_reader_following_the_stream_sees_a_hypothesis_as_soon_as_it_finishes(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    write_script(git_repo, "first", "exit 0")
    write_script(git_repo, "second", f"while [ ! -e {go} ]; do sleep 0.05; done; exit 1")
    events = tmp_path / "events.jsonl"
    process = started_pytest(
        pytester, tmp_path, f"--hypotheses={git_repo}", f"--hypotheses-events={events}"
    )
    try:
        wait_until(lambda: finished_ids(events) == ["first"])  # second waits for us
        go.touch()
    finally:
        output = process.communicate(timeout=HANG_SECONDS)[0].decode()

    assert finished_ids(events) == ["first", "second"], output


def test_each_attempt_is_an_event_with_its_lane(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "a", "exit 0")
    events = tmp_path / "events.jsonl"

    run_with_events(run_pytest, git_repo, events, "--hypotheses-repeat=2")

    attempts = [
        (event["type"], event["attempt"], event["lane"])
        for event in read_events(events)
        if "attempt" in event
    ]
    assert attempts == [
        ("hypothesis_started", 1, "slot 1"),
        ("attempt_finished", 1, "slot 1"),
        ("attempt_started", 2, "slot 1"),
        ("attempt_finished", 2, "slot 1"),
    ]


def test_a_timeline_has_as_many_lanes_as_hypotheses_ran_at_once(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Under ``auto`` many workers wait and any may be let in next: each hypothesis used to
    get its own worker's lane, nine lanes for a run that never ran more than two at once."""
    busy = f'"{sys.executable}" -c "import time\nwhile time.process_time() < 0.4: pass"'
    for name in ("a", "b", "c", "d", "e", "f"):
        write_script(git_repo, name, busy)
    events = tmp_path / "events.jsonl"

    run_with_events(run_pytest, git_repo, events, "--hypotheses-workers=auto")

    lanes, running, most = set(), set(), 0
    for event in read_events(events):
        if event["type"] == "hypothesis_started":
            lanes.add(event["lane"])
            running.add(event["nodeid"])
            most = max(most, len(running))
        elif event["type"] == "attempt_finished":
            running.discard(event["nodeid"])
    assert sorted(lanes) == [f"slot {number}" for number in range(1, most + 1)]


def test_a_full_disk_is_one_warning_and_loses_no_verdict_or_report(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("needs a device that is always full")
    write_script(git_repo, "a", "exit 1")
    report = tmp_path / "report.json"

    result = run_pytest(
        f"--hypotheses={git_repo}",
        f"--hypotheses-events={full}",
        f"--hypotheses-report={report}",
        "-p",
        "no:cacheprovider",
    )

    result.assert_outcomes(failed=1)
    assert result.stdout.str().count("hypotheses events NOT fully written") == 1
    assert json.loads(report.read_text())["counts"]["supported"] == 1


@pytest.mark.parametrize("option", ["--hypotheses-events", "--hypotheses-html"])
def test_a_path_in_a_missing_folder_is_a_usage_error_before_anything_runs(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    option: str,
) -> None:
    ran = tmp_path / "ran"
    write_script(git_repo, "a", f"touch {ran}")

    result = run_pytest(f"--hypotheses={git_repo}", f"{option}={tmp_path}/missing/out")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}=*missing/out is not valid: its folder*does not exist"])
    assert not ran.exists()


@pytest.mark.parametrize("option", ["--hypotheses-events", "--hypotheses-html"])
def test_a_folder_as_the_path_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, tmp_path: Path, option: str
) -> None:
    result = run_pytest(f"--hypotheses={git_repo}", f"{option}={tmp_path}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}=* is not valid: expected the path of a file*"])


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--hypotheses-live=sometimes", "expected one of auto, on, off (got 'sometimes')"),
        ("--hypotheses-heartbeat=-1", "expected a number of seconds from 0 to 86400 (got '-1')"),
    ],
)
def test_a_bad_live_or_heartbeat_value_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, option: str, expected: str
) -> None:
    result = run_pytest(f"--hypotheses={git_repo}", option)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option} is not valid: {expected}"])


def test_a_verbose_verdict_reaches_a_log_as_soon_as_its_script_ends(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """pytest ends a verbose item's line when it writes the next item's: read line by line,
    as a CI log is, the first verdict came only once the second script ended."""
    go = tmp_path / "go"
    write_script(git_repo, "quick", "exit 0")
    write_script(git_repo, "slow", f"while [ ! -e {go} ]; do sleep 0.05; done; exit 1")
    process = started_pytest(
        pytester, tmp_path, "-v", f"--hypotheses={git_repo}", "--hypotheses-heartbeat=0"
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.decode()) for line in process.stdout])
    reader.start()
    try:
        seen = ""
        while "quick FALSIFIED" not in seen:
            seen = lines.get(timeout=HANG_SECONDS)
        go.touch()  # slow ends only now
    finally:
        go.touch()
        process.wait(timeout=HANG_SECONDS)
        reader.join()
        process.stdout.close()

    assert "slow SUPPORTED" in "".join(lines.queue)


def test_the_heartbeat_names_what_still_runs_in_a_log(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "slow", "sleep 1.5")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-heartbeat=0.2")

    result.stdout.fnmatch_lines(
        ["hypotheses still running: slow *s/5m00s (0 done, 1 running, 0 waiting)"]
    )


def test_a_heartbeat_due_while_an_item_is_reported_says_how_things_stand_after_it(
    pytester: pytest.Pytester, run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    # pytest's capture owns the output while it reports an item, so the heartbeat waits;
    # after the last item nothing runs any more, and no line claims otherwise
    pytester.makeconftest("import time\n\ndef pytest_runtest_call(item):\n    time.sleep(0.6)\n")
    write_script(git_repo, "quick", "exit 0")
    write_script(git_repo, "slow", "sleep 1.5")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-heartbeat=0.2")

    lines = result.stdout.lines
    [end] = [index for index, line in enumerate(lines) if line.endswith("[100%]")]
    assert re.search(r"\.\s+\[100%\]$", lines[end]), lines[: end + 1]


def test_a_heartbeat_of_0_writes_none(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "slow", "sleep 1")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-heartbeat=0")

    assert "still running" not in result.stdout.str()


def test_the_ini_file_sets_the_heartbeat(
    pytester: pytest.Pytester, run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    pytester.makeini("[pytest]\nhypotheses_heartbeat = 0.2\n")
    write_script(git_repo, "slow", "sleep 1.5")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["hypotheses still running: slow *"])


def test_a_timeout_names_the_stuck_command_and_the_report_keeps_the_snapshot(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> None:
    write_script(git_repo, "hang", f"echo waiting for the lock; sleep {sleep_token}")
    report = tmp_path / "report.json"

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-timeout=1", f"--hypotheses-report={report}"
    )

    result.stdout.fnmatch_lines([f"*timed out while running: `sleep {sleep_token}` (pid *"])
    [record] = json.loads(report.read_text())["hypotheses"]
    snapshot = record["timeout_snapshot"]
    assert snapshot["stdout_tail"] == ["waiting for the lock"]
    assert f"sleep {sleep_token}" in [process["command"] for process in snapshot["processes"]]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_script_keeps_its_output_and_elapsed_time(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
    signum: int,
) -> None:
    started = tmp_path / "started"
    write_script(git_repo, "slow", f"echo halfway; touch {started}; sleep {sleep_token}")
    report = tmp_path / "report.json"
    process = started_pytest(
        pytester, tmp_path, f"--hypotheses={git_repo}", f"--hypotheses-report={report}"
    )
    wait_until(started.exists)
    since = time.monotonic()
    output_files = report.parent / f"{report.name}.output"
    wait_until(lambda: any(b"halfway" in f.read_bytes() for f in output_files.glob("slow-*")))
    time.sleep(max(0.0, 0.3 - (time.monotonic() - since)))

    process.send_signal(signum)
    output = process.communicate(timeout=HANG_SECONDS)[0].decode()

    [record] = json.loads(report.read_text())["hypotheses"]
    assert record["stdout"] == "halfway\n", output
    assert record["duration"] >= 0.3
    assert record["status"] == "pending"
    assert record["error_message"] == "stopped because the run was interrupted"
    section = output.split("hypotheses cut short: what they had printed", 1)[1]
    assert "slow: stopped because the run was interrupted, after " in section
    assert "---------- stdout (all) ----------\nhalfway" in section


def test_a_hypothesis_interrupted_in_its_setup_step_is_cut_short_not_unrun(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> None:
    """Its work had begun: "not run" would deny it. The step's output is not the script's."""
    started = tmp_path / "started"
    write_script(git_repo, "prepared", "exit 0")
    report = tmp_path / "report.json"
    step = f"echo preparing; touch {started}; sleep {sleep_token}"
    process = started_pytest(
        pytester,
        tmp_path,
        f"--hypotheses={git_repo}",
        f"--hypotheses-setup={step}",
        f"--hypotheses-report={report}",
    )
    wait_until(started.exists)

    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=HANG_SECONDS)[0].decode()

    [record] = json.loads(report.read_text())["hypotheses"]
    assert record["status"] == "pending", output
    assert record["error_message"] == (
        "stopped because the run was interrupted while its worktree's setup step ran"
    )
    assert not record["stdout"]
    assert re.search(r"prepared +\S+ \(\S+\) +CUT SHORT ", output), output
    section = output[output.index("hypotheses cut short") :]
    assert "(its script had not started: it printed nothing)" in section, output
    assert "stdout" not in section, output


def test_with_every_script_cut_short_the_next_action_is_to_run_them(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Stopped before any script ended, the run reached no verdict: new hypotheses would be
    premature."""
    for hypothesis_id in ("a", "b"):
        write_script(git_repo, hypothesis_id, f"touch {tmp_path / hypothesis_id}; sleep 60")
    process = started_pytest(pytester, tmp_path, f"--hypotheses={git_repo}")
    wait_until(lambda: (tmp_path / "a").exists() and (tmp_path / "b").exists())

    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=HANG_SECONDS)[0].decode()

    assert "verdicts: 0 falsified, 0 supported, 0 inconclusive, 2 cut short" in output
    assert "next: No hypothesis reached a verdict (2 were cut short): run them first." in output


def test_a_script_stopped_by_x_keeps_its_output(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> None:
    started = tmp_path / "started"
    write_script(git_repo, "slow", f"echo halfway; touch {started}; sleep {sleep_token}")
    write_script(git_repo, "fails", f"while [ ! -e {started} ]; do sleep 0.05; done; exit 1")
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}", "-x")

    records = {r["hypothesis_id"]: r for r in json.loads(report.read_text())["hypotheses"]}
    assert records["slow"]["stdout"] == "halfway\n"
    assert "stopping after 1 failures" in records["slow"]["error_message"]


def test_a_script_cut_short_shows_so_in_the_summary_with_the_time_it_ran(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    write_script(git_repo, "slow", f"touch {started}; sleep 60")
    write_script(git_repo, "fails", f"while [ ! -e {started} ]; do sleep 0.05; done; exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", "-x")

    result.stdout.fnmatch_lines(["slow *CUT SHORT *disprove *-  *-  *[0-9].[0-9][0-9]s *"])


def test_under_xdist_the_controller_writes_one_stream(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    for name, status in (("a", 0), ("b", 1), ("c", 0)):
        write_script(git_repo, name, f"exit {status}")
    events = tmp_path / "events.jsonl"

    pytester.runpytest_subprocess(
        "-n",
        "2",
        f"--rootdir={tmp_path}",
        *PLUGINS_OFF,
        f"--hypotheses={git_repo}",
        f"--hypotheses-events={events}",
        timeout=HANG_SECONDS,
    )

    stream = read_events(events)
    types = [event["type"] for event in stream]
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    assert types.count("hypothesis_started") == 3
    assert sorted(finished_ids(events)) == ["a", "b", "c"]
    lanes = {
        e["record"]["timeline"][0]["lane"] for e in stream if e["type"] == "hypothesis_finished"
    }
    assert lanes <= {"gw0", "gw1"}


def test_the_heartbeat_names_a_hypothesis_whose_worktree_is_being_set_up(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "slow", "exit 0")

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-heartbeat=0.2", "--hypotheses-setup=sleep 1.5"
    )

    result.stdout.fnmatch_lines(
        ["hypotheses still running: slow (setup) *s/* (0 done, 1 running, 0 waiting)"]
    )
    result.assert_outcomes(passed=1)


def test_a_hypothesis_stopped_by_x_during_its_setup_step_keeps_no_output_of_the_step(
    run_pytest: RunPytest,
    git_repo: Path,
    make_worktree: Callable[[str], Path],
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> None:
    """The setup step's output is in the hypothesis's setup outcome, never its script's."""
    started = tmp_path / "started"
    slow = make_worktree("slow")
    (slow / ".slow").touch()
    write_script(slow, "cache", "exit 0")
    write_script(git_repo, "fails", f"while [ ! -e {started} ]; do sleep 0.05; done; exit 1")
    setup = f"if [ -e .slow ]; then echo installing; touch {started}; sleep {sleep_token}; fi"
    report = tmp_path / "report.json"

    run_pytest(
        f"--hypotheses={git_repo}",
        f"--hypotheses-report={report}",
        f"--hypotheses-setup={setup}",
        "--hypotheses-workers=2",
        "-x",
    )

    records = {r["hypothesis_id"]: r for r in json.loads(report.read_text())["hypotheses"]}
    assert records["fails"]["result"] == "fail"
    assert "installing" not in (records["cache"]["stdout"] or "")
