"""Memory limits: a tree past its limit is stopped and inconclusive, never a genuine failure,
whoever in the tree allocates; per-hypothesis limits come from the metadata."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import psutil
import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.core.classification import HypothesisStatus
from pytest_parallel_hypotheses.core.sizes import format_size
from pytest_parallel_hypotheses.engine import machine
from pytest_parallel_hypotheses.engine import memory as memory_module
from pytest_parallel_hypotheses.engine.cgroup import CgroupError, ScriptCgroup, memory_parent
from pytest_parallel_hypotheses.engine.memory import MemoryGuard

MIB = 1024 * 1024
LIMIT = 200 * MIB

#: Allocates (and touches) 50 MiB every 0.05 s until it is stopped.
HOG = (
    f"{sys.executable} -c '\n"
    "import time\n"
    "chunks = []\n"
    "while True:\n"
    "    chunks.append(bytearray(50 * 1024 * 1024))\n"
    "    time.sleep(0.05)\n"
    "'"
)

RunPytest = Callable[..., pytest.RunResult]
LiveProcesses = Callable[[str], List[psutil.Process]]

#: Whether the kernel (a cgroup) enforces limits here, rather than the watchdog.
BY_KERNEL = MemoryGuard.for_this_process(limits=True).by_kernel
#: How an error names the limit a tree reached: the kernel kills at it, the watchdog sees it
#: passed.
REACHED_LIMIT = (
    "killed by the kernel's OOM killer at the memory limit of"
    if BY_KERNEL
    else "exceeded the memory limit of"
)
#: The clause of a timeout's error for a tree that reached its limit as it was stopped.
REACHED_AS_STOPPED = (
    "; the kernel's OOM killer killed it at its memory limit of"
    if BY_KERNEL
    else "; as it stopped, it passed its memory limit of"
)


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("memory")


def run_one(
    worktree: Path, config: FalsificationConfig, memory: Optional[int] = None
) -> TestExecutionResult:
    run = HypothesisRun(Hypothesis("hog", "x"), worktree, memory_limit=memory)
    (result,) = TestExecutor(config).execute_parallel([run])
    return result


def assert_stopped_at_its_limit(worktree: Path, mib: int) -> None:
    """The hypothesis ``hog`` of ``worktree``, run under a limit of ``mib`` MiB, is stopped
    there and gets no verdict."""
    result = run_one(worktree, FalsificationConfig(test_timeout=60, memory_limit=mib * MIB))

    assert result.result is TestResult.ERROR
    assert f"memory limit of {mib} MiB" in result.error_message


@pytest.fixture
def stopped_hog(worktree: Path, write_script: Callable[..., Path]) -> TestExecutionResult:
    """The result of a script that allocates 1 GiB/s under a 200 MiB limit."""
    write_script(worktree, "hog", f"exec {HOG}")
    return run_one(worktree, FalsificationConfig(test_timeout=120, memory_limit=LIMIT))


def test_a_tree_past_its_memory_limit_is_stopped_and_inconclusive(
    stopped_hog: TestExecutionResult,
) -> None:
    result = stopped_hog
    assert result.result is TestResult.ERROR
    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "memory limit of 200 MiB (peak " in result.error_message
    assert result.duration < 60


def test_the_metrics_of_a_tree_stopped_at_its_limit_agree_with_the_stop(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """Stopped before the sampler's first look, its metrics said a peak of 0 and one
    process beside an error naming a peak of 68 MiB."""
    grab = f"{sys.executable} -c 'import time; b = bytearray(200 * 1024 * 1024); time.sleep(30)'"
    write_script(worktree, "hog", f"{grab}\nexit 0")  # the shell waits: two processes

    result = run_one(worktree, FalsificationConfig(test_timeout=120, memory_limit=64 * MIB))

    assert result.result is TestResult.ERROR, result.error_message
    past = 0 if BY_KERNEL else 1  # the kernel stops a tree at its limit, the watchdog past it
    assert result.metrics["peak_rss_bytes"] >= 64 * MIB + past
    assert result.metrics["processes"] >= 2


@pytest.mark.skipif(
    BY_KERNEL,
    reason="the kernel enforces limits here: no process passes them, however briefly",
)
def test_a_spike_past_the_limit_between_two_looks_is_still_inconclusive(
    worktree: Path, write_script: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that fills a 400 MiB buffer and exits in a moment may slip between the
    watchdog's looks for new processes, on a busy machine above all (here they are a minute
    apart); the kernel's count at its exit still shows it passed a 300 MiB limit, and the
    script's failure was reported as a genuine one, SUPPORTED."""
    monkeypatch.setattr(memory_module, "FULL_SECONDS", 60.0)
    spike = "dd if=/dev/zero of=/dev/null bs=400M count=1 2>/dev/null"
    write_script(worktree, "hog", f"sleep 0.3\n{spike}\nexit 1")  # after the first look

    result = run_one(worktree, FalsificationConfig(test_timeout=120), memory=300 * MIB)

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "exceeded the memory limit of 300 MiB (peak " in result.error_message
    assert "between two looks of the watchdog" in result.error_message


