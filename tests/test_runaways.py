"""Processes that try hard to outlive the run: fork-and-exit chains, in the script's group and
after ``setsid``, and scripts whose runner is killed. Nothing is left once the run returns, or
a few seconds after its runner died."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List

import psutil
import pytest

from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor, TestResult
from pytest_parallel_hypotheses.engine.tree import Marker, ProcessTree

QUICK = FalsificationConfig(test_timeout=120, kill_grace=0.3)
#: How long a chain must stay silent after the run to count as stopped (it beats every 5 ms).
QUIET_SECONDS = 1.0
#: Generous bound for what takes a few seconds: catches hangs, not slowness.
HANG_SECONDS = 60

WriteScript = Callable[..., Path]


def write_hopper(folder: Path) -> Path:
    """A program that appends a line to ``beats`` beside it, starts a copy of itself in the
    background and exits, every few milliseconds: its pid never stays the same for long."""
    hopper = folder / "hop.sh"
    hopper.write_text('#!/bin/sh\necho x >> "$(dirname "$0")/beats"\nsleep 0.005\n"$0" &\nexit 0\n')
    hopper.chmod(hopper.stat().st_mode | stat.S_IXUSR)
    return hopper


def beats(folder: Path) -> int:
    path = folder / "beats"
    return len(path.read_bytes()) if path.exists() else 0


@pytest.mark.parametrize("launch", ["", "setsid "], ids=["in-group", "after-setsid"])
def test_a_fork_and_exit_chain_is_stopped_when_the_run_returns(
    worktree_with_hopper: Path, write_script: WriteScript, launch: str
) -> None:
    worktree = worktree_with_hopper
    write_script(
        worktree,
        "h1",
        f"{launch}{worktree / 'hop.sh'} >/dev/null 2>&1 </dev/null &\n"
        'while [ ! -s beats ] || [ "$(wc -l < beats)" -lt 20 ]; do sleep 0.01; done\n'
        "exit 0",
    )

    result = TestExecutor(QUICK).execute_single(Hypothesis("h1", "x"), worktree)

    assert result.result is TestResult.PASS, result.error_message
    after_run = beats(worktree)
    time.sleep(QUIET_SECONDS)
    assert beats(worktree) == after_run, "the chain still forks after the run returned"


@pytest.fixture
def worktree_with_hopper(
    make_worktree: Callable[[str], Path], live_processes: Callable[[str], List[psutil.Process]]
) -> Iterator[Path]:
    """A worktree with the hopper; a chain that survives the test is frozen and killed after
    it, so that a failure does not leave it running."""
    worktree = make_worktree("runaway")
    hopper = write_hopper(worktree)
    yield worktree
    for _ in range(100):
        chain = live_processes(str(hopper))
        if not chain:
            return
        for proc in chain:
            with contextlib.suppress(psutil.Error, OSError):
                os.killpg(os.getpgid(proc.pid), signal.SIGSTOP)
                proc.suspend()
        for proc in chain:
            with contextlib.suppress(psutil.Error, OSError):
                os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
                proc.kill()


LIBRARY_RUN = """
import sys
from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor

worktree, ids = sys.argv[1], sys.argv[2:]
TestExecutor(FalsificationConfig(test_timeout=600)).execute_parallel(
    [Hypothesis(i, "x") for i in ids], {i: worktree for i in ids}
)
"""


def pytest_run(tmp_path: Path, repo: Path) -> List[str]:
    plugins_off = ["-p", "no:hypothesispytest", "-p", "no:asyncio", "-p", "no:cacheprovider"]
    return [
        sys.executable,
        "-m",
        "pytest",
        f"--rootdir={tmp_path}",
        *plugins_off,
        f"--hypotheses={repo}",
    ]


@pytest.mark.parametrize(
    ("runner", "signum"),
    [("pytest", signal.SIGKILL), ("library", signal.SIGKILL), ("library", signal.SIGTERM)],
)
def test_no_script_outlives_a_killed_runner_by_more_than_a_few_seconds(
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
    live_processes: Callable[[str], List[psutil.Process]],
    runner: str,
    signum: int,
) -> None:
    """The runner dies without any clean-up (or, as a library, with no SIGTERM handler of its
    own); its scripts, their children and a ``setsid`` escapee must go all the same."""
    ids = ["s1", "s2", "s3"]
    for hypothesis_id in ids:
        write_script(
            git_repo,
            hypothesis_id,
            f"setsid sleep {sleep_token} >/dev/null 2>&1 </dev/null &\n"
            f"sleep {sleep_token} &\nsleep {sleep_token}",
        )
    if runner == "pytest":
        command = pytest_run(tmp_path, git_repo)
    else:
        command = [sys.executable, "-c", LIBRARY_RUN, str(git_repo), *ids]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,  # away from this project's configuration and its pytest options
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: len(live_processes(sleep_token)) == 3 * len(ids), "the scripts to start")
        process.send_signal(signum)
        process.wait(timeout=HANG_SECONDS)
        wait_for(lambda: live_processes(sleep_token) == [], "the scripts to be stopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"waited {HANG_SECONDS}s for {what}"
        time.sleep(0.05)


class HeldProcess:
    """An enclosure holding one process that carries no marker (as a cgroup holds any)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def kill(self) -> None:
        self.process.kill()


