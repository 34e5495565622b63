"""``pytest -n`` with ``--hypotheses``: each script once, one summary and one report from the
controller, one limit for the whole run, and nothing left behind by a crashed worker.

Each test runs pytest with pytest-xdist in a subprocess, as users do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import psutil
import pytest

from pytest_parallel_hypotheses.engine.tree import Marker
from tests.conftest import PLUGINS_OFF, started_pytest

WriteScript = Callable[..., Path]
LiveProcesses = Callable[[str], List[psutil.Process]]

#: Generous bound for anything that should take seconds: catches hangs, not slowness.
HANG_SECONDS = 120


def run_xdist(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> pytest.RunResult:
    """pytest with two xdist workers, in a subprocess, node ids relative to ``tmp_path``."""
    return pytester.runpytest_subprocess(
        "-n", "2", f"--rootdir={tmp_path}", *PLUGINS_OFF, *args, timeout=HANG_SECONDS
    )


def stopped_on_supported(
    pytester: pytest.Pytester, tmp_path: Path, repo: Path, *args: str
) -> pytest.RunResult:
    """:func:`run_xdist` over the hypotheses of ``repo``, stopped once one is supported."""
    return run_xdist(
        pytester,
        tmp_path,
        f"--hypotheses={repo}",
        "--hypotheses-stop-on=supported",
        "--hypotheses-grace=0.3",
        *args,
    )


def logging_script(log: Path, exit_status: int) -> str:
    """A script body that appends its id to ``log`` (one line per run), then exits."""
    return f'echo "$HYPOTHESIS_ID" >> {log}\nexit {exit_status}'


@pytest.fixture
def six_hypotheses(git_repo: Path, write_script: WriteScript, tmp_path: Path) -> Path:
    """Six hypotheses in the repository: h0, h2, h4 falsified, h1, h3, h5 supported; each
    appends its id to ``tmp_path/ran.log`` when it runs."""
    for index in range(6):
        write_script(git_repo, f"h{index}", logging_script(tmp_path / "ran.log", index % 2))
    return git_repo


def test_each_hypothesis_runs_once_however_many_workers_collect_it(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    result = run_xdist(pytester, tmp_path, f"--hypotheses={six_hypotheses}")

    result.assert_outcomes(passed=3, failed=3)
    assert sorted((tmp_path / "ran.log").read_text().split()) == [f"h{i}" for i in range(6)]


def test_the_limits_that_the_chosen_hypotheses_metadata_set_are_told_under_xdist_too(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: Callable[[Path, str, object], Path],
    tmp_path: Path,
) -> None:
    """The controller collects nothing: a run under ``-n`` did not say what enforces a
    hypothesis's own memory limit."""
    for hypothesis_id, limits in (("cache", {"timeout": 30, "memory": "200M"}), ("race", {})):
        write_script(git_repo, hypothesis_id, "exit 0")
        write_metadata(git_repo, hypothesis_id, limits)
    write_script(git_repo, "left_out", "exit 0")
    write_metadata(git_repo, "left_out", {"timeout": 5})

    result = run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}", "-k", "not left_out")

    result.stdout.fnmatch_lines(
        [
            "timeouts set by their metadata: 1 at 30s",
            "memory limits set by their metadata: 1 at 200 MiB, enforced by *",
        ]
    )


def test_the_heartbeat_under_xdist_shows_the_timeout_the_metadata_sets(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: Callable[[Path, str, object], Path],
    tmp_path: Path,
) -> None:
    """The controller runs no engine: it showed the run's timeout beside every hypothesis."""
    write_script(git_repo, "slow", "sleep 1.5")
    write_metadata(git_repo, "slow", {"timeout": 30})

    result = run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}", "--hypotheses-heartbeat=0.2")

    result.stdout.fnmatch_lines(["hypotheses still running: slow *s/30.0s *"])