#: Maps a file of 400 MiB, reads every page of it, says so and sleeps: its pages are shared
#: with every other process that maps the file.
MAP_FILE = (
    "import mmap, sys, time\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
    "    sum(m[i] for i in range(0, len(m), 4096))\n"
    "    print('mapped', flush=True)\n"
    "    time.sleep(float(sys.argv[2]))\n"
)


@pytest.mark.skipif(
    BY_KERNEL,
    reason="the kernel enforces limits here, and counts a page shared with others its own way",
)
def test_a_file_mapped_by_another_process_too_is_not_a_breach_at_the_exit(
    worktree: Path, write_script: Callable[..., Path], tmp_path: Path
) -> None:
    """The kernel's count at the exit takes shared pages whole; the watchdog, which saw the
    tree at that size, counted them once and found it under its limit."""
    data = tmp_path / "dataset"
    with data.open("wb") as written:  # in pieces: the runner's own peak must stay small
        for _ in range(400):
            written.write(b"\1" * MIB)
    mapper = tmp_path / "map.py"
    mapper.write_text(MAP_FILE)
    other = subprocess.Popen([sys.executable, str(mapper), str(data), "60"], stdout=subprocess.PIPE)
    try:
        assert other.stdout is not None
        assert other.stdout.readline() == b"mapped\n"
        write_script(worktree, "hog", f"{sys.executable} {mapper} {data} 1\nexit 1")

        result = run_one(worktree, FalsificationConfig(test_timeout=120), memory=300 * MIB)
    finally:
        other.kill()
        other.communicate()

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


def test_the_error_and_the_metrics_name_one_peak(stopped_hog: TestExecutionResult) -> None:
    """A new-user trial read 504.1 MiB in the error and 510.3 MiB in the table."""
    peak = format_size(stopped_hog.metrics["peak_rss_bytes"])
    assert f"memory limit of 200 MiB (peak {peak})" in stopped_hog.error_message


@pytest.mark.skipif(
    BY_KERNEL,
    reason="the kernel enforces limits here: it kills the tree, which no watchdog photographs",
)
def test_a_tree_past_its_memory_limit_is_frozen_before_it_is_photographed(
    stopped_hog: TestExecutionResult,
) -> None:
    """Frozen, it allocates no more while the picture is taken and the tree killed."""
    snapshot = stopped_hog.timeout_snapshot
    assert snapshot is not None
    states = {process["state"] for process in snapshot["processes"]}
    assert states == {psutil.STATUS_STOPPED}


