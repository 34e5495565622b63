"""Every way a result comes to be: each constructor's outcome, verdict, wording and status."""

from __future__ import annotations

from pytest_parallel_hypotheses import HypothesisStatus, TestExecutionResult, TestResult
from pytest_parallel_hypotheses.core.classification import (
    CANNOT_EXECUTE_EXIT,
    repeated_confidence,
)
from pytest_parallel_hypotheses.core.results import (
    RUNNER_ERROR_EXIT,
    runner_error_result,
    script_result,
    stopped_result,
    unrunnable_result,
)
from pytest_parallel_hypotheses.engine.capture import BoundedCapture


def test_a_runner_error_is_inconclusive_and_does_not_claim_the_script_cannot_execute() -> None:
    result = runner_error_result("h1", "/wt", "internal error of the runner: boom")

    assert (result.result, result.status) == (TestResult.ERROR, HypothesisStatus.INCONCLUSIVE)
    assert result.exit_code == RUNNER_ERROR_EXIT != CANNOT_EXECUTE_EXIT
    assert result.error_message == "internal error of the runner: boom"


def test_an_unrunnable_script_keeps_the_shell_status_it_was_given() -> None:
    result = unrunnable_result("h1", "/wt", "Test script not found", exit_code=127)

    assert (result.result, result.exit_code) == (TestResult.ERROR, 127)


def test_a_stopped_hypothesis_has_no_verdict_and_says_why() -> None:
    result = stopped_result("h2", "/wt", "hypothesis h1 was SUPPORTED", started=True, duration=1.5)

    assert (result.result, result.status) == (TestResult.SKIP, HypothesisStatus.PENDING)
    assert result.error_message == "stopped because hypothesis h1 was SUPPORTED"


def test_results_of_the_engine_carry_their_confidence_in_their_metrics() -> None:
    assert unrunnable_result("h1", "/wt", "broken").metrics == {"confidence": 0.2}


def ran(duration: float, **usage: float) -> TestExecutionResult:
    """A script that passed after ``duration`` seconds, with the ``usage`` sampled."""
    empty = BoundedCapture(1024)
    return script_result(
        "h1", "/wt", exit_code=0, timeout=None, duration=duration,
        stdout=empty, stderr=empty, usage=usage,
    )  # fmt: skip


def test_a_run_slowed_past_5_s_by_waiting_for_cpus_scores_as_the_quick_run_it_was() -> None:
    """A trial's 2 s check took 9 s on a machine loaded seven-fold, and scored 0.85 where
    its clean runs scored 0.6: the run the tool called suspect looked the more trustworthy."""
    assert ran(9.0, cpu_wait_share=0.8).confidence == 0.6
    assert ran(9.0, cpu_wait_share=0.1).confidence == 0.85
    assert ran(9.0, cpu_wait_share=0.8, cpu_seconds=16.0).confidence == 0.85  # its own jobs
    assert ran(9.0).confidence == 0.85  # nothing sampled: its duration is all that is known


def test_repeated_runs_are_scored_at_the_seconds_they_worked() -> None:
    slowed = [ran(9.0, cpu_wait_share=0.8), ran(8.0, cpu_wait_share=0.7)]
    alone = [ran(9.0), ran(8.0)]

    quick, long = (TestExecutionResult.from_attempts(runs).confidence for runs in (slowed, alone))

    assert quick == repeated_confidence([(TestResult.PASS, 1.8), (TestResult.PASS, 2.4)])
    assert long == repeated_confidence([(TestResult.PASS, 9.0), (TestResult.PASS, 8.0)])
    assert quick < long
