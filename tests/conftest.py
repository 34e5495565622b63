"""Fixtures shared by the test modules: real git repositories, worktrees and scripts."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import psutil
import pytest

from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor, TestResult
from pytest_parallel_hypotheses.finding.git import git_environment


def git(cwd: Path, *args: str) -> str:
    """Run git for a test; fails the test with git's own message if git refuses."""
    env = {
        **git_environment(),
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    completed = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A git repository with one commit, in ``tmp_path/repo``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("a project\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def git_command() -> Callable[..., str]:
    """``git_command(cwd, *args)``: git for a test, with an identity to commit as."""
    return git


MakeWorktree = Callable[[str], Path]
RunPytest = Callable[..., pytest.RunResult]


@pytest.fixture
def run_pytest(pytester: pytest.Pytester, tmp_path: Path) -> RunPytest:
    """pytest in this process, with node ids relative to ``tmp_path`` (where repos are made).

    The Hypothesis library's plugin imports the whole library at every session's end, which an
    in-process run pays each time, and pytest-asyncio warns about its unset options; the tests
    of coexistence with both run them explicitly.
    """

    def run(*args: str) -> pytest.RunResult:
        plugins_off = ("-p", "no:hypothesispytest", "-p", "no:asyncio")
        return pytester.runpytest(f"--rootdir={tmp_path}", *plugins_off, *args)

    return run


@pytest.fixture
def make_worktree(git_repo: Path, tmp_path: Path) -> MakeWorktree:
    """Add a real worktree on a new branch ``hyp-<name>`` in ``tmp_path/worktrees/<name>``."""

    def make(name: str) -> Path:
        path = tmp_path / "worktrees" / name
        git(git_repo, "worktree", "add", "-q", "-b", f"hyp-{name}", str(path))
        return path

    return make


def _write_script(worktree: Path, hypothesis_id: str, body: str, executable: bool = True) -> Path:
    folder = worktree / ".falsification"
    folder.mkdir(exist_ok=True)
    script = folder / f"test_{hypothesis_id}.sh"
    script.write_text("#!/bin/sh\n" + body + "\n")
    if executable:
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


WriteScript = Callable[..., Path]


def _write_metadata(worktree: Path, hypothesis_id: str, data: object) -> Path:
    path = worktree / ".falsification" / f"config_{hypothesis_id}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def write_metadata() -> Callable[[Path, str, object], Path]:
    """``write_metadata(worktree, id, data)`` writes ``.falsification/config_<id>.json``: a
    string as it is, anything else as JSON."""
    return _write_metadata


@pytest.fixture
def write_script() -> WriteScript:
    """``write_script(worktree, id, body, executable=True)`` writes ``.falsification/test_<id>.sh``
    as ``#!/bin/sh`` followed by ``body``."""
    return _write_script


def live_processes_with(marker: str) -> List[psutil.Process]:
    """Live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if marker in " ".join(proc.info["cmdline"] or ()):
            found.append(proc)
    return found


@pytest.fixture
def live_processes() -> Callable[[str], List[psutil.Process]]:
    """``live_processes(token)``: live, non-zombie processes whose command line has ``token``."""
    return live_processes_with


@pytest.fixture
def sleep_token(tmp_path: Path) -> Iterator[str]:
    """A sleep duration unique to this test: ``sleep <token>`` children can be found afterwards.

    Whatever still runs with the token, or runs a script from this test's folder, when the test
    ends is killed, so one failing test cannot leak processes into the next.
    """
    token = f"{86400 + random.randrange(10**6)}.{random.randrange(10**6):06d}"
    yield token
    for proc in live_processes_with(token) + live_processes_with(str(tmp_path)):
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _group(proc: psutil.Process) -> Optional[int]:
    """The process group: one per running script (a forked shell is briefly two processes)."""
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def _most_alive_at_once(worktree: Path, config: FalsificationConfig, ids: List[str]) -> int:
    """Run the scripts ``ids`` of ``worktree`` with ``config``; the most of them seen alive at
    once (by process group), after checking that every one passed."""
    folder = str(worktree / ".falsification")
    alive: List[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            alive.append(len({_group(proc) for proc in live_processes_with(folder)} - {None}))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results = TestExecutor(config).execute_parallel(
            [Hypothesis(i, "x") for i in ids], {i: worktree for i in ids}
        )
    finally:
        done.set()
        sampler.join()
    assert [r.result for r in results] == [TestResult.PASS] * len(ids)
    return max(alive)


MostAliveAtOnce = Callable[[Path, FalsificationConfig, List[str]], int]


@pytest.fixture
def most_alive_at_once() -> MostAliveAtOnce:
    """``most_alive_at_once(worktree, config, ids)``: run the scripts, and the most of them
    that were alive at once."""
    return _most_alive_at_once


#: What a pytest that a test starts runs without: the Hypothesis library's plugin imports the
#: whole library at the session's end, pytest-asyncio warns about its unset options, and the
#: cache would write into the test's folder.
PLUGINS_OFF = ("-p", "no:hypothesispytest", "-p", "no:asyncio", "-p", "no:cacheprovider")


def started_pytest(
    pytester: pytest.Pytester, tmp_path: Path, *args: str, **popen: Any
) -> subprocess.Popen[bytes]:
    """pytest with ``args`` in a process of its own (node ids relative to ``tmp_path``), its
    output and errors on one pipe, taking signals as a terminal's foreground job does: a test
    can follow it while it runs, and interrupt it. ``popen`` adds to how it is started (in a
    session of its own, say)."""
    command = [sys.executable, "-m", "pytest", f"--rootdir={tmp_path}", *PLUGINS_OFF, *args]
    return pytester.popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=take_signals_as_a_terminal_does,
        **popen,
    )


def take_signals_as_a_terminal_does() -> None:
    """For ``preexec_fn``, in a child pytest: SIGINT and SIGHUP at their defaults. A suite run
    as a background job (``pytest &`` in a CI script) passes SIGINT on ignored, and a process
    that starts with SIGINT ignored never sees the Ctrl-C a test sends it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