def test_dist_each_is_a_usage_error_before_anything_runs(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    """Each worker would run every script, side by side in the same worktree."""
    result = run_xdist(pytester, tmp_path, f"--hypotheses={six_hypotheses}", "--dist=each")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist=each is not valid with --hypotheses*"])
    assert not (tmp_path / "ran.log").exists()


def test_the_controller_reports_every_hypothesis_in_one_summary_and_one_report(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"

    result = run_xdist(
        pytester, tmp_path, f"--hypotheses={six_hypotheses}", f"--hypotheses-report={path}"
    )

    result.stdout.fnmatch_lines(
        [
            "*= hypotheses =*",
            "id *worktree (branch) *verdict *result *exit *duration *confidence",
            *(f"h{i} *repo (main) *{'SUPPORTED' if i % 2 else 'FALSIFIED'} *" for i in range(6)),
            "verdicts: 3 falsified, 3 supported, 0 inconclusive",
            "next: 3 hypotheses are supported (h1, h3, h5): *",
        ]
    )
    report = json.loads(path.read_text())
    assert [(r["hypothesis_id"], r["status"]) for r in report["hypotheses"]] == [
        (f"h{i}", "supported" if i % 2 else "falsified") for i in range(6)
    ]
    assert report["counts"] == {"falsified": 3, "supported": 3, "inconclusive": 0, "pending": 0}
    assert report["run"]["exit_status"] == pytest.ExitCode.TESTS_FAILED


def test_the_workers_warnings_reach_the_controllers_summary_once(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    """Warnings of the runner, logged where the scripts run (the workers), are told by the
    controller: each kind once, with how many came from every worker."""
    pytester.makeconftest(
        """
        import logging

        def pytest_runtest_setup(item):
            logging.getLogger("pytest_parallel_hypotheses.engine.spill").warning(
                "output of %s no longer written: disk full", item.name
            )
        """
    )

    result = run_xdist(pytester, tmp_path, f"--hypotheses={six_hypotheses}")

    result.assert_outcomes(passed=3, failed=3)
    told = [line for line in result.outlines if line.startswith("warning: output of")]
    assert len(told) == 1, result.outlines
    assert told[0].endswith("no longer written: disk full (and 5 more like it)")


def test_junit_counts_each_scripts_time_once_under_xdist(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """A worker runs the script inside the item's setup, whose time then held it, and the
    call's report tells it again: the test case took twice the script's time."""
    write_script(git_repo, "slow", "sleep 0.6")
    junit = tmp_path / "junit.xml"

    run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}", f"--junitxml={junit}")

    [case] = ET.parse(junit).getroot().iter("testcase")
    assert 0.6 <= float(case.get("time", "0")) < 1.1


def test_the_header_under_xdist_says_one_script_per_worker_not_what_auto_would_do(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    result = run_xdist(pytester, tmp_path, f"--hypotheses={six_hypotheses}")

    result.stdout.fnmatch_lines(["hypotheses: * (workers: one script per xdist worker, timeout *"])
    result.stdout.no_fnmatch_line("*workers auto*")


def test_the_json_report_under_xdist_says_one_script_per_worker_not_what_auto_would_do(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"

    run_xdist(pytester, tmp_path, f"--hypotheses={six_hypotheses}", f"--hypotheses-report={path}")

    settings = json.loads(path.read_text())["run"]["settings"]
    assert settings["per_xdist_worker"] is True
    assert settings["max_concurrent_tests"] is None
    assert settings["adaptive_concurrency"] is None


def test_the_header_under_xdist_says_a_number_of_workers_is_one_script_per_worker(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    result = run_xdist(
        pytester, tmp_path, f"--hypotheses={six_hypotheses}", "--hypotheses-workers=3"
    )

    result.stdout.fnmatch_lines(
        ["hypotheses: * (workers 3, one script at a time per xdist worker, timeout *"]
    )


def test_hypotheses_left_unrun_by_an_early_stop_are_listed_as_not_run(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "h0", "exit 1")
    for index in range(1, 8):
        write_script(git_repo, f"h{index}", "sleep 0.3")
    path = tmp_path / "report.json"

    run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}", f"--hypotheses-report={path}", "-x")

    records = json.loads(path.read_text())["hypotheses"]
    assert [record["hypothesis_id"] for record in records] == [f"h{i}" for i in range(8)]
    assert {record["branch"] for record in records} == {"main"}
    not_run = [record for record in records if record["result"] is None]
    assert not_run
    assert {record["status"] for record in not_run} == {"pending"}


def test_stop_on_stops_every_worker_and_reports_the_rest_as_skipped_with_the_reason(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    write_script(git_repo, "a", "sleep 1; exit 1")
    for index in range(1, 6):
        write_script(
            git_repo,
            f"b{index}",
            f"setsid sleep {sleep_token} >/dev/null 2>&1 </dev/null &\nsleep {sleep_token}",
        )
    path = tmp_path / "report.json"

    result = stopped_on_supported(pytester, tmp_path, git_repo, f"--hypotheses-report={path}")

    result.stdout.fnmatch_lines(["*! hypothesis a was SUPPORTED !*"])
    records = {
        record["hypothesis_id"]: record for record in json.loads(path.read_text())["hypotheses"]
    }
    assert records["a"]["status"] == "supported"
    others = [records[f"b{index}"] for index in range(1, 6)]
    assert {(record["result"], record["status"]) for record in others} == {("skip", "pending")}
    reasons = {f"{how} because hypothesis a was SUPPORTED" for how in ("stopped", "not started")}
    assert {record["error_message"] for record in others} <= reasons
    assert live_processes(sleep_token) == []


def test_under_xdist_a_stop_reports_the_hypotheses_it_kept_from_starting_as_skipped(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Without xdist each hypothesis a stop kept from starting is a skipped test, in the
    summary and the JUnit file; xdist shuts its workers down before they report them."""
    write_script(git_repo, "a", "exit 1")
    for index in range(1, 6):
        write_script(git_repo, f"b{index}", "sleep 30")
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"

    result = stopped_on_supported(
        pytester, tmp_path, git_repo, f"--junitxml={junit}", f"--hypotheses-report={report}", "-rs"
    )

    result.assert_outcomes(failed=1, skipped=5)
    result.stdout.fnmatch_lines(["*hypothesis b? has no verdict: * because hypothesis a was *"])
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert sorted(cases) == ["a", *(f"b{index}" for index in range(1, 6))]
    for index in range(1, 6):
        case = cases[f"b{index}"]
        assert case.find("skipped") is not None
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert (properties["verdict"], properties["result"]) == ("pending", "skip")
    never_started = [
        record
        for record in json.loads(report.read_text())["hypotheses"]
        if record["error_message"].startswith("not started")
    ]
    assert never_started
    assert [record["timeline"] for record in never_started] == [[]] * len(never_started)


def test_a_run_stopped_by_stop_on_under_xdist_ends_as_without_xdist(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """xdist ends a stopped run with an interruption, as for Ctrl-C: a pipeline read exit 2
    and ``interrupted`` where the run without xdist exits 1, stopped early."""
    write_script(git_repo, "a", "exit 1")
    for index in range(1, 4):
        write_script(git_repo, f"b{index}", "sleep 30")
    path = tmp_path / "report.json"

    result = run_xdist(
        pytester,
        tmp_path,
        f"--hypotheses={git_repo}",
        "--hypotheses-stop-on=supported",
        f"--hypotheses-report={path}",
    )

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    run = json.loads(path.read_text())["run"]
    assert (run["exit_status"], run["interrupted"], run["stopped_early"]) == (1, False, True)


def test_under_xdist_a_script_that_timed_out_short_of_cpus_is_not_run_again(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Each worker runs one script, so ``auto`` has no crowd of its own to wait out: run
    again at once, the script met the same crowd, the other workers' scripts."""
    log = tmp_path / "ran.log"
    workers = 2 * len(os.sched_getaffinity(0))  # two to a CPU: each waits half the time
    for index in range(workers):
        burn = f"exec {sys.executable} -S -c 'while True: pass'"
        write_script(git_repo, f"burn{index}", f'echo "$HYPOTHESIS_ID" >> {log}\n{burn}')

    pytester.runpytest_subprocess(
        "-n",
        str(workers),
        f"--rootdir={tmp_path}",
        *PLUGINS_OFF,
        f"--hypotheses={git_repo}",
        "--hypotheses-timeout=1.5",
        timeout=HANG_SECONDS,
    )

    assert sorted(log.read_text().split()) == sorted(f"burn{index}" for index in range(workers))


def test_a_projects_pytest_timeout_does_not_end_a_hypothesis_under_xdist(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """A worker runs the script inside the item's setup, where pytest-timeout's timer runs:
    the script's own deadline governs it, not the project's per-test ``timeout``."""
    pytester.makeini("[pytest]\ntimeout = 1\n")
    write_script(git_repo, "slow", "sleep 2\nexit 0")

    result = run_xdist(pytester, tmp_path, "-p", "timeout", f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1)


def intervals(log: Path) -> List[Tuple[float, float]]:
    """(start, end) of each script, from the lines ``<id> start|end <seconds>`` in ``log``."""
    times: Dict[str, Dict[str, float]] = {}
    for line in log.read_text().splitlines():
        hypothesis_id, event, seconds = line.split()
        times.setdefault(hypothesis_id, {})[event] = float(seconds)
    return sorted((time["start"], time["end"]) for time in times.values())


def test_the_concurrency_limit_holds_across_workers(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "times.log"
    stamp = 'echo "$HYPOTHESIS_ID {event} $(date +%s.%N)" >> ' + str(log)
    for index in range(3):
        body = f"{stamp.format(event='start')}\nsleep 0.4\n{stamp.format(event='end')}"
        write_script(git_repo, f"h{index}", body)

    result = run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}", "--hypotheses-workers=1")

    result.assert_outcomes(passed=3)
    spans = intervals(log)
    assert len(spans) == 3
    for (_start, end), (next_start, _end) in zip(spans, spans[1:]):
        assert next_start >= end, f"two scripts ran at once: {spans}"


def test_a_folder_that_cannot_be_searched_is_a_usage_error_under_xdist(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    result = run_xdist(pytester, tmp_path, f"--hypotheses={tmp_path / 'absent'}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --hypotheses=*absent: *absent does not exist"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_shard_under_xdist_runs_and_reports_only_its_hypotheses(
    pytester: pytest.Pytester, six_hypotheses: Path, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"

    run_xdist(
        pytester,
        tmp_path,
        f"--hypotheses={six_hypotheses}",
        "--hypotheses-shard=1/3",
        f"--hypotheses-report={path}",
    )

    report = json.loads(path.read_text())
    ran = (tmp_path / "ran.log").read_text().split()
    assert sorted(record["hypothesis_id"] for record in report["hypotheses"]) == sorted(ran)
    assert len(ran) == 2
    assert (report["run"]["shard"]["index"], report["run"]["shard"]["size"]) == (1, 2)


@pytest.fixture
def crashed_run(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> Tuple[str, Dict[str, Any]]:
    """A run whose worker is killed with SIGKILL while it runs ``stuck``, a script that
    started a child in a session of its own; its output and its JSON report."""
    pid_file = tmp_path / "worker.pid"
    write_script(
        git_repo,
        "stuck",
        f"echo $PPID > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}\n"
        f"setsid sleep {sleep_token} &\nsleep {sleep_token}",
    )
    write_script(git_repo, "quick", "exit 0")
    report = tmp_path / "report.json"
    run = start_xdist(pytester, tmp_path, git_repo, report)
    try:
        worker = wait_for_pid(pid_file)
        assert psutil.Process(worker).ppid() == run.pid  # a worker, not the controller
        os.kill(worker, signal.SIGKILL)
        output, _ = run.communicate(timeout=HANG_SECONDS)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return output.decode(errors="replace"), json.loads(report.read_text())


def start_xdist(
    pytester: pytest.Pytester,
    tmp_path: Path,
    repo: Path,
    report: Path,
    *options: str,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """pytest with two xdist workers on ``repo``'s hypotheses and ``options``, in the
    background, writing its JSON report to ``report`` (see ``started_pytest``)."""
    args = ("-n", "2", f"--hypotheses={repo}", *options, f"--hypotheses-report={report}")
    return started_pytest(pytester, tmp_path, *args, **popen)


def wait_for_pid(path: Path) -> int:
    wait_for_file(path)
    return int(path.read_text())


def wait_for_file(path: Path) -> None:
    """Wait until a script has written ``path``: it has started."""
    deadline = time.monotonic() + HANG_SECONDS
    while not path.exists():
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.05)


#: The longest a worker's script may outlive its controller killed with SIGKILL: a worker
#: that did not watch it went on until its channel failed, 5 s later here, 15 s in a trial.
ORPHANED_SECONDS = 3.0


@pytest.fixture
def killed_controller(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
    live_processes: LiveProcesses,
    monkeypatch: pytest.MonkeyPatch,
) -> Tuple[List[psutil.Process], Path]:
    """A run whose controller is killed with SIGKILL while a worker runs a script: the
    script's processes left :data:`ORPHANED_SECONDS` later, once its workers had ended, and
    the run's temporary folder."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))  # where the controller makes its folders
    started = tmp_path / "started"
    write_script(git_repo, "stuck", f"touch {started}\nsleep {sleep_token}")
    run = start_xdist(pytester, tmp_path, git_repo, tmp_path / "report.json")
    try:
        wait_for_file(started)
        os.kill(run.pid, signal.SIGKILL)
        deadline = time.monotonic() + ORPHANED_SECONDS
        while live_processes(sleep_token) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = live_processes(sleep_token)
        run.communicate(timeout=HANG_SECONDS)  # its workers hold its output until they end
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    return alive, temporary


def test_a_killed_controller_leaves_no_script_alive(
    killed_controller: Tuple[List[psutil.Process], Path],
) -> None:
    alive, _temporary = killed_controller

    assert alive == []


def test_the_workers_of_a_killed_controller_remove_the_folder_it_shared_with_them(
    killed_controller: Tuple[List[psutil.Process], Path],
) -> None:
    _alive, temporary = killed_controller

    assert list(temporary.glob("pytest-hypotheses-shared-*")) == []


def test_a_killed_worker_leaves_no_script_alive(
    crashed_run: Tuple[str, Dict[str, Any]], live_processes: LiveProcesses, sleep_token: str
) -> None:
    assert live_processes(sleep_token) == []


def test_the_hypothesis_of_a_killed_worker_is_reported_as_an_error(
    crashed_run: Tuple[str, Dict[str, Any]],
) -> None:
    output, report = crashed_run

    pytest.LineMatcher(output.splitlines()).fnmatch_lines(
        [
            "quick *repo (main) *FALSIFIED *pass *0 *",
            "stuck *repo (main) *INCONCLUSIVE *error *",
            "*1 passed, 1 error*",
        ]
    )
    stuck = {record["hypothesis_id"]: record for record in report["hypotheses"]}["stuck"]
    assert (stuck["result"], stuck["status"]) == ("error", "inconclusive")
    assert "crashed while running" in stuck["error_message"]


#: What the script that kills its worker prints first.
LAST_WORDS = "parsed 41 of 42 modules"


@pytest.fixture
def worker_killed_after_printing(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> Tuple[str, Dict[str, Any], Path]:
    """A run whose script ``dies`` prints a line, waits until its worker has written it to
    the output folder, then kills its worker (its parent) with SIGKILL and sleeps on; the
    run's output, its JSON report and its JUnit XML file (its events beside them)."""
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    written = f"{report}.output/dies-*.stdout"
    write_script(
        git_repo,
        "dies",
        f"echo '{LAST_WORDS}'\necho 'about to go' >&2\n"
        f"for _ in $(seq {HANG_SECONDS * 10}); do\n"
        f"  grep -qs '{LAST_WORDS}' {written} && break; sleep 0.1\ndone\n"
        f"kill -9 $PPID\nsleep {sleep_token}",
    )
    write_script(git_repo, "quick", "exit 0")
    events = tmp_path / "events.jsonl"
    options = (f"--junitxml={junit}", f"--hypotheses-events={events}")
    run = start_xdist(pytester, tmp_path, git_repo, report, *options)
    try:
        output, _ = run.communicate(timeout=HANG_SECONDS)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return output.decode(errors="replace"), json.loads(report.read_text()), junit


def test_the_hypothesis_of_a_killed_worker_keeps_what_its_script_printed(
    worker_killed_after_printing: Tuple[str, Dict[str, Any], Path],
) -> None:
    _output, report, _junit = worker_killed_after_printing

    dies = {record["hypothesis_id"]: record for record in report["hypotheses"]}["dies"]
    assert (dies["result"], dies["exit_code"]) == ("error", 70)
    assert LAST_WORDS in dies["stdout"]
    assert "about to go" in dies["stderr"]
    assert dies["stdout_bytes"] == len(LAST_WORDS) + 1
    assert LAST_WORDS in Path(dies["stdout_file"]).read_text()
    assert dies["duration"] > 0


def test_the_error_of_a_killed_worker_shows_what_its_script_printed(
    worker_killed_after_printing: Tuple[str, Dict[str, Any], Path],
) -> None:
    output, report, junit = worker_killed_after_printing

    assert [record["result"] for record in report["hypotheses"]] == ["error", "pass"]
    pytest.LineMatcher(output.splitlines()).fnmatch_lines(
        ["*crashed while running*", "*duration:*", "*stdout (all)*", LAST_WORDS]
    )
    assert LAST_WORDS in junit.read_text()


def test_the_event_stream_tells_that_the_hypothesis_of_a_killed_worker_finished(
    worker_killed_after_printing: Tuple[str, Dict[str, Any], Path], tmp_path: Path
) -> None:
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]

    finished = {
        event["nodeid"].rpartition("::")[2]: event["record"]
        for event in events
        if event["type"] == "hypothesis_finished"
    }
    assert sorted(finished) == ["dies", "quick"]
    assert LAST_WORDS in finished["dies"]["stdout"]
    assert len(finished["dies"]["timeline"]) == 1


def test_a_script_that_killed_its_worker_does_not_outlive_the_run(
    worker_killed_after_printing: Tuple[str, Dict[str, Any], Path],
    live_processes: LiveProcesses,
    sleep_token: str,
) -> None:
    assert live_processes(sleep_token) == []


def test_a_prefix_marker_finds_the_processes_of_every_run_it_starts(sleep_token: str) -> None:
    env = {**os.environ, "PPH_RUN_0123abcd_gw1_feed": "0"}
    child = subprocess.Popen(["sleep", sleep_token], env=env)
    try:
        process = psutil.Process(child.pid)
        wait_for_environment(process)

        assert Marker("PPH_RUN_0123abcd_", prefix=True).found_in(process)
        assert Marker("PPH_RUN_0123abcd_gw1_", prefix=True).found_in(process)
        assert not Marker("PPH_RUN_0123abcd_gw2_", prefix=True).found_in(process)
    finally:
        child.kill()
        child.wait()


def test_a_marker_looked_for_while_its_process_execs_is_found_once_the_exec_is_done(
    sleep_token: str,
) -> None:
    env = {**os.environ, "PPH_RUN_0123abcd_gw1_feed": "0"}
    marker = Marker("PPH_RUN_0123abcd_", prefix=True)
    missed = []
    for _ in range(200):  # a few of them are read in the middle of their exec
        child = subprocess.Popen(["sleep", sleep_token], env=env)
        try:
            process = psutil.Process(child.pid)
            marker.found_in(process)
            wait_for_environment(process)

            if not marker.found_in(process):
                missed.append(child.pid)
        finally:
            child.kill()
            child.wait()

    assert missed == []


def wait_for_environment(process: psutil.Process) -> None:
    """Wait until the environment of a process that has just exec'd can be read: Popen returns
    once the exec is under way, and for a moment its new environment reads as empty."""
    deadline = time.monotonic() + HANG_SECONDS
    while not process.environ():
        assert time.monotonic() < deadline, "the environment never became readable"
        time.sleep(0.01)


def test_a_hangup_of_the_whole_session_stops_every_script_and_writes_the_report(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    """A closed terminal sends SIGHUP to the controller and its workers at once."""
    for index in range(2):
        write_script(git_repo, f"sleeper{index}", f"sleep {sleep_token}")
    report = tmp_path / "report.json"
    run = start_xdist(pytester, tmp_path, git_repo, report, start_new_session=True)
    try:
        deadline = time.monotonic() + HANG_SECONDS
        while len(live_processes(sleep_token)) < 2:
            assert time.monotonic() < deadline, "the scripts never started"
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGHUP)
        output = run.communicate(timeout=HANG_SECONDS)[0].decode(errors="replace")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert live_processes(sleep_token) == []
    written = json.loads(report.read_text())
    assert written["run"]["interrupted"] is True
    # who each hypothesis is, although no worker reported it
    assert [
        (record["branch"], Path(record["script"]).name) for record in written["hypotheses"]
    ] == [
        ("main", "test_sleeper0.sh"),
        ("main", "test_sleeper1.sh"),
    ]


def test_an_interrupted_session_keeps_what_a_running_script_had_printed(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    write_metadata: Callable[[Path, str, object], Path],
    tmp_path: Path,
) -> None:
    """Ctrl-C sent to the controller alone (``timeout -s INT``): xdist shuts its workers down
    before they report; the script's output is taken up from the session's output folder,
    and the hypothesis keeps what its metadata says (its polarity)."""
    started = tmp_path / "started"
    write_script(git_repo, "slow", f"echo halfway; touch {started}; sleep 60")
    write_metadata(git_repo, "slow", {"polarity": "confirm"})
    report = tmp_path / "report.json"
    run = start_xdist(pytester, tmp_path, git_repo, report)
    try:
        wait_for_file(started)
        time.sleep(0.3)  # the worker has written what the script printed
        run.send_signal(signal.SIGINT)
        output = run.communicate(timeout=HANG_SECONDS)[0].decode(errors="replace")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["status"] == "pending", output
    assert record["stdout"] == "halfway\n"
    assert record["error_message"] == "stopped because the run was interrupted"
    assert record["duration"] > 0
    assert record["polarity"] == "confirm"


def test_a_second_signal_while_the_run_ends_is_held_until_the_report_is_written(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    """A CI cancel: SIGINT to the controller, SIGTERM a moment later, while xdist shuts its
    workers down (the script ignores both, so the shutdown lasts its grace). Raised there,
    the second signal ended pytest with a traceback, exit status 1 and no report."""
    started = tmp_path / "started"
    write_script(git_repo, "deaf", f"trap '' INT TERM; touch {started}; sleep {sleep_token}")
    report = tmp_path / "report.json"
    run = start_xdist(pytester, tmp_path, git_repo, report, "--hypotheses-grace=6")
    try:
        wait_for_file(started)
        run.send_signal(signal.SIGINT)
        time.sleep(2)
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=HANG_SECONDS)[0].decode(errors="replace")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "SIGTERM received while the run ends: its reports are being written" in output
    assert json.loads(report.read_text())["run"]["interrupted"] is True
    assert live_processes(sleep_token) == []


def test_a_signal_to_the_controller_alone_stops_the_workers_scripts_at_once(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """A CI cancel signals the controller, not its workers; xdist's shutdown takes seconds
    (about five here), and the scripts ran on through it."""
    started, heard = tmp_path / "started", tmp_path / "heard"
    write_script(
        git_repo,
        "slow",
        f"trap 'date +%s.%N > {heard}; exit 3' INT\ntouch {started}\nsleep 60 & wait",
    )
    run = start_xdist(pytester, tmp_path, git_repo, tmp_path / "report.json")
    try:
        wait_for_file(started)
        sent = time.time()
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=HANG_SECONDS)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert float(heard.read_text()) - sent < 3


def test_a_warning_its_result_carries_is_not_repeated_in_the_captured_log(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """A worker runs the script during the item's setup, where pytest captures the log: the
    warning about the worktree's code, in the item's failure text already, stays out of it."""
    (git_repo / "src" / "uninstalledpkg").mkdir(parents=True)
    (git_repo / "src" / "uninstalledpkg" / "__init__.py").write_text("VALUE = 1\n")
    write_script(git_repo, "h1", "exit 1")

    result = run_xdist(pytester, tmp_path, f"--hypotheses={git_repo}")

    result.assert_outcomes(failed=1)
    warned = [line for line in result.outlines if "can be imported only once installed" in line]
    assert [line.split(":", 1)[0].strip() for line in warned] == ["warning", "warning"]
    assert "Captured log" not in result.stdout.str()
