"""Limits hold under pressure: the concurrency cap, bounded memory, and the open-files limit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, List

import psutil
import pytest

from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor, TestResult

LiveProcesses = Callable[[str], List[psutil.Process]]
MostAliveAtOnce = Callable[[Path, FalsificationConfig, List[str]], int]


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("limits")


@pytest.mark.parametrize("limit", [1, 3])
def test_no_more_than_the_limit_of_scripts_are_alive_at_once(
    worktree: Path,
    write_script: Callable[..., Path],
    most_alive_at_once: MostAliveAtOnce,
    limit: int,
    tmp_path: Path,
) -> None:
    # the scripts meet: each waits (a minute at most) until `limit` of them have started, so
    # that a slow start on a busy machine cannot hide that `limit` may run at once
    met = tmp_path / "met"
    met.mkdir()
    meet = (
        f'touch {met}/"$HYPOTHESIS_ID"; n=0\n'
        f'while [ "$(ls {met} | wc -l)" -lt {limit} ] && [ $n -lt 1200 ]; do\n'
        "  sleep 0.05; n=$((n + 1))\ndone\nsleep 0.3"
    )
    ids = [f"h{i}" for i in range(4)]
    for hypothesis_id in ids:
        write_script(worktree, hypothesis_id, meet)
    config = FalsificationConfig(test_timeout=30, max_concurrent_tests=limit)

    assert most_alive_at_once(worktree, config, ids) == limit


def test_floods_on_both_streams_at_once_do_not_deadlock(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "h1", "head -c 8000000 /dev/zero >&2 & head -c 9000000 /dev/zero; wait")
    config = FalsificationConfig(test_timeout=30, max_output_bytes=1000)
    result = TestExecutor(config).execute_single(Hypothesis("h1", "x"), worktree)
    assert result.result is TestResult.PASS
    assert (result.stdout_bytes, result.stderr_bytes) == (9_000_000, 8_000_000)
    assert result.stdout_truncated
    assert result.stderr_truncated


FLOOD_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor

    def peak_rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    worktree = sys.argv[1]
    executor = TestExecutor(FalsificationConfig(test_timeout=300))
    executor.execute_single(Hypothesis("warmup", "x"), worktree)  # imports, loop, threads
    before = peak_rss()
    result = executor.execute_single(Hypothesis("flood", "x"), worktree)
    print(json.dumps({
        "growth": peak_rss() - before,
        "result": result.result.value,
        "bytes": result.stdout_bytes,
        "truncated": result.stdout_truncated,
        "head": result.stdout[:6],
        "tail": result.stdout[-5:],
        "kept": len(result.stdout),
        "marker": "bytes omitted; 1073741835 bytes in all" in result.stdout,
    }))
    """
)


def test_a_gibibyte_of_output_keeps_memory_bounded(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "warmup", "echo warm")
    write_script(worktree, "flood", "echo FIRST; head -c 1073741824 /dev/zero; echo LAST")
    child = subprocess.run(
        [sys.executable, "-c", FLOOD_CHILD, str(worktree)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["growth"] < 50 * 1024 * 1024
    assert (report["result"], report["bytes"], report["truncated"]) == ("pass", 2**30 + 11, True)
    assert (report["head"], report["tail"], report["marker"]) == ("FIRST\n", "LAST\n", True)
    assert report["kept"] < 2 * 1024 * 1024


EMFILE_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor

    worktree, count = sys.argv[1], int(sys.argv[2])
    ids = [f"h{i}" for i in range(count)]
    config = FalsificationConfig(test_timeout=60, kill_grace=0.2, max_concurrent_tests=count)
    results = TestExecutor(config).execute_parallel(
        [Hypothesis(i, "x") for i in ids], {i: worktree for i in ids}
    )
    print(json.dumps([[r.hypothesis_id, r.result.value, r.error_message] for r in results]))
    """
)


def test_running_out_of_open_files_is_an_error_per_hypothesis_not_a_crash(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    count = 100
    for i in range(count):
        write_script(worktree, f"h{i}", "sleep 1")
    child = subprocess.run(
        [sys.executable, "-c", EMFILE_CHILD, str(worktree), str(count)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (child.returncode, child.stderr) == (0, "")
    rows = json.loads(child.stdout)
    assert [row[0] for row in rows] == [f"h{i}" for i in range(count)]
    outcomes = {row[1] for row in rows}
    assert outcomes == {"pass", "error"}
    assert all("Too many open files" in row[2] for row in rows if row[1] == "error")
