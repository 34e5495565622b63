"""The anytime-valid decision about a script's pass rate: seeded simulations of scripts with
known pass rates, and the documented numbers of runs."""

from __future__ import annotations

import math
import random
from typing import List, Optional

import pytest

from pytest_parallel_hypotheses.core.classification import TestResult
from pytest_parallel_hypotheses.core.sequential import (
    DEFAULT_ALPHA,
    DEFAULT_TOLERANCE,
    Decision,
    Evidence,
    confidence_interval,
    fewest_runs_to_decide,
    log_martingale,
)

#: Simulated scripts per pass rate, and the most runs each may take.
SCRIPTS = 250
CAP = 60


def truth(rate: float, tolerance: float) -> List[Decision]:
    """The decisions that are right for a script with this pass rate."""
    right = []
    if rate >= 1 - tolerance:
        right.append(Decision.PASSES)
    if rate <= tolerance:
        right.append(Decision.FAILS)
    if tolerance < rate < 1 - tolerance:
        right.append(Decision.FLAKY)
    return right


def first_wrong_decision(rate: float, rng: random.Random, alpha: float) -> Optional[int]:
    """The first run after which the evidence shows a wrong decision (peeking after every
    run, never stopping), or None."""
    evidence = Evidence(0, 0, alpha, DEFAULT_TOLERANCE)
    right = truth(rate, DEFAULT_TOLERANCE)
    for run in range(1, CAP + 1):
        outcome = TestResult.PASS if rng.random() < rate else TestResult.FAIL
        evidence = evidence.add(outcome)
        for decision in (Decision.PASSES, Decision.FAILS, Decision.FLAKY):
            if decision not in right and evidence.e_value(decision) >= 1 / alpha:
                return run
    return None


@pytest.mark.parametrize("alpha", [0.05, 0.2])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_the_error_stays_below_alpha_at_every_stopping_point(rate: float, alpha: float) -> None:
    rng = random.Random(f"{rate}-{alpha}")
    wrong = sum(first_wrong_decision(rate, rng, alpha) is not None for _ in range(SCRIPTS))
    # the chance that a time-uniform error of at most alpha shows this often by luck is < 1e-3
    margin = 3.1 * math.sqrt(alpha * (1 - alpha) / SCRIPTS)
    assert wrong / SCRIPTS <= alpha + margin


def test_an_always_passing_script_decides_in_15_runs_at_the_defaults() -> None:
    evidence = [Evidence(runs, 0) for runs in (14, 15)]
    assert [e.decision for e in evidence] == [Decision.UNDECIDED, Decision.PASSES]
    assert fewest_runs_to_decide(DEFAULT_ALPHA, DEFAULT_TOLERANCE) == 15


def test_an_always_failing_script_decides_in_15_runs_at_the_defaults() -> None:
    evidence = [Evidence(0, runs) for runs in (14, 15)]
    assert [e.decision for e in evidence] == [Decision.UNDECIDED, Decision.FAILS]


def test_a_script_passing_half_the_time_is_called_flaky() -> None:
    rng = random.Random(50)
    decisions = []
    for _ in range(50):
        evidence = Evidence(0, 0)
        while evidence.decision is Decision.UNDECIDED and evidence.runs < 100:
            evidence = evidence.add(TestResult.PASS if rng.random() < 0.5 else TestResult.FAIL)
        decisions.append(evidence.decision)
    assert decisions.count(Decision.FLAKY) >= 45
    assert Decision.PASSES not in decisions
    assert Decision.FAILS not in decisions


def test_the_interval_holds_every_rate_whose_martingale_is_below_one_over_alpha() -> None:
    low, high = confidence_interval(7, 3, 0.05)
    threshold = math.log(20)
    assert log_martingale(7, 3, low + 1e-9) < threshold <= log_martingale(7, 3, low - 1e-6)
    assert log_martingale(7, 3, high - 1e-9) < threshold <= log_martingale(7, 3, high + 1e-6)
    assert low < 0.7 < high


def test_no_runs_know_nothing() -> None:
    evidence = Evidence(0, 0)
    assert (evidence.interval, evidence.confidence, evidence.decision) == (
        (0.0, 1.0),
        0.0,
        Decision.UNDECIDED,
    )


def test_one_run_gives_no_confidence() -> None:
    assert Evidence(1, 0).confidence == Evidence(0, 1).confidence == 0.0


def test_the_confidence_of_a_decision_is_at_least_one_minus_alpha() -> None:
    evidence = Evidence(15, 0)
    assert evidence.decision is Decision.PASSES
    assert evidence.confidence >= 1 - evidence.alpha


def test_timeouts_and_errors_are_no_evidence() -> None:
    outcomes = [TestResult.PASS, TestResult.TIMEOUT, TestResult.ERROR, TestResult.SKIP]
    assert Evidence.of(outcomes).runs == 1


def test_removing_runs_gives_the_evidence_before_them() -> None:
    before = Evidence(3, 2)
    added = [TestResult.PASS, TestResult.FAIL, TestResult.TIMEOUT]
    assert before.extended(added).without(added) == before


@pytest.mark.parametrize("alpha", [0, 0.5, -0.1, float("nan"), True])
def test_an_alpha_outside_zero_to_one_half_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match=r"alpha must be a number strictly between 0 and 0\.5"):
        Evidence(0, 0, alpha=alpha)


@pytest.mark.parametrize("tolerance", [0, 0.5, 0.7])
def test_a_tolerance_outside_zero_to_one_half_is_refused(tolerance: float) -> None:
    with pytest.raises(ValueError, match="flake tolerance must be a number strictly between"):
        Evidence(0, 0, tolerance=tolerance)
