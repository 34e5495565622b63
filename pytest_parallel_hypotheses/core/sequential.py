"""Evidence from repeated runs: an anytime-valid confidence sequence for a script's pass rate,
and the decision it supports (consistently passes, consistently fails, or flaky).

Checking a fixed-N bound after every run and stopping when it looks good is peeking: the bound
no longer holds. The mixture martingale below stays valid at every stopping point (Ville's
inequality), so a run may stop as soon as the evidence suffices. Pure functions, no I/O.

Method: H. Robbins, "Statistical methods related to the law of the iterated logarithm" (1970),
as a confidence sequence in S. R. Howard, A. Ramdas, J. McAuliffe, J. Sekhon,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2), 2021.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from .classification import TestResult

#: Default error level: a decision is wrong with probability at most this, whenever it stops.
DEFAULT_ALPHA = 0.05
#: Default tolerance: a pass rate within this of 1 (of 0) counts as consistently passing
#: (failing); strictly between the two is flaky.
DEFAULT_TOLERANCE = 0.25
#: Default cap on the runs of one hypothesis under ``repeat=auto``: a script passing half the
#: time needs at least 38 runs to be shown flaky at the default level and tolerance.
DEFAULT_MAX_REPEATS = 40

#: Prior weight on "always passes" and on "always fails"; the rest is uniform on [0, 1].
#: Most scripts are deterministic, so the atoms let such a script decide in few runs.
ATOM_WEIGHT = 0.25
_SLAB_WEIGHT = 1 - 2 * ATOM_WEIGHT
#: Bisection steps for the ends of the interval (2**-60: far below what is shown).
_BISECTION_STEPS = 60
#: The natural logarithm of the largest float.
_LOG_MAX_FLOAT = math.log(sys.float_info.max)


class Decision(Enum):
    """What the runs of one script have shown about its pass rate."""

    PASSES = "passes"  # pass rate >= 1 - tolerance
    FAILS = "fails"  # pass rate <= tolerance
    FLAKY = "flaky"  # strictly between
    UNDECIDED = "undecided"  # not yet shown at the error level


@dataclass(frozen=True)
class Evidence:
    """Passes and fails of one script on fixed code, and what they show at level ``alpha``."""

    passes: int
    fails: int
    alpha: float = DEFAULT_ALPHA
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.passes < 0 or self.fails < 0:
            raise ValueError(f"counts must be >= 0, got {self.passes} and {self.fails}")
        check_alpha(self.alpha)
        check_tolerance(self.tolerance)

    @property
    def runs(self) -> int:
        """Runs that count as evidence (passes and fails only)."""
        return self.passes + self.fails

    def add(self, outcome: TestResult) -> Evidence:
        """This evidence with one more run; outcomes other than pass and fail add nothing."""
        passed = outcome is TestResult.PASS
        failed = outcome is TestResult.FAIL
        return Evidence(self.passes + passed, self.fails + failed, self.alpha, self.tolerance)

    def extended(self, outcomes: Iterable[TestResult]) -> Evidence:
        """This evidence with more runs."""
        evidence = self
        for outcome in outcomes:
            evidence = evidence.add(outcome)
        return evidence

    def without(self, outcomes: Iterable[TestResult]) -> Evidence:
        """This evidence without some of its runs: what came before them."""
        kept = list(outcomes)
        passes = self.passes - kept.count(TestResult.PASS)
        fails = self.fails - kept.count(TestResult.FAIL)
        return Evidence(passes, fails, self.alpha, self.tolerance)

    @property
    def interval(self) -> Tuple[float, float]:
        """The anytime-valid ``1 - alpha`` interval for the pass rate: every ``p`` whose
        mixture martingale is still below ``1 / alpha``."""
        return confidence_interval(self.passes, self.fails, self.alpha)

    def e_value(self, decision: Decision) -> float:
        """The evidence against ``decision`` being wrong: the least martingale value over the
        pass rates that would make it wrong (1 for no evidence)."""
        if decision is Decision.UNDECIDED or self.runs == 0:
            return 1.0
        wrong = _wrong_rates(decision, self.tolerance)
        return min(_exp(_log_infimum(self.passes, self.fails, low, high)) for low, high in wrong)

    def confidence_in(self, decision: Decision) -> float:
        """``1 - 1 / e``: the decision holds at every error level above ``1 - confidence``."""
        return max(0.0, 1.0 - 1.0 / self.e_value(decision))

    @property
    def best(self) -> Decision:
        """The decision with the most evidence behind it (PASSES on a tie)."""
        candidates = (Decision.PASSES, Decision.FAILS, Decision.FLAKY)
        return max(candidates, key=self.e_value)

    @property
    def decision(self) -> Decision:
        """The decision shown at level ``alpha``, or UNDECIDED."""
        best = self.best
        return best if self.e_value(best) >= 1 / self.alpha else Decision.UNDECIDED

    @property
    def confidence(self) -> float:
        """The confidence in :attr:`best`: 0.95 means that the procedure that reports it is
        wrong at most 5% of the time, wherever it stops."""
        return self.confidence_in(self.best) if self.runs else 0.0

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary: the counts, the interval, the decision and confidence."""
        low, high = self.interval
        return {
            "runs": self.runs,
            "passes": self.passes,
            "fails": self.fails,
            "interval": [low, high],
            "alpha": self.alpha,
            "tolerance": self.tolerance,
            "decision": self.decision.value,
            "confidence": self.confidence,
        }

    @classmethod
    def of(
        cls,
        outcomes: Iterable[TestResult],
        alpha: float = DEFAULT_ALPHA,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> Evidence:
        """The evidence of these outcomes (pass and fail count, the others do not)."""
        return cls(0, 0, alpha, tolerance).extended(outcomes)


def log_martingale(passes: int, fails: int, rate: float) -> float:
    """log M_n(rate): the mixture likelihood of the runs over their likelihood at ``rate``.

    Under independent runs with pass rate ``rate`` it is a nonnegative martingale from 1, so
    it reaches ``1 / alpha`` with probability at most ``alpha`` (Ville's inequality).
    """
    if (rate <= 0 and passes) or (rate >= 1 and fails):
        return math.inf
    at_rate = _xlogy(passes, rate) + _xlogy(fails, 1 - rate)
    return math.log(_mixture(passes, fails)) - at_rate


def confidence_interval(passes: int, fails: int, alpha: float) -> Tuple[float, float]:
    """The set of rates whose martingale is below ``1 / alpha``: an interval, since the log
    martingale is convex in the rate."""
    threshold = math.log(1 / alpha)
    n = passes + fails
    if n == 0:
        return (0.0, 1.0)
    centre = passes / n
    low = (
        0.0
        if log_martingale(passes, fails, 0.0) < threshold
        else _edge(passes, fails, threshold, centre, 0.0)
    )
    high = (
        1.0
        if log_martingale(passes, fails, 1.0) < threshold
        else _edge(passes, fails, threshold, centre, 1.0)
    )
    return (low, high)


def check_alpha(alpha: object) -> None:
    """An error level must lie strictly between 0 and 0.5."""
    if not _strictly_between(alpha, 0.0, 0.5):
        raise ValueError(f"alpha must be a number strictly between 0 and 0.5, got {alpha!r}")


def check_tolerance(tolerance: object) -> None:
    """A flake tolerance must lie strictly between 0 and 0.5 (else passes and fails meet)."""
    if not _strictly_between(tolerance, 0.0, 0.5):
        raise ValueError(
            f"flake tolerance must be a number strictly between 0 and 0.5, got {tolerance!r}"
        )


def fewest_runs_to_decide(alpha: float, tolerance: float, limit: int = 10_000) -> int:
    """The fewest runs after which any decision can be reached: that of a script that
    always passes (or always fails; the method is symmetric)."""
    for runs in range(1, limit + 1):
        if Evidence(runs, 0, alpha, tolerance).decision is Decision.PASSES:
            return runs
    return limit + 1


def _strictly_between(value: object, low: float, high: float) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and low < value < high  # type: ignore[arg-type,operator]


def _mixture(passes: int, fails: int) -> float:
    """The prior-averaged likelihood: atoms at 0 and 1 plus a uniform slab (a Beta(1, 1)
    mixture, whose average is the Beta function B(passes + 1, fails + 1))."""
    slab = math.exp(
        math.lgamma(passes + 1) + math.lgamma(fails + 1) - math.lgamma(passes + fails + 2)
    )
    atoms = ATOM_WEIGHT * ((fails == 0) + (passes == 0))
    return _SLAB_WEIGHT * slab + atoms


def _exp(power: float) -> float:
    """``e ** power``, infinite past the largest float: evidence that strong decides at any
    error level."""
    return math.exp(power) if power < _LOG_MAX_FLOAT else math.inf


def _xlogy(count: int, value: float) -> float:
    return count * math.log(value) if count else 0.0


def _wrong_rates(decision: Decision, tolerance: float) -> Tuple[Tuple[float, float], ...]:
    """The closed ranges of pass rates under which ``decision`` would be wrong."""
    if decision is Decision.PASSES:
        return ((0.0, 1.0 - tolerance),)
    if decision is Decision.FAILS:
        return ((tolerance, 1.0),)
    return ((0.0, tolerance), (1.0 - tolerance, 1.0))


def _log_infimum(passes: int, fails: int, low: float, high: float) -> float:
    """The least log martingale over rates in [low, high]: at the rate nearest the observed
    one, since the log martingale is convex with its minimum there."""
    observed = passes / (passes + fails)
    return log_martingale(passes, fails, min(max(observed, low), high))


def _edge(passes: int, fails: int, threshold: float, inside: float, outside: float) -> float:
    """Bisection for the rate between ``inside`` (below the threshold) and ``outside``
    (at or above it) where the log martingale crosses the threshold."""
    for _ in range(_BISECTION_STEPS):
        middle = (inside + outside) / 2
        if log_martingale(passes, fails, middle) < threshold:
            inside = middle
        else:
            outside = middle
    return inside


def parse_evidence(data: Mapping[str, Any]) -> Optional[Evidence]:
    """Evidence from its dictionary (:meth:`Evidence.to_dict`), or None if it is not one."""
    try:
        return Evidence(
            int(data["passes"]), int(data["fails"]), float(data["alpha"]), float(data["tolerance"])
        )
    except (KeyError, TypeError, ValueError):
        return None
