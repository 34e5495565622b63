"""The classification table, the verdicts and the legacy confidence scores, as pure functions."""

from __future__ import annotations

import signal
from typing import Optional

import pytest

from pytest_parallel_hypotheses.core.classification import (
    HypothesisStatus,
    TestResult,
    classify_exit,
    confidence_for,
    describe_exit,
    signal_meaning,
    verdict_for,
)

CRASHES = [signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGILL]
OTHER_SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1]


@pytest.mark.parametrize("exit_code", [0, 1, 2, 124, 125, 127, 139, 255, -9, None])
def test_our_deadline_means_timeout_whatever_the_exit_code(exit_code: Optional[int]) -> None:
    assert classify_exit(exit_code, timed_out=True) is TestResult.TIMEOUT


def test_exit_zero_is_a_pass() -> None:
    assert classify_exit(0) is TestResult.PASS


@pytest.mark.parametrize("exit_code", [1, 2, 42, 100, 123])
def test_exit_1_to_123_is_a_fail(exit_code: int) -> None:
    assert classify_exit(exit_code) is TestResult.FAIL


@pytest.mark.parametrize("sig", CRASHES, ids=lambda s: s.name)
def test_crash_signal_as_negative_code_is_a_fail(sig: signal.Signals) -> None:
    assert classify_exit(-sig) is TestResult.FAIL


@pytest.mark.parametrize("sig", CRASHES, ids=lambda s: s.name)
def test_crash_signal_as_128_plus_n_is_a_fail(sig: signal.Signals) -> None:
    assert classify_exit(128 + sig) is TestResult.FAIL


def test_inner_timeout_exit_124_is_a_timeout() -> None:
    assert classify_exit(124) is TestResult.TIMEOUT


def test_exit_125_is_a_skip() -> None:
    assert classify_exit(125) is TestResult.SKIP


@pytest.mark.parametrize("exit_code", [126, 127])
def test_cannot_execute_and_not_found_are_errors(exit_code: int) -> None:
    assert classify_exit(exit_code) is TestResult.ERROR


@pytest.mark.parametrize("exit_code", [128, 128 + 9, 128 + 15, 200, 255])
def test_other_exit_at_or_above_128_is_an_error(exit_code: int) -> None:
    assert classify_exit(exit_code) is TestResult.ERROR


@pytest.mark.parametrize("sig", OTHER_SIGNALS, ids=lambda s: s.name)
def test_other_signal_is_an_error(sig: signal.Signals) -> None:
    assert classify_exit(-sig) is TestResult.ERROR


def test_unknown_negative_code_is_an_error() -> None:
    assert classify_exit(-(signal.NSIG + 5)) is TestResult.ERROR


def test_could_not_start_is_an_error() -> None:
    assert classify_exit(None) is TestResult.ERROR


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (TestResult.PASS, HypothesisStatus.FALSIFIED),
        (TestResult.FAIL, HypothesisStatus.SUPPORTED),
        (TestResult.TIMEOUT, HypothesisStatus.INCONCLUSIVE),
        (TestResult.SKIP, HypothesisStatus.INCONCLUSIVE),
        (TestResult.ERROR, HypothesisStatus.INCONCLUSIVE),
    ],
)
def test_verdict_of_each_result(result: TestResult, verdict: HypothesisStatus) -> None:
    assert verdict_for(result) is verdict


@pytest.mark.parametrize("duration", [0.0, 4.99, 5.0, 600.0])
def test_timeout_confidence_is_legacy_0_3(duration: float) -> None:
    assert confidence_for(TestResult.TIMEOUT, duration) == 0.3


@pytest.mark.parametrize("duration", [0.0, 4.99, 5.0, 600.0])
def test_error_confidence_is_legacy_0_2(duration: float) -> None:
    assert confidence_for(TestResult.ERROR, duration) == 0.2


@pytest.mark.parametrize("duration", [0.0, 4.99, 5.0, 600.0])
def test_skip_confidence_is_zero(duration: float) -> None:
    assert confidence_for(TestResult.SKIP, duration) == 0.0


@pytest.mark.parametrize("result", [TestResult.PASS, TestResult.FAIL])
@pytest.mark.parametrize("duration", [0.0, 1.0, 4.99])
def test_quick_pass_or_fail_confidence_is_0_6(result: TestResult, duration: float) -> None:
    assert confidence_for(result, duration) == 0.6


@pytest.mark.parametrize("result", [TestResult.PASS, TestResult.FAIL])
@pytest.mark.parametrize("duration", [5.0, 5.01, 300.0])
def test_pass_or_fail_of_5_seconds_or_more_has_confidence_0_85(
    result: TestResult, duration: float
) -> None:
    assert confidence_for(result, duration) == 0.85


def test_enum_values_are_the_legacy_ones() -> None:
    assert {r.value for r in TestResult} == {"pass", "fail", "timeout", "error", "skip"}
    assert [s.value for s in HypothesisStatus] == [
        "pending",
        "testing",
        "falsified",
        "supported",
        "inconclusive",
    ]


def test_describe_plain_exit_status() -> None:
    assert describe_exit(3) == "exit status 3"


def test_describe_negative_code_names_the_signal() -> None:
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"


def test_describe_128_plus_n_names_the_signal_of_a_child() -> None:
    assert describe_exit(128 + signal.SIGABRT) == "exit status 134 (SIGABRT in a child)"


def test_a_plain_exit_status_tells_of_no_signal() -> None:
    assert signal_meaning(3) is None


def test_the_signal_meaning_of_128_plus_n_leaves_out_the_number() -> None:
    assert signal_meaning(128 + signal.SIGKILL) == "SIGKILL in a child"


def test_describe_unknown_signal_gives_its_number() -> None:
    assert describe_exit(-(signal.NSIG + 5)) == f"killed by signal {signal.NSIG + 5}"
