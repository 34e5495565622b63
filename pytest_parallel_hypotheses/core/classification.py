"""How a finished script is judged: exit status -> TestResult -> verdict, and a confidence score,
for a single run and for a hypothesis run several times.

Pure functions only, so the table and the scoring can be read, tested and overridden (through
the plugin's hooks) in one place.
"""

from __future__ import annotations

import math
import signal
import statistics
from collections import Counter
from enum import Enum
from typing import Optional, Sequence, Tuple

__all__ = [
    "CANNOT_EXECUTE_EXIT",
    "CANNOT_TEST_EXIT",
    "CRASH_SIGNALS",
    "INNER_TIMEOUT_EXIT",
    "NOT_FOUND_EXIT",
    "QUICK_RUN_SECONDS",
    "TIE_ORDER",
    "TIMEOUT_EXIT_CODE",
    "WILSON_Z",
    "Attempt",
    "HypothesisStatus",
    "Polarity",
    "TestResult",
    "agreement_confidence",
    "agreement_weight",
    "classify_exit",
    "confidence_for",
    "describe_exit",
    "is_flaky",
    "majority_outcome",
    "repeated_confidence",
    "repeated_verdict",
    "seconds_at_work",
    "signal_meaning",
    "verdict_for",
    "wilson_lower_bound",
]


class HypothesisStatus(Enum):
    """Where a hypothesis stands: the verdict once its script has run."""

    PENDING = "pending"
    TESTING = "testing"
    FALSIFIED = "falsified"
    SUPPORTED = "supported"
    INCONCLUSIVE = "inconclusive"


class Polarity(Enum):
    """How a hypothesis's script is written: to disprove it (exit 0 falsifies, the legacy
    meaning) or to confirm it (exit 0 supports), as for a test that a fix works."""

    DISPROVE = "disprove"
    CONFIRM = "confirm"


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
#: Exit statuses reported for a script that could not be started, as a shell reports them.
NOT_FOUND_EXIT = 127
CANNOT_EXECUTE_EXIT = 126

_VERDICTS = {
    TestResult.PASS: HypothesisStatus.FALSIFIED,
    TestResult.FAIL: HypothesisStatus.SUPPORTED,
    TestResult.TIMEOUT: HypothesisStatus.INCONCLUSIVE,
    TestResult.ERROR: HypothesisStatus.INCONCLUSIVE,
    TestResult.SKIP: HypothesisStatus.INCONCLUSIVE,
}