def test_a_daemon_that_left_the_tree_still_counts_toward_its_scripts_limit(
    worktree: Path, write_script: Callable[..., Path], sleep_token: str
) -> None:
    """Started through a double fork, it is re-parented before any look at the tree's
    descendants; its marker still names its script."""
    daemon = (
        f"{sys.executable} -c '\n"
        "import time\n"
        "chunks = [bytearray(50 * 1024 * 1024) for _ in range(8)]\n"
        f"time.sleep({sleep_token})\n"
        "'"
    )
    write_script(
        worktree,
        "hog",
        f"(setsid {daemon} >/dev/null 2>&1 </dev/null &)\nsleep 5\nexit 0",
    )
    config = FalsificationConfig(test_timeout=120, memory_limit=LIMIT)

    result = run_one(worktree, config)

    assert result.result is TestResult.ERROR
    assert "memory limit of 200 MiB (peak " in result.error_message


def test_a_child_that_left_both_the_group_and_the_marker_is_killed_at_the_breach(
    worktree: Path,
    write_script: Callable[..., Path],
    sleep_token: str,
    live_processes: LiveProcesses,
) -> None:
    """Only the watchdog knew it: it was the script's child when it was counted."""
    hog = (
        f"{sys.executable} -c '\n"
        "import time\n"
        "chunks = [bytearray(50 * 1024 * 1024) for _ in range(8)]\n"
        f"time.sleep({sleep_token})\n"
        "'"
    )
    write_script(worktree, "hog", f"env -i setsid {hog} &\nsleep {sleep_token}")
    config = FalsificationConfig(test_timeout=120, memory_limit=LIMIT)

    result = run_one(worktree, config)

    assert result.result is TestResult.ERROR
    assert live_processes(sleep_token) == []


def test_a_child_that_allocates_counts_toward_its_scripts_limit(
    worktree: Path,
    write_script: Callable[..., Path],
    live_processes: LiveProcesses,
    sleep_token: str,
) -> None:
    # the token tells this test's child from the hogs of tests running beside it
    write_script(worktree, "hog", f"{HOG} {sleep_token}\nexit 1")
    config = FalsificationConfig(test_timeout=120, memory_limit=LIMIT)

    result = run_one(worktree, config)

    assert result.result is TestResult.ERROR
    assert f"{REACHED_LIMIT} 200 MiB" in result.error_message
    assert live_processes(sleep_token) == []


def test_a_run_limit_of_its_own_overrides_the_configured_one(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "hog", f"exec {HOG}")
    config = FalsificationConfig(test_timeout=120, memory_limit=64 * 1024 * MIB)

    result = run_one(worktree, config, memory=LIMIT)

    assert "memory limit of 200 MiB" in result.error_message


def test_a_script_within_its_limit_is_judged_as_usual(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "hog", "exit 1")
    config = FalsificationConfig(test_timeout=120, memory_limit=LIMIT)

    result = run_one(worktree, config)

    assert result.result is TestResult.FAIL
    assert result.error_message == ""


