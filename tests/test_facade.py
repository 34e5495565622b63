"""The legacy synchronous ``TestExecutor``: same calls, same results, from any caller."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from pytest_parallel_hypotheses import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    HypothesisStatus,
    Polarity,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)

QUICK = FalsificationConfig(test_timeout=20, kill_grace=0.2)


@pytest.fixture
def legacy_batch(
    make_worktree: Callable[[str], Path], write_script: Callable[..., Path]
) -> Callable[[], List[TestExecutionResult]]:
    """The legacy call on a pass, a fail, a timeout and a missing script, one worktree each."""
    bodies = {"passes": "echo fine", "fails": "exit 1", "hangs": "sleep 30", "missing": None}
    worktrees: Dict[str, str] = {}
    for hypothesis_id, body in bodies.items():
        worktree = make_worktree(hypothesis_id)
        if body is not None:
            write_script(worktree, hypothesis_id, body)
        worktrees[hypothesis_id] = str(worktree)
    hypotheses = [Hypothesis(i, f"hypothesis {i}") for i in bodies]
    config = FalsificationConfig(test_timeout=2.0, kill_grace=0.2, max_concurrent_tests=4)
    return lambda: TestExecutor(config).execute_parallel(hypotheses, worktrees)


def outcomes(results: List[TestExecutionResult]) -> List[object]:
    return [(r.hypothesis_id, r.result, r.exit_code) for r in results]


EXPECTED = [
    ("passes", TestResult.PASS, 0),
    ("fails", TestResult.FAIL, 1),
    ("hangs", TestResult.TIMEOUT, 124),
    ("missing", TestResult.ERROR, 127),
]


def test_the_legacy_call_gives_pass_fail_timeout_and_not_found(
    legacy_batch: Callable[[], List[TestExecutionResult]],
) -> None:
    results = legacy_batch()
    assert outcomes(results) == EXPECTED
    assert results[0].stdout == "fine\n"
    assert "not found" in results[3].error_message


def test_the_facade_works_from_a_worker_thread(
    legacy_batch: Callable[[], List[TestExecutionResult]],
) -> None:
    results: List[TestExecutionResult] = []
    worker = threading.Thread(target=lambda: results.extend(legacy_batch()))
    worker.start()
    worker.join(60)
    assert outcomes(results) == EXPECTED


@pytest.mark.asyncio
async def test_the_facade_works_inside_a_running_event_loop(
    legacy_batch: Callable[[], List[TestExecutionResult]],
) -> None:
    loop = asyncio.get_running_loop()
    assert outcomes(legacy_batch()) == EXPECTED
    assert asyncio.get_running_loop() is loop
    assert not loop.is_closed()


def test_the_facade_leaves_the_caller_threads_event_loop_alone(
    legacy_batch: Callable[[], List[TestExecutionResult]],
) -> None:
    """Checked in a thread of its own, so that the main thread's loop is not touched."""
    seen: Dict[str, object] = {}

    def caller() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            legacy_batch()
            seen["same loop"] = asyncio.get_event_loop() is loop
            seen["usable"] = loop.run_until_complete(asyncio.sleep(0, result="yes"))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(60)
    assert seen == {"same loop": True, "usable": "yes"}


def test_execute_single_tests_one_hypothesis(
    make_worktree: Callable[[str], Path], write_script: Callable[..., Path]
) -> None:
    worktree = make_worktree("single")
    write_script(worktree, "h1", "echo single")
    result = TestExecutor(QUICK).execute_single(Hypothesis("h1", "x"), str(worktree))
    assert (result.hypothesis_id, result.result, result.stdout) == (
        "h1",
        TestResult.PASS,
        "single\n",
    )
    assert result.worktree_path == str(worktree)


def test_hypotheses_really_run_in_parallel(
    make_worktree: Callable[[str], Path], write_script: Callable[..., Path], tmp_path: Path
) -> None:
    """Each script waits until all three have started: run one by one, all would time out."""
    meeting_point = tmp_path / "meeting"
    meeting_point.mkdir()
    ids = ["a", "b", "c"]
    worktrees = {}
    for hypothesis_id in ids:
        worktree = make_worktree(hypothesis_id)
        write_script(
            worktree,
            hypothesis_id,
            f"cd '{meeting_point}'; touch arrived-$HYPOTHESIS_ID\n"
            "while [ $(ls arrived-* | wc -l) -lt 3 ]; do sleep 0.02; done",
        )
        worktrees[hypothesis_id] = str(worktree)
    config = FalsificationConfig(test_timeout=10, max_concurrent_tests=3)
    results = TestExecutor(config).execute_parallel([Hypothesis(i, i) for i in ids], worktrees)
    assert [r.result for r in results] == [TestResult.PASS] * 3