_CONFIRMED = {
    HypothesisStatus.FALSIFIED: HypothesisStatus.SUPPORTED,
    HypothesisStatus.SUPPORTED: HypothesisStatus.FALSIFIED,
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


def verdict_for(result: TestResult, polarity: Polarity = Polarity.DISPROVE) -> HypothesisStatus:
    """The verdict on the hypothesis that a single result supports. A script written to
    confirm swaps the two genuine verdicts; the inconclusive outcomes stay inconclusive."""
    verdict = _VERDICTS[result]
    if polarity is Polarity.CONFIRM:
        return _CONFIRMED.get(verdict, verdict)
    return verdict


def confidence_for(result: TestResult, duration: float) -> float:
    """The legacy single-run confidence: how far this one result can be trusted, for a run
    that worked ``duration`` seconds (see :func:`seconds_at_work`)."""
    if result is TestResult.TIMEOUT:
        return 0.3
    if result is TestResult.ERROR:
        return 0.2
    if result is TestResult.SKIP:
        return 0.0
    return 0.6 if duration < QUICK_RUN_SECONDS else 0.85


def seconds_at_work(
    duration: float, cpu_wait_share: Optional[float] = None, cpu_seconds: Optional[float] = None
) -> float:
    """How long a run worked, for the quick-run rule: its duration less the share of it that
    its most starved process waited for a CPU, but never less than the CPU time its processes
    used (a build of eight jobs on two CPUs waits for its own jobs, and works all along). A
    check that took 9 s on a crowded machine, waiting 80% of it, did no more than when it
    took 2 s alone."""
    if cpu_wait_share is None:
        return duration
    waited = min(max(cpu_wait_share, 0.0), 1.0)
    return min(duration, max(duration * (1.0 - waited), cpu_seconds or 0.0))


#: Ties between equally common outcomes of repeated runs go to the most informative one.
TIE_ORDER = (
    TestResult.FAIL,
    TestResult.PASS,
    TestResult.TIMEOUT,
    TestResult.ERROR,
    TestResult.SKIP,
)

#: z of a one-sided 95% bound: the lower bound is wrong at most one time in twenty.
WILSON_Z = 1.6448536269514722

#: An attempt as scoring sees it: its outcome and its duration in seconds.
Attempt = Tuple[TestResult, float]


def wilson_lower_bound(successes: float, trials: int) -> float:
    """The one-sided 95% Wilson score lower bound of the proportion ``successes / trials``
    (0 when there is no success): what the proportion is at least, given so few trials."""
    if successes <= 0:
        return 0.0
    z2 = WILSON_Z * WILSON_Z
    p = successes / trials
    spread = WILSON_Z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return (p + z2 / (2 * trials) - spread) / (1 + z2 / trials)


def agreement_weight(agreeing: int, attempts: int) -> float:
    """How many clean single runs ``agreeing`` out of ``attempts`` agreeing runs are worth:
    the Wilson bound of the net agreement, relative to that of one run."""
    net = 2 * agreeing - attempts
    return wilson_lower_bound(net, attempts) / wilson_lower_bound(1, 1)


def agreement_confidence(single: float, agreeing: int, attempts: int) -> float:
    """The confidence of ``attempts`` runs of which ``agreeing`` share the outcome whose
    single-run confidence is ``single``: ``1 - (1 - single) ** weight``, as if that many
    independent runs had each been right with probability ``single``."""
    weight = agreement_weight(agreeing, attempts)
    if weight == 1:
        return single  # exactly the single-run value, not a rounding of it
    if weight == 0 or single == 0:
        return 0.0
    if single == 1:
        return 1.0
    # 1 - (1 - single) ** weight, without losing a small ``single`` to rounding
    return -math.expm1(weight * math.log1p(-single))


def majority_outcome(outcomes: Sequence[TestResult]) -> Tuple[TestResult, int]:
    """The most common outcome and how often it occurred; ties go by :data:`TIE_ORDER`."""
    if not outcomes:
        raise ValueError("no attempt to score")
    counts = Counter(outcomes)
    best = max(counts, key=lambda outcome: (counts[outcome], -TIE_ORDER.index(outcome)))
    return best, counts[best]


def is_flaky(outcomes: Sequence[TestResult]) -> bool:
    """True when the same script both passed and failed: the runs contradict each other."""
    return TestResult.PASS in outcomes and TestResult.FAIL in outcomes


def repeated_verdict(
    outcomes: Sequence[TestResult], polarity: Polarity = Polarity.DISPROVE
) -> HypothesisStatus:
    """The verdict of several runs: inconclusive when flaky, else that of the majority."""
    if is_flaky(outcomes):
        return HypothesisStatus.INCONCLUSIVE
    return verdict_for(majority_outcome(outcomes)[0], polarity)


def repeated_confidence(attempts: Sequence[Attempt]) -> float:
    """The confidence of several runs (each an outcome and the seconds it worked): the
    single-run confidence of the majority outcome (at the median of its runs' seconds),
    strengthened or weakened by how far the runs agree.
    One attempt gives exactly :func:`confidence_for`."""
    outcome, agreeing = majority_outcome([result for result, _ in attempts])
    duration = float(statistics.median(d for result, d in attempts if result is outcome))
    return agreement_confidence(confidence_for(outcome, duration), agreeing, len(attempts))


#: What a shell's own exit statuses say when a script ends on them.
_SHELL_MEANINGS = {
    NOT_FOUND_EXIT: "a command it ran was not found: see its stderr",
    CANNOT_EXECUTE_EXIT: "a command it ran could not be executed: see its stderr",
}


def describe_exit(exit_code: int) -> str:
    """A short phrase for an exit status, naming the signal where there was one, or what a
    shell means by it (127: a command not found)."""
    meaning = signal_meaning(exit_code) or _SHELL_MEANINGS.get(exit_code)
    if meaning is None:
        return f"exit status {exit_code}"
    return meaning if exit_code < 0 else f"exit status {exit_code} ({meaning})"


def signal_meaning(exit_code: int) -> Optional[str]:
    """The signal an exit status tells of: ``killed by SIGSEGV`` for a negative one,
    ``SIGABRT in a child`` for 128 + N as a shell reports its child's death; else None."""
    if exit_code < 0:
        return f"killed by {_signal_name(-exit_code)}"
    if exit_code > 128 and exit_code - 128 < signal.NSIG:
        return f"{_signal_name(exit_code - 128)} in a child"
    return None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
