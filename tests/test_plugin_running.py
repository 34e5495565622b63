"""Running hypotheses under pytest: concurrency, stopping early, interruptions, coexistence."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, List

import psutil
import pytest

from tests.conftest import started_pytest

RunPytest = Callable[..., pytest.RunResult]

WriteScript = Callable[..., Path]
LiveProcesses = Callable[[str], List[psutil.Process]]

#: Generous bound for anything that should take a second or two: catches hangs, not slowness.
HANG_SECONDS = 60
#: Plugins these tests do not need (the coexistence tests run with them).
PLUGINS_OFF = ("-p", "no:hypothesispytest", "-p", "no:asyncio")

#: A conftest that makes pytest's report of each failure take a while, as on a busy machine.
SLOW_FAILURE_REPORTS = """
import time

def pytest_runtest_logreport(report):
    if report.failed:
        time.sleep(0.5)
"""


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_hypotheses_run_concurrently(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    count = 10
    for index in range(count):
        write_script(git_repo, f"h{index}", "sleep 1")

    start = time.monotonic()
    result = run_pytest(f"--hypotheses={git_repo}")
    elapsed = time.monotonic() - start

    result.assert_outcomes(passed=count)
    assert elapsed < count * 0.6, f"{count} one-second scripts took {elapsed:.1f}s"


def test_a_result_is_reported_while_other_scripts_still_run(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    still_running = tmp_path / "still-running"
    write_script(git_repo, "quick", f"while [ ! -e {still_running} ]; do sleep 0.05; done")
    seen = tmp_path / "seen"
    write_script(  # slow runs on until quick is reported (a minute at most)
        git_repo,
        "slow",
        f"touch {still_running}; n=0\n"
        f"while [ ! -e {seen} ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done\n"
        f"rm {still_running}",
    )
    pytester.makeconftest(
        f"""
        import os

        def pytest_runtest_logreport(report):
            if report.when == "call" and report.nodeid.endswith("::quick"):
                with open({str(seen)!r}, "w") as f:
                    f.write(str(os.path.exists({str(still_running)!r})))
        """
    )

    run_pytest(f"--hypotheses={git_repo}").assert_outcomes(passed=2)

    assert seen.read_text() == "True"


def test_exitfirst_stops_the_run_and_kills_the_scripts_still_running(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    sleep_token: str,
    live_processes: LiveProcesses,
    tmp_path: Path,
) -> None:
    started = tmp_path / "started"
    started.mkdir()
    sleepers = 3
    for index in range(sleepers):
        write_script(git_repo, f"sleeper{index}", f"touch {started}/{index}; sleep {sleep_token}")
    wait_for_sleepers = f"while [ $(ls {started} | wc -l) -lt {sleepers} ]; do sleep 0.05; done"
    write_script(git_repo, "fails", f"{wait_for_sleepers}; exit 1")

    result = pytester.runpytest_subprocess(
        f"--rootdir={tmp_path}",
        *PLUGINS_OFF,
        f"--hypotheses={git_repo}",
        "-x",
        timeout=HANG_SECONDS,
    )

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    assert len(list(started.iterdir())) == sleepers
    assert live_processes(sleep_token) == []


@pytest.mark.parametrize(
    ("stop", "failing"), [(("-x",), ["a-fails"]), (("--maxfail=2",), ["a-fails", "b-fails"])]
)
def test_one_worker_starts_no_script_after_the_failures_pytest_allows(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    stop: List[str],
    failing: List[str],
) -> None:
    """A fault probe: under one worker and -x, the next script started (and did what it
    does) before pytest reported the first failure. Here pytest's report of each failure
    takes a while, as on a busy machine."""
    for hypothesis_id in failing:
        write_script(git_repo, hypothesis_id, "exit 1")
    started = tmp_path / "started"
    write_script(git_repo, "c-next", f"touch {started}")
    pytester.makeconftest(SLOW_FAILURE_REPORTS)

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=1", *stop)

    result.assert_outcomes(failed=len(failing))
    assert not started.exists()


@pytest.mark.parametrize(
    "judged",
    [
        "from pytest_parallel_hypotheses import TestResult\n\n"
        "def pytest_hypotheses_classify(result):\n"
        "    return TestResult.PASS\n",
        "import pytest\n\n"
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        item.add_marker(pytest.mark.xfail)\n",
    ],
    ids=["a classify hook passes it", "an xfail marker"],
)
def test_a_failing_script_that_pytest_does_not_count_does_not_stop_the_run(
    pytester: pytest.Pytester,
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    judged: str,
) -> None:
    """A review: -x counted on the engine's results stopped runs in which pytest counted no
    failure, and two hypotheses never ran."""
    pytester.makeconftest(SLOW_FAILURE_REPORTS + "\n" + judged)
    write_script(git_repo, "a-fails", "exit 1")
    started = tmp_path / "started"
    write_script(git_repo, "c-next", f"touch {started}")

    run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=1", "-x")

    assert started.exists()


def test_a_known_failure_that_stops_the_run_lets_no_script_start(
    pytester: pytest.Pytester,
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    """Broken metadata is a failure known before any script runs: under -x the run stops at
    it, and the scripts must not have started meanwhile."""
    pytester.makeconftest(SLOW_FAILURE_REPORTS)
    write_script(git_repo, "a-broken", "exit 0")
    (git_repo / ".falsification" / "config_a-broken.json").write_text("{not json")
    started = tmp_path / "started"
    write_script(git_repo, "c-next", f"touch {started}")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=1", "-x")

    result.assert_outcomes(errors=1)
    assert not started.exists()


def pytest_with_a_report(
    pytester: pytest.Pytester, tmp_path: Path, repo: Path, report: Path
) -> subprocess.Popen[bytes]:
    """pytest over ``repo``'s hypotheses writing ``report``, started as from a terminal, so
    that a test can signal it."""
    return started_pytest(
        pytester, tmp_path, f"--hypotheses={repo}", f"--hypotheses-report={report}"
    )


@pytest.mark.parametrize(
    ("signum", "message"),
    [
        (signal.SIGINT, "KeyboardInterrupt"),
        (signal.SIGTERM, "received SIGTERM"),
        (signal.SIGHUP, "received SIGHUP"),
    ],
)
def test_an_interruption_reports_partial_results_and_leaves_no_process(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    sleep_token: str,
    live_processes: LiveProcesses,
    tmp_path: Path,
    signum: int,
    message: str,
) -> None:
    finished = tmp_path / "finished"
    pytester.makeconftest(
        f"""
        def pytest_hypotheses_finished(result):
            with open({str(finished)!r}, "a") as f:
                f.write(result.hypothesis_id)
        """
    )
    write_script(git_repo, "quick", "exit 0")
    write_script(git_repo, "sleeper1", f"sleep {sleep_token}")
    write_script(git_repo, "sleeper2", f"sleep {sleep_token}")
    report = tmp_path / "report.json"
    process = pytest_with_a_report(pytester, tmp_path, git_repo, report)
    wait_until(lambda: finished.exists() and len(live_processes(sleep_token)) == 2)

    process.send_signal(signum)
    output = process.communicate(timeout=HANG_SECONDS)[0].decode()

    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    assert message in output
    pytest.LineMatcher(output.splitlines()).fnmatch_lines(
        ["quick *FALSIFIED*", "sleeper1 *CUT SHORT*", "sleeper2 *CUT SHORT*"]
    )
    assert live_processes(sleep_token) == []
    data = json.loads(report.read_text())
    assert data["run"]["interrupted"] is True
    statuses = {record["hypothesis_id"]: record["status"] for record in data["hypotheses"]}
    assert statuses == {"quick": "falsified", "sleeper1": "pending", "sleeper2": "pending"}


def test_a_second_ctrl_c_while_pytest_handles_the_first_still_reports_an_interruption(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    sleep_token: str,
    live_processes: LiveProcesses,
    tmp_path: Path,
) -> None:
    """pytest then finishes the session with the status it had before the first, 0: the
    report said a clean run while the process died of the second. The second Ctrl-C is
    raised where it lands, in pytest's handling of the first."""
    pytester.makeconftest(
        """
        def pytest_keyboard_interrupt(excinfo):
            raise KeyboardInterrupt("the second Ctrl-C")
        """
    )
    write_script(git_repo, "sleeper", f"sleep {sleep_token}")
    report = tmp_path / "report.json"
    process = pytest_with_a_report(pytester, tmp_path, git_repo, report)
    wait_until(lambda: len(live_processes(sleep_token)) == 1)

    process.send_signal(signal.SIGINT)
    process.communicate(timeout=HANG_SECONDS)

    run = json.loads(report.read_text())["run"]
    assert (run["exit_status"], run["interrupted"]) == (pytest.ExitCode.INTERRUPTED, True)
    assert live_processes(sleep_token) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_the_signal_handlers_are_restored_after_the_session(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, signum: int
) -> None:
    write_script(git_repo, "cache", "exit 0")
    before = signal.getsignal(signum)

    run_pytest(f"--hypotheses={git_repo}").assert_outcomes(passed=1)

    assert signal.getsignal(signum) is before


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_hypotheses_coexist_with_hypothesis_and_pytest_asyncio(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, mode: str
) -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_project="""
        import pytest
        from hypothesis import given, strategies

        @given(strategies.integers())
        def test_property(number):
            assert number == number

        @pytest.mark.asyncio
        async def test_coroutine():
            pass
        """
    )
    write_script(git_repo, "cache", "exit 0")
    write_script(git_repo, "race", "exit 1")

    result = pytester.runpytest(f"--hypotheses={git_repo}", "-W", "error")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["plugins: *", f"asyncio: mode=*{mode.upper()}*"])
    result.stdout.no_fnmatch_line("*warning*")


def test_without_the_option_python_tests_run_as_usual(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_project="""
        from hypothesis import given, strategies

        @given(strategies.integers())
        def test_property(number):
            assert number == number

        async def test_coroutine():
            pass
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(passed=2)