def test_the_legacy_call_runs_each_hypothesis_as_its_metadata_file_asks(
    make_worktree: Callable[[str], Path],
    write_script: Callable[..., Path],
    write_metadata: Callable[[Path, str, object], Path],
) -> None:
    """A worktree made by ``pytest-hypotheses new`` says in its metadata that its script
    confirms a fix, and sets its own deadline: a new-user trial's fix, confirmed, read as a
    refuted hypothesis, and its deadline ignored."""
    confirming, slow = make_worktree("confirming"), make_worktree("slow")
    write_script(confirming, "fix", "exit 0")
    write_metadata(confirming, "fix", {"polarity": "confirm"})
    write_script(slow, "slow", "sleep 30")
    write_metadata(slow, "slow", {"timeout": 0.5})
    hypotheses = [Hypothesis("fix", "the fix works"), Hypothesis("slow", "x")]

    fix, timed_out = TestExecutor(QUICK).execute_parallel(
        hypotheses, {"fix": str(confirming), "slow": str(slow)}
    )

    assert (fix.status, fix.polarity) == (HypothesisStatus.SUPPORTED, Polarity.CONFIRM)
    assert timed_out.result is TestResult.TIMEOUT
    assert timed_out.duration < QUICK.test_timeout / 2  # its own deadline, not the run's


def test_metadata_the_legacy_call_cannot_use_raises_value_error_naming_it(
    make_worktree: Callable[[str], Path],
    write_script: Callable[..., Path],
    write_metadata: Callable[[Path, str, object], Path],
) -> None:
    worktree = make_worktree("broken")
    write_script(worktree, "h1", "exit 0")
    write_metadata(worktree, "h1", {"polarity": "sideways"})

    with pytest.raises(ValueError, match=r"config_h1\.json.*polarity"):
        TestExecutor(QUICK).execute_parallel([Hypothesis("h1", "x")], {"h1": str(worktree)})


def test_a_duplicate_raises_value_error_through_the_facade() -> None:
    hypotheses = [Hypothesis("h1", "x"), Hypothesis("h1", "y")]
    with pytest.raises(ValueError, match="'h1' is given twice"):
        TestExecutor(QUICK).execute_parallel(hypotheses, {"h1": "wt"})


def estimated(*seconds: float) -> List[Hypothesis]:
    return [Hypothesis(f"h{i}", "x", estimated_test_time=s) for i, s in enumerate(seconds)]


@pytest.mark.parametrize(
    ("times", "parallel"),
    [
        ((), False),
        ((10_000,), False),
        ((60, 60, 60), True),  # 180 > 60 + 7 + 48
        ((10, 10, 10), False),  # 30 <= 10 + 7 + 48
        ((40, 40), True),  # 80 > 40 + 7 + 32
        ((40, 39), False),  # 79 is not more than 40 + 7 + 32
    ],
)
def test_should_parallelize_follows_the_legacy_break_even_rule(
    times: List[float], parallel: bool
) -> None:
    assert TestExecutor().should_parallelize(estimated(*times)) is parallel


def test_the_legacy_attributes_mirror_the_config() -> None:
    executor = TestExecutor(FalsificationConfig(test_timeout=42, min_parallel_time=7))
    assert (executor.timeout_seconds, executor.min_parallel_time) == (42, 7)


def test_an_executor_without_config_uses_the_defaults() -> None:
    assert TestExecutor().config == FalsificationConfig()


def test_the_facade_is_the_async_engine() -> None:
    assert issubclass(TestExecutor, AsyncTestExecutor)


def test_test_named_classes_are_not_collected_by_pytest(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        from pytest_parallel_hypotheses import TestExecutionResult, TestExecutor, TestResult

        def test_something():
            pass
        """
    )
    result = pytester.runpytest("-W", "error::pytest.PytestCollectionWarning")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("executor_class", [AsyncTestExecutor, TestExecutor])
@pytest.mark.parametrize(
    ("outcome", "duration", "expected"),
    [
        (TestResult.PASS, 1.0, 0.6),
        (TestResult.FAIL, 5.0, 0.85),
        (TestResult.TIMEOUT, 300.0, 0.3),
        (TestResult.ERROR, 0.0, 0.2),
        (TestResult.SKIP, 1.0, 0.0),
    ],
)
def test_the_legacy_private_confidence_helper_gives_the_legacy_values(
    executor_class: type, outcome: TestResult, duration: float, expected: float
) -> None:
    assert executor_class()._calculate_confidence(outcome, duration) == expected