def test_a_tree_kills_its_enclosure_which_may_hold_processes_no_look_can_find(
    sleep_token: str, live_processes: Callable[[str], List[psutil.Process]]
) -> None:
    unmarked = subprocess.Popen(["sleep", sleep_token], env={}, start_new_session=True)
    tree = ProcessTree(Marker("PPH_RUN_enclosure_test", "1"), enclosure=HeldProcess(unmarked))

    asyncio.run(tree.stop(grace=0.1))

    assert unmarked.wait(timeout=HANG_SECONDS) == -signal.SIGKILL
    assert live_processes(sleep_token) == []


#: Ignores SIGTERM and forks in a tight loop, each process exiting as soon as its child is
#: born: no look at the process table catches a live one. It beats every 200 generations and
#: gives up after 30 seconds, so that a failing test does not leave it running for long.
WALKER = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
beats, end, generation = sys.argv[1], time.monotonic() + 30, 0
with open(beats + ".group", "w") as group:
    group.write(str(os.getpgrp()))
while time.monotonic() < end:
    if os.fork():
        os._exit(0)
    generation += 1
    if generation % 200 == 0:
        with open(beats, "a") as beat:
            beat.write("x")
"""


@pytest.fixture
def walker(make_worktree: Callable[[str], Path]) -> Iterator[Path]:
    """A worktree with the walker; one that survives the test has its group killed after it."""
    worktree = make_worktree("walker")
    (worktree / "walk.py").write_text(WALKER)
    yield worktree
    with contextlib.suppress(OSError, ValueError):
        os.killpg(int((worktree / "beats.group").read_text()), signal.SIGKILL)


@pytest.mark.parametrize(
    ("ending", "expected"),
    [("sleep 100", TestResult.TIMEOUT), ("sleep 0.5; exit 1", TestResult.FAIL)],
    ids=["at-the-deadline", "on-its-own"],
)
def test_a_fork_walker_that_ignores_sigterm_is_stopped_when_the_run_returns(
    walker: Path, write_script: WriteScript, ending: str, expected: TestResult
) -> None:
    write_script(walker, "h1", f"{sys.executable} walk.py {walker / 'beats'} &\n{ending}")
    config = FalsificationConfig(test_timeout=1.0, kill_grace=0.3)

    result = TestExecutor(config).execute_single(Hypothesis("h1", "x"), walker)

    assert result.result is expected, result.error_message
    after_run = beats(walker)
    time.sleep(QUIET_SECONDS)
    assert beats(walker) == after_run, "the walker still forks after the run returned"


NEXT_PID = "/proc/sys/kernel/ns_last_pid"


def _leader_with_pid(pid: int) -> subprocess.Popen[bytes]:
    """An unrelated session leader given ``pid``, as a wrap-around of the pids would."""
    for _ in range(50):
        with open(NEXT_PID, "w") as next_pid:
            next_pid.write(str(pid - 1))
        stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
        if stranger.pid == pid:
            return stranger
        stranger.kill()
        stranger.wait()
    pytest.skip(f"pid {pid} was taken by other processes each time")


@pytest.mark.skipif(not os.access(NEXT_PID, os.W_OK), reason="needs to choose the next pid")
def test_a_group_seen_gone_never_gets_a_signal_when_its_number_leads_another_group() -> None:
    """Once the script's leader is reaped and its group empty, the group's number is free,
    and a stranger's group can take it while daemons of the script are stopped (whose grace
    lasts seconds): signalled by number, the stranger was killed."""
    leader = subprocess.Popen(["sleep", "60"], start_new_session=True)
    leader.kill()
    leader.wait()
    tree = ProcessTree(Marker(f"PPH_RUN_test{os.getpid()}_", "0"), pgid=leader.pid)
    assert tree.group_is_empty()
    stranger = _leader_with_pid(leader.pid)
    try:
        asyncio.run(tree.stop(grace=0.2))

        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
