"""An exit status is never invented: with SIGCHLD ignored, which a parent can hand down through
``exec``, the system reaps each script itself, and a lost status once read as 0 (falsified)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

RUN_IGNORING_SIGCHLD = """
import signal, sys, threading
from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
worktree, where = sys.argv[1], sys.argv[2]
results = []
def run():
    executor = TestExecutor(FalsificationConfig(test_timeout=30))
    results.append(executor.execute_single(Hypothesis("fails", "x"), worktree))
if where == "main":
    run()
else:
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
print(results[0].result.name, results[0].exit_code, results[0].error_message)
"""


def run_ignoring_sigchld(worktree: Path, where: str) -> str:
    """The outcome of the one script, in a child with SIGCHLD ignored and every warning shown
    (a process the system reaped must not look as if it still ran)."""
    completed = subprocess.run(
        [sys.executable, "-X", "dev", "-c", RUN_IGNORING_SIGCHLD, str(worktree), where],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Warning" not in completed.stderr, completed.stderr
    return completed.stdout.strip()


@pytest.fixture
def failing(make_worktree: Callable[[str], Path], write_script: Callable[..., Path]) -> Path:
    worktree = make_worktree("sigchld")
    write_script(worktree, "fails", "exit 1")
    return worktree


def test_an_executor_made_in_the_main_thread_reads_exit_statuses_with_sigchld_ignored(
    failing: Path,
) -> None:
    assert run_ignoring_sigchld(failing, "main") == "FAIL 1"


def test_a_status_lost_to_an_ignored_sigchld_is_an_error_never_a_pass(failing: Path) -> None:
    outcome = run_ignoring_sigchld(failing, "thread")
    assert outcome.startswith("ERROR"), outcome
    assert "SIGCHLD" in outcome or "could not start" in outcome
