"""Duration-aware scheduling: when not every script can start at once, the quick ones start
first while they are a small share of the work, then unknown durations, then the longest
expected first; durations measured by a run are kept in pytest's cache for the next one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    TestExecutionResult,
    TestExecutor,
)
from pytest_parallel_hypotheses.engine.scheduling import start_order

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]

ONE_AT_A_TIME = FalsificationConfig(test_timeout=20, kill_grace=0.2, max_concurrent_tests=1)


@pytest.mark.parametrize(
    ("expected", "order"),
    [
        ([1.0, 5.0, 3.0], [1, 2, 0]),
        ([None, 5.0, None, 9.0], [0, 2, 3, 1]),
        ([2.0, 2.0, 7.0, 2.0], [2, 0, 1, 3]),
        ([], []),
    ],
)
def test_start_order_is_unknown_first_then_longest_first(
    expected: List[Optional[float]], order: List[int]
) -> None:
    assert start_order(expected) == order


@pytest.mark.parametrize(
    ("expected", "order"),
    [
        ([35.0, 0.1, 35.0, 0.2, None], [1, 3, 4, 0, 2]),
        ([90.0, 1.0, 20.0, 4.0], [1, 3, 0, 2]),
        ([0.5, 0.5, 9.0], [0, 2, 1]),
    ],
)
def test_quick_scripts_start_first_while_they_are_a_twentieth_of_the_known_work(
    expected: List[Optional[float]], order: List[int]
) -> None:
    """A debugging run's quick answers came last: six 0.1 s hypotheses waited 110 s behind
    two test suites."""
    assert start_order(expected) == order


def test_a_quick_hypothesis_answers_before_the_long_ones_start(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "starts"
    estimates = {"long": 90.0, "quick": 0.5, "medium": 20.0}

    run_estimated(git_repo, write_script, estimates, log)

    assert started(log) == ["quick", "long", "medium"]


def logging_scripts(worktree: Path, write_script: WriteScript, ids: List[str], log: Path) -> None:
    """Scripts that append their id to ``log`` when they start."""
    for hypothesis_id in ids:
        write_script(worktree, hypothesis_id, f"echo {hypothesis_id} >> '{log}'")


def started(log: Path) -> List[str]:
    return log.read_text().split()


def run_estimated(
    worktree: Path, write_script: WriteScript, estimates: Dict[str, float], log: Path
) -> List[TestExecutionResult]:
    """Run one at a time, with these estimates, scripts that note in ``log`` when they start."""
    logging_scripts(worktree, write_script, list(estimates), log)
    hypotheses = [Hypothesis(i, "x", estimated_test_time=t) for i, t in estimates.items()]
    return TestExecutor(ONE_AT_A_TIME).execute_parallel(
        hypotheses, {i: worktree for i in estimates}
    )


def test_the_longest_estimated_hypothesis_starts_first(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "starts"
    estimates = {"short": 10.0, "long": 90.0, "medium": 20.0}

    results = run_estimated(git_repo, write_script, estimates, log)

    assert started(log) == ["long", "medium", "short"]
    assert [r.hypothesis_id for r in results] == ["short", "long", "medium"]  # input order


def test_hypotheses_without_an_estimate_start_before_the_others(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "starts"
    logging_scripts(git_repo, write_script, ["known", "unknown"], log)
    hypotheses = [Hypothesis("known", "x", estimated_test_time=60), Hypothesis("unknown", "y")]

    TestExecutor(ONE_AT_A_TIME).execute_parallel(
        hypotheses, {"known": git_repo, "unknown": git_repo}
    )

    assert started(log) == ["unknown", "known"]


def test_an_expected_duration_of_a_run_outweighs_the_estimate(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "starts"
    logging_scripts(git_repo, write_script, ["a", "b"], log)
    runs = [
        HypothesisRun(Hypothesis("a", "x", estimated_test_time=100), git_repo, None, 10.0),
        HypothesisRun(Hypothesis("b", "y", estimated_test_time=1), git_repo, None, 50.0),
    ]

    TestExecutor(ONE_AT_A_TIME).execute_parallel(runs)

    assert started(log) == ["b", "a"]


def test_a_negative_expected_duration_is_refused() -> None:
    with pytest.raises(
        ValueError, match="expected duration of hypothesis 'a' must be a number of seconds >= 0"
    ):
        HypothesisRun(Hypothesis("a", "x"), None, None, -1.0)


def test_should_parallelize_uses_recorded_durations_when_estimates_are_missing() -> None:
    hypotheses = [Hypothesis("a", "x"), Hypothesis("b", "y")]
    executor = TestExecutor()
    assert executor.should_parallelize(hypotheses) is False
    assert executor.should_parallelize(hypotheses, {"a": 60.0, "b": 60.0}) is True


def test_should_parallelize_prefers_the_estimate_to_the_recorded_duration() -> None:
    hypotheses = [Hypothesis("a", "x", estimated_test_time=1), Hypothesis("b", "y")]
    assert TestExecutor().should_parallelize(hypotheses, {"a": 500.0, "b": 60.0}) is False


# Under pytest


def cached_durations(tmp_path: Path, name: str = "durations") -> Dict[str, float]:
    path = tmp_path / ".pytest_cache" / "v" / "hypotheses" / name
    durations: Dict[str, float] = json.loads(path.read_text())
    return durations


def test_a_run_records_each_duration_in_the_cache(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "nap", "sleep 0.2")
    write_script(git_repo, "broken", "exit 0", executable=False)

    run_pytest(f"--hypotheses={git_repo}")

    durations = cached_durations(tmp_path)
    assert durations["repo::nap"] >= 0.2
    assert "repo::broken" not in durations  # its script never ran


def test_a_run_records_the_cpus_each_script_kept_busy_when_it_ran_long_enough_to_tell(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    burn = f"{sys.executable} -S -c 'import time\nwhile time.process_time() < 1.2: pass'"
    write_script(git_repo, "two", f"{burn} &\n{burn} &\nwait")
    write_script(git_repo, "sleeper", "sleep 1.2")
    write_script(git_repo, "quick", "exit 0")

    run_pytest(f"--hypotheses={git_repo}")

    cpus = cached_durations(tmp_path, "cpus")
    assert cpus["repo::two"] > 1.2  # two CPUs, or one each short of them
    assert cpus["repo::sleeper"] < 0.5
    assert "repo::quick" not in cpus  # too short to tell


def test_the_next_run_starts_the_longest_recorded_first(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "starts"
    for hypothesis_id, nap in (("a-short", 0.2), ("b-medium", 0.5), ("c-long", 1.0)):
        write_script(git_repo, hypothesis_id, f"echo {hypothesis_id} >> '{log}'; sleep {nap}")

    run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=1")
    run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=1")

    assert started(log) == ["a-short", "b-medium", "c-long", "c-long", "b-medium", "a-short"]


def test_durations_of_hypotheses_not_run_this_time_are_kept(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "first", "exit 0")
    write_script(git_repo, "second", "exit 0")

    run_pytest(f"--hypotheses={git_repo}")
    run_pytest(f"--hypotheses={git_repo}", "-k", "first")

    assert set(cached_durations(tmp_path)) == {"repo::first", "repo::second"}


def test_a_run_without_the_cache_plugin_still_runs(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
    assert not (tmp_path / ".pytest_cache").exists()


def test_malformed_cached_durations_are_ignored(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    folder = tmp_path / ".pytest_cache" / "v" / "hypotheses"
    folder.mkdir(parents=True)
    (folder / "durations").write_text('{"repo::cache": "long", "repo::other": -1}')

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(passed=1)
    assert set(cached_durations(tmp_path)) == {"repo::cache"}
