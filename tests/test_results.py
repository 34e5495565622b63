"""Every way a result comes to be: each constructor's outcome, verdict, wording and status."""

from __future__ import annotations

from pytest_parallel_hypotheses import HypothesisStatus, TestResult
from pytest_parallel_hypotheses.core.classification import CANNOT_EXECUTE_EXIT
from pytest_parallel_hypotheses.core.results import (
    RUNNER_ERROR_EXIT,
    runner_error_result,
    stopped_result,
    unrunnable_result,
)


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
