"""How a finished script is judged: exit status -> TestResult -> verdict, and a confidence score.

Pure functions only, so the table can be read, tested and overridden (through the plugin's
hooks) in one place.
"""

from __future__ import annotations

import signal
from enum import Enum
from typing import Optional


class HypothesisStatus(Enum):
    """Where a hypothesis stands: the verdict once its script has run."""

    PENDING = "pending"
    TESTING = "testing"
    FALSIFIED = "falsified"
    SUPPORTED = "supported"
    INCONCLUSIVE = "inconclusive"


class TestResult(Enum):
    """What happened when a hypothesis script ran."""

    __test__ = False  # a data type, not a pytest test class

    PASS = "pass"  # exit 0: the hypothesis is falsified
    FAIL = "fail"  # a genuine failure: the hypothesis is supported
    TIMEOUT = "timeout"  # our deadline or an inner `timeout` fired
    ERROR = "error"  # the script could not run or broke
    SKIP = "skip"  # exit 125: the script said it cannot test this


#: Signals that mean the code under test crashed: a genuine failure, not a broken script.
CRASH_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}
)

#: Exit status of coreutils' ``timeout`` when it fired inside the script.
INNER_TIMEOUT_EXIT = 124
#: Exit status meaning "this cannot be tested here", as in ``git bisect run``.
CANNOT_TEST_EXIT = 125
#: Exit status the executor reports for a run its own deadline stopped (the legacy value).
TIMEOUT_EXIT_CODE = INNER_TIMEOUT_EXIT

_VERDICTS = {
    TestResult.PASS: HypothesisStatus.FALSIFIED,
    TestResult.FAIL: HypothesisStatus.SUPPORTED,
    TestResult.TIMEOUT: HypothesisStatus.INCONCLUSIVE,
    TestResult.ERROR: HypothesisStatus.INCONCLUSIVE,
    TestResult.SKIP: HypothesisStatus.INCONCLUSIVE,
}

#: Below this many seconds a pass or fail may have skipped the real work (legacy rule).
QUICK_RUN_SECONDS = 5.0


def classify_exit(exit_code: Optional[int], *, timed_out: bool = False) -> TestResult:
    """Classify a script's exit status (a negative code means killed by that signal).

    ``timed_out`` is our own deadline firing, decided from our flag and never from the exit
    status: a script may trap SIGTERM and exit 0 after we stopped it.
    """
    if timed_out:
        return TestResult.TIMEOUT
    if exit_code is None:
        return TestResult.ERROR
    if exit_code == 0:
        return TestResult.PASS
    if 1 <= exit_code < INNER_TIMEOUT_EXIT:
        return TestResult.FAIL
    if exit_code == INNER_TIMEOUT_EXIT:
        return TestResult.TIMEOUT
    if exit_code == CANNOT_TEST_EXIT:
        return TestResult.SKIP
    signum = -exit_code if exit_code < 0 else exit_code - 128
    if signum in CRASH_SIGNALS:
        return TestResult.FAIL
    return TestResult.ERROR


def verdict_for(result: TestResult) -> HypothesisStatus:
    """The verdict on the hypothesis that a single result supports."""
    return _VERDICTS[result]


def confidence_for(result: TestResult, duration: float) -> float:
    """The legacy single-run confidence: how far this one result can be trusted."""
    if result is TestResult.TIMEOUT:
        return 0.3
    if result is TestResult.ERROR:
        return 0.2
    if result is TestResult.SKIP:
        return 0.0
    return 0.6 if duration < QUICK_RUN_SECONDS else 0.85


def describe_exit(exit_code: int) -> str:
    """A short phrase for an exit status, naming the signal where there was one."""
    if exit_code < 0:
        return f"killed by {_signal_name(-exit_code)}"
    if exit_code > 128 and exit_code - 128 < signal.NSIG:
        return f"exit status {exit_code} ({_signal_name(exit_code - 128)} in a child)"
    return f"exit status {exit_code}"


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
