"""Processes that try hard to outlive the run: fork-and-exit chains, in the script's group and
after ``setsid``. However their pids change, nothing is left once the run returns."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from pathlib import Path
from typing import Callable, Iterator, List

import psutil
import pytest

from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor, TestResult

QUICK = FalsificationConfig(test_timeout=120, kill_grace=0.3)
#: How long a chain must stay silent after the run to count as stopped (it beats every 5 ms).
QUIET_SECONDS = 1.0

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
