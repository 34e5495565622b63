"""What the engine tells while a run goes on: attempts started on their slots with live output,
attempts finished, the process tree at a deadline, and the output of a script cut short."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    TestExecutionResult,
    TestExecutor,
)
from pytest_parallel_hypotheses.core.diagnosis import cpu_demand, describe_snapshot, format_elapsed
from pytest_parallel_hypotheses.engine import snapshot as snapshot_module
from pytest_parallel_hypotheses.engine.capture import BoundedCapture
from pytest_parallel_hypotheses.engine.events import LiveOutput, RunObserver

WriteScript = Callable[..., Path]
#: The deadline of scripts that must be stopped by it.
TIMEOUT = 1.0


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("watched")


class Recorder(RunObserver):
    """Keeps every call, as (event, hypothesis id, attempt, slot)."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str, int, int]] = []
        self.last_lines: List[str] = []
        self.threads: List[threading.Thread] = []
        self.setup_outputs: List[LiveOutput] = []

    def setup_started(
        self, run: HypothesisRun, *, slot: int, timeout: float, output: LiveOutput
    ) -> None:
        self.calls.append(("setting up", run.hypothesis.id, 0, slot))
        self.setup_outputs.append(output)

    def setup_finished(self, run: HypothesisRun, *, slot: int) -> None:
        self.calls.append(("set up", run.hypothesis.id, 0, slot))

    def attempt_started(
        self, run: HypothesisRun, *, number: int, slot: int, output: LiveOutput
    ) -> None:
        self.calls.append(("started", run.hypothesis.id, number, slot))
        self.threads.append(threading.current_thread())

    def attempt_finished(
        self, run: HypothesisRun, *, number: int, slot: int, result: TestExecutionResult
    ) -> None:
        self.calls.append(("finished", run.hypothesis.id, number, slot))


def run_observed(
    worktree: Path, ids: List[str], observer: RunObserver, **config: object
) -> List[TestExecutionResult]:
    settings = FalsificationConfig(**{"test_timeout": 60.0, "kill_grace": 0.3, **config})  # type: ignore[arg-type]
    runs = [HypothesisRun(Hypothesis(i, "x"), worktree) for i in ids]
    return TestExecutor(settings).execute_parallel(runs, observer=observer)


def test_each_attempt_is_told_started_then_finished_on_its_slot(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "a", "exit 0")
    recorder = Recorder()

    run_observed(worktree, ["a"], recorder, repeats=2, max_concurrent_tests=1)

    assert recorder.calls == [
        ("started", "a", 1, 0),
        ("finished", "a", 1, 0),
        ("started", "a", 2, 0),
        ("finished", "a", 2, 0),
    ]


def test_a_setup_step_is_told_with_its_output_before_the_first_attempt(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "a", "exit 0")
    recorder = Recorder()

    run_observed(worktree, ["a"], recorder, setup_command="echo installing")

    assert recorder.calls == [
        ("setting up", "a", 0, 0),
        ("set up", "a", 0, 0),
        ("started", "a", 1, 0),
        ("finished", "a", 1, 0),
    ]
    assert [output.last_line() for output in recorder.setup_outputs] == ["installing"]


def test_concurrent_hypotheses_run_on_different_slots(
    worktree: Path, write_script: WriteScript
) -> None:
    for name in ("a", "b"):
        write_script(worktree, name, "sleep 0.5")
    recorder = Recorder()

    run_observed(worktree, ["a", "b"], recorder, max_concurrent_tests=2)

    slots = {slot for event, _id, _n, slot in recorder.calls if event == "started"}
    assert slots == {0, 1}