def test_workers_forked_from_a_large_process_count_their_shared_pages_once(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """Four workers forked from a process holding 80 MiB share its pages: their resident
    sizes add up to 400 MiB, but the tree uses about 80 (the kernel's cgroup counts a page
    once too)."""
    forking = (
        "import os, time\n"
        'held = b"x" * (80 * 1024 * 1024)\n'
        "for _ in range(4):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(2)\n"
        "        os._exit(0)\n"
        "time.sleep(1)\n"
        "raise SystemExit(1)\n"
    )
    write_script(worktree, "hog", f"exec {sys.executable} -S -c '{forking}'")
    config = FalsificationConfig(test_timeout=120, memory_limit=LIMIT)

    result = run_one(worktree, config)

    assert result.result is TestResult.FAIL, result.error_message


def test_forked_workers_that_then_allocate_their_own_pages_pass_the_limit(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """Once the shared pages were counted once, what the workers then allocate of their own
    still counts: 80 MiB shared plus four times 40 MiB pass 200 MiB."""
    forking = (
        "import os, time\n"
        'held = b"x" * (80 * 1024 * 1024)\n'
        "for _ in range(4):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.5)\n"
        '        own = b"y" * (40 * 1024 * 1024)\n'
        "        time.sleep(10)\n"
        "        os._exit(0)\n"
        "time.sleep(10)\n"
        "raise SystemExit(1)\n"
    )
    write_script(worktree, "hog", f"exec {sys.executable} -S -c '{forking}'")
    config = FalsificationConfig(test_timeout=120, memory_limit=LIMIT)

    result = run_one(worktree, config)

    assert result.result is TestResult.ERROR
    assert "memory limit of 200 MiB" in result.error_message
    assert result.duration < 8


def test_a_script_killed_by_sigkill_is_never_a_genuine_failure(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "hog", "kill -9 $$")

    result = run_one(worktree, FalsificationConfig(test_timeout=120))

    assert result.result is TestResult.ERROR
    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "killed by SIGKILL" in result.error_message


def test_the_metadata_memory_limit_reaches_the_run(
    run_pytest: RunPytest, git_repo: Path, write_script: Callable[..., Path], tmp_path: Path
) -> None:
    write_script(git_repo, "hog", f"exec {HOG}")
    (git_repo / ".falsification" / "config_hog.json").write_text(json.dumps({"memory": "200M"}))
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["memory"] == LIMIT
    assert record["status"] == "inconclusive"
    assert "memory limit of 200 MiB" in record["error_message"]


def test_the_report_says_what_enforced_a_limit_set_by_metadata_alone(
    run_pytest: RunPytest, git_repo: Path, write_script: Callable[..., Path], tmp_path: Path
) -> None:
    write_script(git_repo, "hog", "exit 0")
    (git_repo / ".falsification" / "config_hog.json").write_text(json.dumps({"memory": "200M"}))
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    run = json.loads(report.read_text())["run"]
    assert run["settings"]["memory_limit"] is None
    assert run["memory_enforcement"] == ("cgroup" if memory_parent()[0] else "watchdog")


def test_the_kernels_oom_killer_picks_a_script_before_the_runner(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "hog", "sleep 1\nsh -c 'cat /proc/$$/oom_score_adj'")

    result = run_one(worktree, FalsificationConfig(test_timeout=120))

    assert int(result.stdout) > int(Path("/proc/self/oom_score_adj").read_text())


#: Allocates (and touches) 1 GiB at once: past :data:`TRAP_BYTES`, the kernel kills it.
GRAB = f"{sys.executable} -c 'b = bytearray(1024 * 1024 * 1024)'"
#: Room for a runner and its script's shell, not for :data:`GRAB`.
TRAP_BYTES = 256 * MIB
#: Joins the cgroup whose ``cgroup.procs`` is its first argument, runs the hypothesis ``hog``
#: of the worktree its second names, and prints its status, exit code and message: the
#: kernel counts the kills in the runner's own cgroup, where its scripts run.
RUN_IN_CGROUP = """
import json, os, sys
from pathlib import Path
Path(sys.argv[1]).write_text(str(os.getpid()))
from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor
config = FalsificationConfig(test_timeout=120)
result = TestExecutor(config).execute_single(Hypothesis("hog", "x"), sys.argv[2])
print(json.dumps([result.status.value, result.exit_code, result.error_message]))
"""


@pytest.fixture
def oom_trap() -> Iterator[Path]:
    """The ``cgroup.procs`` file of a memory cgroup of 256 MiB that a runner joins, so that
    the kernel's OOM killer kills what its script then starts past that: a real OOM kill,
    without one of ours. Skipped where this process cannot make such a cgroup, or where
    joining it does not lead to a kill the machine counts."""
    folder = _memory_cgroup(TRAP_BYTES)
    try:
        procs = folder / "cgroup.procs"
        before = _oom_kills()
        probe = subprocess.run(["sh", "-c", f'echo $$ > "{procs}" && exec {GRAB}'], check=False)
        if probe.returncode != -signal.SIGKILL or _oom_kills() == before:
            pytest.skip(f"no OOM kill seen in {folder} (exit {probe.returncode})")
        yield procs
    finally:
        _remove_cgroup(folder)


def _oom_kills() -> int:
    """The machine's count of OOM kills, read here rather than by the code under test."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    pytest.skip("this kernel does not count OOM kills in /proc/vmstat")


def _memory_cgroup(limit: int) -> Path:
    """A new memory cgroup of ``limit`` bytes: a child of a delegated cgroup v2, else of
    this process's cgroup v1 memory folder; else skip."""
    parent, why_not = memory_parent()
    if parent is not None:
        try:
            path = ScriptCgroup.create(parent, memory_max=limit).path
        except CgroupError as error:
            pytest.skip(str(error))
        (path / "memory.oom.group").write_text("0")  # kill the allocation, not its runner
        return path
    v1 = next(
        (path for names, path in machine.own_cgroup_folders() if "memory" in names.split(",")), None
    )
    if v1 is None:
        pytest.skip(f"no memory cgroup to make a small one in: {why_not}")
    folder = v1 / f"oom-trap-{uuid.uuid4().hex[:12]}"
    try:
        folder.mkdir()
        (folder / "memory.limit_in_bytes").write_text(str(limit))
    except OSError as error:
        with contextlib.suppress(OSError):
            folder.rmdir()
        pytest.skip(f"cannot make a memory cgroup v1 in {v1}: {error}")
    return folder


def _remove_cgroup(folder: Path) -> None:
    """Kill what is left in the cgroup, wait until it is empty, remove it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [int(pid) for pid in (folder / "cgroup.procs").read_text().split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    folder.rmdir()


def run_in(procs: Path, worktree: Path) -> Tuple[str, int, str]:
    """The status, exit code and message of the hypothesis ``hog`` of ``worktree``, run by a
    runner in the cgroup of ``procs``."""
    completed = subprocess.run(
        [sys.executable, "-c", RUN_IN_CGROUP, str(procs), str(worktree)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    status, exit_code, message = json.loads(completed.stdout.splitlines()[-1])
    return status, exit_code, message


@pytest.mark.parametrize(("ending", "exit_code"), [("exit 1", 1), ("exit 0", 0)])
def test_an_outcome_while_the_kernel_killed_a_process_for_memory_is_inconclusive(
    worktree: Path,
    write_script: Callable[..., Path],
    oom_trap: Path,
    ending: str,
    exit_code: int,
) -> None:
    """A test runner whose worker the OOM killer killed reports a failure (exit 1), and a
    script that checks the bug no longer happens (``! repro``) passes: that was a genuine
    outcome, SUPPORTED or FALSIFIED, with no memory limit of the run in force."""
    write_script(worktree, "hog", f"{GRAB}\n{ending}")

    status, code, message = run_in(oom_trap, worktree)

    assert (status, code) == ("inconclusive", exit_code), message
    assert "the kernel's OOM killer killed 1 process in the runner's cgroup" in message
    assert "--hypotheses-memory" in message


def test_a_script_the_kernel_killed_for_memory_is_reported_as_such(
    worktree: Path, write_script: Callable[..., Path], oom_trap: Path
) -> None:
    write_script(worktree, "hog", f"exec {GRAB}")

    status, _exit_code, message = run_in(oom_trap, worktree)

    assert status == "inconclusive", message
    assert "killed by SIGKILL, and the kernel's OOM killer killed" in message
    assert "most likely ran out of memory" in message


def test_a_limit_below_what_a_shell_takes_is_refused_from_python(tmp_path: Path) -> None:
    """A limit of a few KiB would stop every script as it starts."""
    with pytest.raises(ValueError, match="memory_limit must be None or a whole number"):
        FalsificationConfig(memory_limit=4096)
    with pytest.raises(ValueError, match=r"must be a whole number of bytes from 1048576 \(1 MiB\)"):
        HypothesisRun(Hypothesis("hog", "x"), tmp_path, memory_limit=4096)


def test_a_process_started_before_the_scripts_score_was_set_is_picked_first_too(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    ids = [f"h{index}" for index in range(40)]
    for hypothesis_id in ids:  # the child starts at once, perhaps before the runner's write
        write_script(worktree, hypothesis_id, "sh -c 'sleep 0.5; cat /proc/$$/oom_score_adj'")
    runs = [HypothesisRun(Hypothesis(hypothesis_id, "x"), worktree) for hypothesis_id in ids]
    config = FalsificationConfig(test_timeout=120, max_concurrent_tests=len(ids))

    results = TestExecutor(config).execute_parallel(runs)

    runner = int(Path("/proc/self/oom_score_adj").read_text())
    assert [int(result.stdout) > runner for result in results] == [True] * len(ids)


def test_a_daemon_a_limited_script_left_is_stopped_when_the_script_ends(
    worktree: Path, write_script: Callable[..., Path], tmp_path: Path
) -> None:
    pid_file = tmp_path / "daemon.pid"
    write_script(
        worktree,
        "leaves",
        f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 60' >/dev/null 2>&1 </dev/null &\n"
        "sleep 0.5",  # the watchdog's look for new processes has found the daemon by then
    )
    write_script(worktree, "later", f"sleep 3; kill -0 $(cat {pid_file})")  # fails: it is gone
    runs = [HypothesisRun(Hypothesis(name, "x"), worktree) for name in ("leaves", "later")]
    config = FalsificationConfig(test_timeout=120, memory_limit=LIMIT, max_concurrent_tests=2)

    leaves, later = TestExecutor(config).execute_parallel(runs)

    assert leaves.result is TestResult.PASS
    assert later.result is TestResult.FAIL, later.stderr


def test_a_tree_past_its_limit_while_it_stops_at_its_deadline_says_both(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "hog", f'trap "exec {HOG}" TERM\nsleep 60 & wait')
    config = FalsificationConfig(test_timeout=1, kill_grace=10, memory_limit=LIMIT)

    result = run_one(worktree, config)

    assert result.result is TestResult.TIMEOUT
    assert result.error_message.startswith("Test exceeded 1s timeout")
    assert f"{REACHED_AS_STOPPED} 200 MiB (peak " in result.error_message


def test_a_tree_whose_sharer_ended_is_judged_again_before_it_passes_unseen(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """200 MiB shared with a forked child count once; once the child has ended they are the
    parent's alone, and 150 MiB more take it past 300 MiB: a bound kept from the walk made
    while the child shared them hid that, and the script's exit 0 stood."""
    program = (
        "import os, time\n"
        "shared = bytearray(200 * 1024 * 1024)\n"
        "for i in range(0, len(shared), 4096): shared[i] = 1\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(0.8)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "more = bytearray(150 * 1024 * 1024)\n"
        "for i in range(0, len(more), 4096): more[i] = 1\n"
        "time.sleep(0.15)\n"
    )
    write_script(worktree, "hog", f"exec {sys.executable} -S -c '{program}'")
    assert_stopped_at_its_limit(worktree, 300)


def test_a_process_whose_parent_ended_at_once_is_still_watched(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    """A look that reached a process through its parent read none of its markers; the
    parent ended before the tree was followed, and no later look read them: it grew
    unwatched."""
    grow = worktree / "grow.py"
    grow.write_text(
        "import time\n"
        "held = []\n"
        "for _ in range(40):\n"
        "    held.append(bytearray(10 * 1024 * 1024))\n"
        "    time.sleep(0.05)\n"
        "time.sleep(5)\n"
    )
    middle = worktree / "middle.py"
    middle.write_text(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(grow)!r}])\n"
        "time.sleep(0.03)\n"
    )
    write_script(worktree, "hog", f"sleep 0.3\n{sys.executable} {middle}\nsleep 10")
    assert_stopped_at_its_limit(worktree, 150)
