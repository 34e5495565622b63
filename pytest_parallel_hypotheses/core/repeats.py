"""How many times a hypothesis runs: a fixed number, or until its outcome is decided.

The engine asks its policy after every attempt whether to run another, so the statistics stay
here, pure, and the engine's loop stays a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

from .classification import TestResult
from .config import FalsificationConfig
from .models import TestExecutionResult
from .results import decided_result, repeated_result
from .sequential import Decision, Evidence


class RepeatPolicy(Protocol):
    """Decides after each attempt whether another one runs, and combines the attempts."""

    def another(self, attempts: Sequence[TestExecutionResult], elapsed: float) -> bool:
        """True to run one more attempt, given those so far and the seconds they took."""

    def combine(self, attempts: Sequence[TestExecutionResult]) -> TestExecutionResult:
        """The result of the hypothesis from its attempts."""


@dataclass(frozen=True)
class FixedRepeats:
    """Exactly ``count`` attempts; the verdict and confidence of the agreement rules, with
    the evidence of the attempts alongside when there are several."""

    count: int
    alpha: float
    tolerance: float

    def another(self, attempts: Sequence[TestExecutionResult], elapsed: float) -> bool:
        return len(attempts) < self.count

    def combine(self, attempts: Sequence[TestExecutionResult]) -> TestExecutionResult:
        if len(attempts) == 1:
            return repeated_result(attempts, None)  # one run is no evidence: not worth its cost
        outcomes = [attempt.result for attempt in attempts]
        return repeated_result(attempts, Evidence.of(outcomes, self.alpha, self.tolerance))


@dataclass(frozen=True)
class SequentialRepeats:
    """Attempts until the pass rate is decided at level ``alpha`` (adding to ``prior``, the
    runs of an earlier session on the same inputs), the cap is reached, the time budget is
    spent, or an attempt neither passes nor fails (repeating a broken, skipped or hanging
    script teaches nothing)."""

    prior: Evidence
    max_repeats: int
    budget: Optional[float] = None

    def another(self, attempts: Sequence[TestExecutionResult], elapsed: float) -> bool:
        if not attempts:
            return True  # a result needs an attempt, even when reused runs decided already
        if attempts[-1].result not in (TestResult.PASS, TestResult.FAIL):
            return False
        if len(attempts) >= self.max_repeats:
            return False
        if self.budget is not None and elapsed >= self.budget:
            return False
        return self.evidence(attempts).decision is Decision.UNDECIDED

    def evidence(self, attempts: Sequence[TestExecutionResult]) -> Evidence:
        """The prior runs and these attempts, as evidence."""
        return self.prior.extended(attempt.result for attempt in attempts)

    def combine(self, attempts: Sequence[TestExecutionResult]) -> TestExecutionResult:
        return decided_result(attempts, self.evidence(attempts))


def rejudged(
    raw: TestExecutionResult, attempts: Sequence[TestExecutionResult], *, auto: bool
) -> TestExecutionResult:
    """``raw`` combined again from its ``attempts`` as reclassified (by a hook): the runs
    reused from an earlier session stay in its evidence."""
    if raw.evidence is None:
        combined = TestExecutionResult.from_attempts(attempts)
    else:
        prior = raw.evidence.without(raw.outcomes)
        evidence = prior.extended(attempt.result for attempt in attempts)
        combine = decided_result if auto else repeated_result
        combined = combine(attempts, evidence)
    combined.cached_at = raw.cached_at
    combined.not_counted = raw.not_counted
    return combined


def repeat_policy(config: FalsificationConfig, prior: Optional[Evidence] = None) -> RepeatPolicy:
    """The policy that ``config`` asks for; ``prior`` counts only under ``repeats="auto"``."""
    if config.auto_repeat:
        start = prior or Evidence(0, 0, config.alpha, config.flake_tolerance)
        return SequentialRepeats(start, config.max_repeats, config.repeat_budget)
    assert isinstance(config.repeats, int)  # checked by the config
    return FixedRepeats(config.repeats, config.alpha, config.flake_tolerance)