def test_a_failing_observer_costs_no_result(worktree: Path, write_script: WriteScript) -> None:
    class Broken(RunObserver):
        def attempt_started(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("observer bug")

    write_script(worktree, "a", "exit 1")

    [result] = run_observed(worktree, ["a"], Broken())

    assert result.exit_code == 1


def test_the_live_output_tells_the_last_line_printed() -> None:
    stdout, stderr = BoundedCapture(64), BoundedCapture(64)
    live = LiveOutput(stdout, stderr)
    assert live.last_line() == ""
    stderr.feed(b"warming up\n")
    assert live.last_line() == "warming up"
    stdout.feed(b"step 1\nstep 2\n\n")
    assert live.last_line() == "step 2"
    stdout.feed(b"x" * 200 + b"\nstep 3\n")
    assert live.last_line() == "step 3"


def test_a_timeout_snapshot_lists_every_process_of_the_tree_with_the_last_lines(
    worktree: Path, write_script: WriteScript, sleep_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "WAIT_SECONDS", 60.0)  # however slow the table's pass
    write_script(
        worktree,
        "slow",
        f"echo compiling; setsid sleep {sleep_token} >/dev/null 2>&1 </dev/null &\n"
        f"sleep {sleep_token}",
    )

    [result] = run_observed(worktree, ["slow"], RunObserver(), test_timeout=TIMEOUT)

    snapshot = result.timeout_snapshot
    assert snapshot is not None
    assert snapshot["whole_tree"] is True
    commands = [process["command"] for process in snapshot["processes"]]
    assert commands.count(f"sleep {sleep_token}") == 2  # the escaped one too
    assert any(command.endswith("test_slow.sh") for command in commands)
    assert snapshot["stdout_tail"] == ["compiling"]
    for process in snapshot["processes"]:
        assert set(process) == {
            "pid",
            "ppid",
            "session",
            "age_seconds",
            "state",
            "cpu_seconds",
            "waited_seconds",
            "rss_bytes",
            "command",
        }


def test_a_snapshot_gives_each_process_its_age_to_the_clock_tick(
    worktree: Path, write_script: WriteScript, sleep_token: str
) -> None:
    """The script's shell is as old as the deadline when the picture is taken: ages once
    added the boot time's fraction of a second (whole seconds in Linux), up to a second."""
    write_script(worktree, "slow", f"sleep {sleep_token}")
    before = time.time()

    [result] = run_observed(worktree, ["slow"], RunObserver(), test_timeout=TIMEOUT)

    snapshot = result.timeout_snapshot
    assert snapshot is not None
    [shell] = [p for p in snapshot["processes"] if p["command"].endswith("test_slow.sh")]
    assert shell["age_seconds"] >= TIMEOUT - 0.02, snapshot["processes"]
    # no older than the run: a clock tick (0.01 s) each for its start and for the uptime
    assert shell["age_seconds"] <= snapshot["taken_at"] - before + 0.02, snapshot["processes"]


def test_a_snapshot_that_cannot_wait_for_the_process_table_shows_the_scripts_descendants(
    worktree: Path, write_script: WriteScript, sleep_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tree's SIGTERM waits for the picture: a slow pass over the table must not hold it."""
    monkeypatch.setattr(snapshot_module, "WAIT_SECONDS", 0.0)
    write_script(worktree, "slow", f"sleep {sleep_token} | cat")

    [result] = run_observed(worktree, ["slow"], RunObserver(), test_timeout=TIMEOUT)

    snapshot = result.timeout_snapshot
    assert snapshot is not None
    assert snapshot["whole_tree"] is False
    commands = [process["command"] for process in snapshot["processes"]]
    assert {"cat", f"sleep {sleep_token}"} <= set(commands)
    assert len(commands) == 3
    assert any(command.endswith("test_slow.sh") for command in commands)


def test_a_snapshot_of_a_large_tree_describes_its_oldest_and_youngest_and_counts_all(
    worktree: Path, write_script: WriteScript, sleep_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Describing each process takes several reads of /proc, and the stop waits for the
    picture: 1,300 processes of a script that forked in a loop held its SIGTERM back 0.43 s."""
    monkeypatch.setattr(snapshot_module, "DESCRIBED_PROCESSES", 10)
    write_script(
        worktree,
        "slow",
        f"for i in $(seq 30); do sleep {sleep_token} & done\nsleep {sleep_token}1",
    )

    [result] = run_observed(worktree, ["slow"], RunObserver(), test_timeout=3 * TIMEOUT)

    snapshot = result.timeout_snapshot
    assert snapshot is not None
    assert snapshot["process_count"] == 32
    processes = snapshot["processes"]
    assert len(processes) == 10
    assert processes[0]["command"].endswith("test_slow.sh")  # the oldest first
    assert processes[-1]["command"] == f"sleep {sleep_token}1"  # and the youngest last
    ages = [process["age_seconds"] for process in processes]
    assert ages == sorted(ages, reverse=True)
    assert "31 other processes in its tree" in result.error_message


def test_the_cpu_figures_of_a_large_tree_count_the_processes_it_does_not_describe(
    worktree: Path, write_script: WriteScript, sleep_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a timed-out tree was short of CPUs (and ``auto`` runs it again) was read from
    the processes described alone: four busy processes between a large tree's oldest and
    youngest did not count."""
    monkeypatch.setattr(snapshot_module, "DESCRIBED_PROCESSES", 2)
    busy = f"{sys.executable} -c 'while True: pass'"
    write_script(
        worktree, "slow", f"for i in 1 2 3 4; do {busy} & done\nsleep 0.6\nsleep {sleep_token}"
    )

    [result] = run_observed(worktree, ["slow"], RunObserver(), test_timeout=3 * TIMEOUT)

    snapshot = result.timeout_snapshot
    assert snapshot is not None
    assert len(snapshot["processes"]) == 2
    assert snapshot["process_count"] == 6
    assert cpu_demand(snapshot) > 3.0, snapshot


def test_a_timeout_names_what_the_script_was_running(
    worktree: Path, write_script: WriteScript, sleep_token: str
) -> None:
    write_script(worktree, "slow", f"sleep {sleep_token}")

    [result] = run_observed(worktree, ["slow"], RunObserver(), test_timeout=TIMEOUT)

    assert f"timed out while running: `sleep {sleep_token}` (pid " in result.error_message


def test_a_timeout_names_what_the_script_waited_for_not_a_daemon_it_started(
    worktree: Path, write_script: WriteScript, sleep_token: str
) -> None:
    """A new-user trial's timeout named the ``setsid`` daemon, younger than the foreground
    command the script was blocked on."""
    daemon = f"sleep 0.3\nsetsid sleep {sleep_token}1 &"
    write_script(worktree, "slow", f"sleep {sleep_token} &\nwaited=$!\n{daemon}\nwait $waited")

    [result] = run_observed(worktree, ["slow"], RunObserver(), test_timeout=TIMEOUT)

    assert f"timed out while running: `sleep {sleep_token}` (pid " in result.error_message


def test_a_script_ending_on_its_own_has_no_snapshot(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "quick", "exit 0")

    [result] = run_observed(worktree, ["quick"], RunObserver())

    assert result.timeout_snapshot is None


def test_the_one_line_reading_names_the_youngest_descendant_with_age_and_memory() -> None:
    snapshot = {
        "processes": [
            {"pid": 10, "age_seconds": 300.0, "rss_bytes": 2**20, "command": "sh test_a.sh"},
            {"pid": 11, "age_seconds": 298.0, "rss_bytes": 310 * 2**20, "command": "pytest t"},
        ]
    }
    assert describe_snapshot(snapshot) == (
        "timed out while running: `pytest t` (pid 11, 4m58s, 310 MiB); 1 other process in its tree"
    )


def test_the_one_line_reading_says_when_the_processes_waited_long_for_a_cpu() -> None:
    snapshot = {
        "processes": [
            {
                "pid": 10,
                "age_seconds": 14.0,
                "waited_seconds": 0.0,
                "rss_bytes": 2**20,
                "command": "sh test_a.sh",
            },
            {
                "pid": 11,
                "age_seconds": 13.8,
                "waited_seconds": 9.2,
                "rss_bytes": 2**20,
                "command": "python burn.py",
            },
        ]
    }
    assert describe_snapshot(snapshot).endswith(
        "; its processes waited for a CPU up to 67% of their time: other work kept the CPUs "
        "busy (the run's other scripts, or other programs)"
    )


def test_the_one_line_reading_says_nothing_of_a_short_wait_for_a_cpu() -> None:
    snapshot = {
        "processes": [
            {
                "pid": 11,
                "age_seconds": 13.8,
                "waited_seconds": 2.0,
                "rss_bytes": 2**20,
                "command": "python burn.py",
            },
        ]
    }
    assert "waited" not in describe_snapshot(snapshot)


def test_elapsed_times_read_in_seconds_minutes_or_hours() -> None:
    assert [format_elapsed(s) for s in (3.24, 298, 3720)] == ["3.2s", "4m58s", "1h02m"]


def test_a_script_stopped_by_a_verdict_keeps_what_it_printed(
    worktree: Path, write_script: WriteScript, sleep_token: str
) -> None:
    write_script(worktree, "quick", "sleep 1; exit 1")
    write_script(worktree, "slow", f"echo halfway there; echo noisy >&2; sleep {sleep_token}")
    settings = FalsificationConfig(test_timeout=60, kill_grace=0.3)
    runs = [HypothesisRun(Hypothesis(i, "x"), worktree) for i in ("quick", "slow")]

    results = TestExecutor(settings).execute_parallel(runs, stop_on="supported")

    stopped = results[1]
    assert (stopped.stdout, stopped.stderr) == ("halfway there\n", "noisy\n")
    assert stopped.stdout_bytes == len("halfway there\n")
    assert stopped.duration > 0.5
