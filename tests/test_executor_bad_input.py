"""Bad input becomes a clear ERROR for that hypothesis alone; nothing unsafe is ever run."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from pytest_parallel_hypotheses import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.engine import ahead

QUICK = FalsificationConfig(test_timeout=20, kill_grace=0.2)


@pytest.fixture
def worktree(make_worktree: Callable[[str], Path]) -> Path:
    return make_worktree("bad-input")


def write_file(path: Path, text: str, executable: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def leaves_a_trace(trace: Path) -> str:
    """A script that proves it ran by creating ``trace``."""
    return f"#!/bin/sh\ntouch '{trace}'\n"


def run_with_a_good_neighbour(
    worktree: Path, write_script: Callable[..., Path], bad_id: str
) -> Dict[str, TestExecutionResult]:
    """Run ``bad_id`` between two good hypotheses and return every result by id."""
    write_script(worktree, "before", "echo before")
    write_script(worktree, "after", "echo after")
    ids = ["before", bad_id, "after"]
    results = TestExecutor(QUICK).execute_parallel(
        [Hypothesis(i, "x") for i in ids], {i: worktree for i in ids}
    )
    assert [r.hypothesis_id for r in results] == ids
    assert [(r.result, r.stdout) for r in (results[0], results[2])] == [
        (TestResult.PASS, "before\n"),
        (TestResult.PASS, "after\n"),
    ]
    return {r.hypothesis_id: r for r in results}


def test_a_missing_worktree_entry_is_an_error(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_script(worktree, "orphan", "exit 0")
    write_script(worktree, "good", "exit 0")
    results = TestExecutor(QUICK).execute_parallel(
        [Hypothesis("orphan", "x"), Hypothesis("good", "y")], {"good": worktree}
    )
    assert [(r.hypothesis_id, r.result) for r in results] == [
        ("orphan", TestResult.ERROR),
        ("good", TestResult.PASS),
    ]
    assert "no worktree was given for hypothesis 'orphan'" in results[0].error_message


def test_a_worktree_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    result = TestExecutor(QUICK).execute_single(Hypothesis("h1", "x"), tmp_path / "gone")
    assert result.result is TestResult.ERROR
    assert "worktree not found" in result.error_message


def test_a_missing_script_is_not_found(worktree: Path, write_script: Callable[..., Path]) -> None:
    result = run_with_a_good_neighbour(worktree, write_script, "ghost")["ghost"]
    assert (result.result, result.exit_code) == (TestResult.ERROR, 127)
    assert "not found" in result.error_message
    assert "test_ghost.sh" in result.error_message


def test_a_script_that_is_not_executable_is_refused_unrun(
    worktree: Path, write_script: Callable[..., Path], tmp_path: Path
) -> None:
    trace = tmp_path / "ran"
    write_file(worktree / ".falsification" / "test_plain.sh", leaves_a_trace(trace), False)
    result = run_with_a_good_neighbour(worktree, write_script, "plain")["plain"]
    assert (result.result, result.exit_code) == (TestResult.ERROR, 126)
    assert "not executable" in result.error_message
    assert not trace.exists()


def test_a_script_without_a_shebang_is_an_error(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_file(worktree / ".falsification" / "test_bare.sh", "echo hi\n")
    result = run_with_a_good_neighbour(worktree, write_script, "bare")["bare"]
    assert result.result is TestResult.ERROR
    assert "first line must be a shebang" in result.error_message


def test_a_windows_line_ending_in_the_shebang_is_an_error(
    worktree: Path, write_script: Callable[..., Path]
) -> None:
    write_file(worktree / ".falsification" / "test_crlf.sh", "#!/bin/sh\r\nexit 0\r\n")
    result = run_with_a_good_neighbour(worktree, write_script, "crlf")["crlf"]
    assert (result.result, result.exit_code) == (TestResult.ERROR, 127)
    assert "Windows line endings" in result.error_message


def test_a_dangling_symlink_is_not_found(worktree: Path, write_script: Callable[..., Path]) -> None:
    (worktree / ".falsification").mkdir()
    (worktree / ".falsification" / "test_dangling.sh").symlink_to(worktree / "nowhere.sh")
    result = run_with_a_good_neighbour(worktree, write_script, "dangling")["dangling"]
    assert result.result is TestResult.ERROR
    assert "not found" in result.error_message


def test_a_symlink_loop_is_an_error(worktree: Path, write_script: Callable[..., Path]) -> None:
    loop = worktree / ".falsification" / "test_loop.sh"
    loop.parent.mkdir()
    loop.symlink_to(loop)
    result = run_with_a_good_neighbour(worktree, write_script, "loop")["loop"]
    assert result.result is TestResult.ERROR
    assert "cannot be resolved" in result.error_message


def test_a_script_linked_outside_its_worktree_is_refused_unrun(
    worktree: Path, write_script: Callable[..., Path], tmp_path: Path
) -> None:
    trace = tmp_path / "ran"
    outside = write_file(tmp_path / "outside" / "evil.sh", leaves_a_trace(trace))
    (worktree / ".falsification").mkdir()
    (worktree / ".falsification" / "test_escape.sh").symlink_to(outside)
    result = run_with_a_good_neighbour(worktree, write_script, "escape")["escape"]
    assert result.result is TestResult.ERROR
    assert "outside its worktree" in result.error_message
    assert not trace.exists()


@pytest.mark.parametrize(
    ("bad_id", "planted"),
    [
        ("../x", "test_../x.sh"),
        ("/etc", "test_/etc.sh"),
        ("", "test_.sh"),
        ("a\0b", None),
        ("sub/dir", "test_sub/dir.sh"),
    ],
    ids=["parent-dir", "absolute", "empty", "nul", "slash"],
)
def test_an_unsafe_id_is_refused_before_touching_the_disk(
    worktree: Path,
    write_script: Callable[..., Path],
    tmp_path: Path,
    bad_id: str,
    planted: str,
) -> None:
    trace = tmp_path / "ran"
    if planted is not None:  # a script the unsafe id would reach if it were used as a path
        write_file(worktree / ".falsification" / planted, leaves_a_trace(trace))
    result = run_with_a_good_neighbour(worktree, write_script, bad_id)[bad_id]
    assert result.result is TestResult.ERROR
    assert "not a safe file-name token" in result.error_message
    assert not trace.exists()


def plant_traces(worktree: Path, ids: List[str], tmp_path: Path) -> List[Path]:
    traces = [tmp_path / f"ran-{i}" for i in ids]
    for hypothesis_id, trace in zip(ids, traces):
        write_file(worktree / ".falsification" / f"test_{hypothesis_id}.sh", leaves_a_trace(trace))
    return traces


@pytest.mark.parametrize("twin", ["h1", "H1"], ids=["same", "case-folded"])
def test_duplicate_ids_raise_before_anything_runs(
    worktree: Path, tmp_path: Path, twin: str
) -> None:
    traces = plant_traces(worktree, ["h1", "h2", twin], tmp_path)
    hypotheses = [Hypothesis("h1", "x"), Hypothesis("h2", "y"), Hypothesis(twin, "z")]
    with pytest.raises(ValueError, match="given twice"):
        TestExecutor(QUICK).execute_parallel(hypotheses, {h.id: worktree for h in hypotheses})
    assert [t for t in traces if t.exists()] == []


@pytest.mark.asyncio
async def test_duplicate_runs_raise_before_the_stream_starts(
    worktree: Path, tmp_path: Path
) -> None:
    traces = plant_traces(worktree, ["h1"], tmp_path)
    run = HypothesisRun(Hypothesis("h1", "x"), worktree)
    with pytest.raises(ValueError, match="given twice"):
        AsyncTestExecutor(QUICK).as_completed([run, run])
    assert not traces[0].exists()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("max_concurrent_tests", 0), ("test_timeout", -1), ("memory_limit", "500M")],
)
def test_a_setting_changed_after_the_config_was_built_is_checked_before_anything_runs(
    worktree: Path, write_script: Callable[..., Path], tmp_path: Path, setting: str, value: object
) -> None:
    """Legacy code sets fields after building its config: 0 workers made the run wait for
    ever, and a deadline of -1 s stopped every script as it started."""
    ran = tmp_path / "ran"
    write_script(worktree, "h1", f"touch {ran}")
    config = FalsificationConfig()
    setattr(config, setting, value)

    with pytest.raises(ValueError, match=f"^{setting} must be"):
        TestExecutor(config).execute_parallel([Hypothesis("h1", "x")], {"h1": worktree})
    assert not ran.exists()


def test_a_free_memory_floor_above_the_machine_s_memory_is_refused(worktree: Path) -> None:
    config = FalsificationConfig(adaptive_concurrency=True, memory_free_floor=2**62)

    with pytest.raises(ValueError, match=r"^memory_free_floor must be at most this machine's"):
        TestExecutor(config).execute_parallel([Hypothesis("h1", "x")], {"h1": worktree})


def test_a_file_given_as_worktree_is_an_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = TestExecutor(QUICK).execute_single(Hypothesis("h1", "x"), os.fspath(not_a_folder))
    assert result.result is TestResult.ERROR
    assert result.error_message == f"worktree is not a folder: {not_a_folder}"  # not "not found"


@pytest.mark.asyncio
async def test_a_nul_byte_in_a_worktree_path_is_an_error_not_a_hang(tmp_path: Path) -> None:
    executor = AsyncTestExecutor(QUICK)
    run = executor.execute_single_async(Hypothesis("h1", "x"), f"{tmp_path}/bad\0name")
    result = await asyncio.wait_for(run, timeout=30)
    assert result.result is TestResult.ERROR
    assert "embedded null byte" in result.error_message


def test_a_fault_finding_one_hypothesis_s_turn_is_that_hypothesis_s_error_alone(
    worktree: Path, write_script: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripts are located off the loop, ahead of their turns: a fault of ours there must
    still leave one result per hypothesis, and the others their verdicts."""
    write_script(worktree, "faulty", "exit 0")
    locate_script = ahead.locate_script

    def faulty(tree: Path, hypothesis_id: str) -> Path:
        if hypothesis_id == "faulty":
            raise RuntimeError("a fault of the runner")
        return locate_script(tree, hypothesis_id)

    monkeypatch.setattr(ahead, "locate_script", faulty)
    results = run_with_a_good_neighbour(worktree, write_script, "faulty")

    assert results["faulty"].result is TestResult.ERROR
    assert "a fault of the runner" in (results["faulty"].error_message or "")


def test_a_fault_before_any_turn_is_found_is_every_hypothesis_s_error_not_a_hang(
    worktree: Path, write_script: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault of ours outside one turn's search left every worker waiting for ever."""

    def faulty(*_args: object) -> None:
        raise RuntimeError("a fault of the runner")

    monkeypatch.setattr(ahead.RunCode, "read_installs", faulty)
    write_script(worktree, "a", "exit 0")
    write_script(worktree, "b", "exit 0")
    runs = [HypothesisRun(Hypothesis(i, "x"), worktree) for i in ("a", "b")]
    results: List[TestExecutionResult] = []
    worker = threading.Thread(
        target=lambda: results.extend(TestExecutor(QUICK).execute_parallel(runs)), daemon=True
    )

    worker.start()
    worker.join(timeout=60)

    assert not worker.is_alive(), "the run hung"
    assert [r.result for r in results] == [TestResult.ERROR, TestResult.ERROR]
    assert all("a fault of the runner" in (r.error_message or "") for r in results)
