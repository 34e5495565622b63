"""The confidence of repeated runs: the properties the formula promises, checked over many
inputs, and the majority, tie and flakiness rules around it."""

from __future__ import annotations

import math
from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_parallel_hypotheses.core.classification import (
    WILSON_Z,
    HypothesisStatus,
    TestResult,
    agreement_confidence,
    agreement_weight,
    confidence_for,
    is_flaky,
    majority_outcome,
    repeated_confidence,
    repeated_verdict,
    wilson_lower_bound,
)

single_scores = st.floats(min_value=0.0, max_value=1.0)
durations = st.floats(min_value=0.0, max_value=1e6)
results = st.sampled_from(list(TestResult))


@st.composite
def agreements(draw: st.DrawFn) -> List[int]:
    """(agreeing, attempts) with 0 <= agreeing <= attempts."""
    attempts = draw(st.integers(min_value=1, max_value=200))
    return [draw(st.integers(min_value=0, max_value=attempts)), attempts]


@given(single_scores, agreements())
def test_the_confidence_stays_between_0_and_1(single: float, agreement: List[int]) -> None:
    assert 0.0 <= agreement_confidence(single, *agreement) <= 1.0


@given(results, durations)
def test_one_attempt_gives_exactly_the_single_run_confidence(
    result: TestResult, duration: float
) -> None:
    assert repeated_confidence([(result, duration)]) == confidence_for(result, duration)


@given(single_scores, agreements())
def test_more_agreeing_attempts_of_as_many_never_lower_it(
    single: float, agreement: List[int]
) -> None:
    agreeing, attempts = agreement
    if agreeing < attempts:
        more = agreement_confidence(single, agreeing + 1, attempts)
        assert more >= agreement_confidence(single, agreeing, attempts)


@given(single_scores, agreements())
def test_one_more_agreeing_attempt_never_lowers_it(single: float, agreement: List[int]) -> None:
    agreeing, attempts = agreement
    more = agreement_confidence(single, agreeing + 1, attempts + 1)
    assert more >= agreement_confidence(single, agreeing, attempts)


@given(single_scores, agreements(), st.integers(min_value=2, max_value=20))
def test_the_same_proportion_over_more_attempts_never_lowers_it(
    single: float, agreement: List[int], factor: int
) -> None:
    agreeing, attempts = agreement
    more = agreement_confidence(single, agreeing * factor, attempts * factor)
    assert more >= agreement_confidence(single, agreeing, attempts)


@given(single_scores, st.integers(min_value=1, max_value=100))
def test_a_tie_gives_no_confidence(single: float, half: int) -> None:
    assert agreement_confidence(single, half, 2 * half) == 0.0


@given(st.lists(durations, min_size=1, max_size=30))
def test_skips_stay_at_no_confidence(times: List[float]) -> None:
    assert repeated_confidence([(TestResult.SKIP, time) for time in times]) == 0.0


@given(single_scores.filter(lambda c: 0 < c < 1), st.integers(min_value=2, max_value=200))
def test_unanimous_attempts_score_higher_than_one_run(single: float, attempts: int) -> None:
    assert agreement_confidence(single, attempts, attempts) > single


def test_unanimous_agreement_is_worth_at_most_1_plus_z_squared_runs() -> None:
    assert agreement_weight(10**9, 10**9) == pytest.approx(1 + WILSON_Z**2, rel=1e-6)


def test_the_bound_of_one_success_in_one_trial_is_1_over_1_plus_z_squared() -> None:
    assert wilson_lower_bound(1, 1) == pytest.approx(1 / (1 + WILSON_Z**2))


@pytest.mark.parametrize("successes", [0, -1, -5])
def test_no_net_success_has_a_bound_of_zero(successes: int) -> None:
    assert wilson_lower_bound(successes, 5) == 0.0


def test_three_quick_agreeing_passes_score_as_the_formula_says() -> None:
    weight = (1 / (1 + WILSON_Z**2 / 3)) / (1 / (1 + WILSON_Z**2))
    expected = 1 - (1 - 0.6) ** weight
    assert repeated_confidence([(TestResult.PASS, 1.0)] * 3) == pytest.approx(expected)


def test_the_single_score_is_that_of_the_median_duration_of_the_majority() -> None:
    attempts = [(TestResult.FAIL, 9.0), (TestResult.FAIL, 6.0), (TestResult.FAIL, 1.0)]
    slow = agreement_confidence(0.85, 3, 3)  # median 6 s: a long run
    assert repeated_confidence(attempts) == slow
    assert not math.isclose(slow, agreement_confidence(0.6, 3, 3))


@pytest.mark.parametrize(
    ("outcomes", "majority"),
    [
        ([TestResult.PASS, TestResult.FAIL], TestResult.FAIL),
        ([TestResult.TIMEOUT, TestResult.PASS], TestResult.PASS),
        ([TestResult.ERROR, TestResult.TIMEOUT], TestResult.TIMEOUT),
        ([TestResult.SKIP, TestResult.ERROR], TestResult.ERROR),
        ([TestResult.PASS, TestResult.PASS, TestResult.FAIL], TestResult.PASS),
    ],
)
def test_ties_go_to_the_more_informative_outcome(
    outcomes: List[TestResult], majority: TestResult
) -> None:
    assert majority_outcome(outcomes)[0] is majority


def test_the_majority_comes_with_its_count() -> None:
    assert majority_outcome([TestResult.SKIP] * 3 + [TestResult.PASS]) == (TestResult.SKIP, 3)


def test_passes_mixed_with_failures_are_flaky_and_inconclusive() -> None:
    outcomes = [TestResult.PASS, TestResult.PASS, TestResult.PASS, TestResult.FAIL]
    assert is_flaky(outcomes)
    assert repeated_verdict(outcomes) is HypothesisStatus.INCONCLUSIVE


def test_passes_mixed_with_timeouts_keep_the_verdict_of_the_majority() -> None:
    outcomes = [TestResult.PASS, TestResult.PASS, TestResult.TIMEOUT]
    assert not is_flaky(outcomes)
    assert repeated_verdict(outcomes) is HypothesisStatus.FALSIFIED
