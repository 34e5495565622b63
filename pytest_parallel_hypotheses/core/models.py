"""The data a run is made of: hypotheses, results and settings.

Names, fields and enum values are those of the legacy ThreadPool module, so code written for it
ports by changing one import line.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from .classification import (
    HypothesisStatus,
    Polarity,
    TestResult,
    confidence_for,
    is_flaky,
    majority_outcome,
    repeated_confidence,
    repeated_verdict,
    seconds_at_work,
    verdict_for,
)
from .sequential import Evidence
from .tested import CodeUnderTest


@dataclass
class Hypothesis:
    """One candidate cause of a bug, with what is needed to rank and test it."""

    id: str
    description: str
    test_strategy: str = ""
    expected_behavior: str = ""
    estimated_test_time: float = 0.0
    probability: float = 0.5
    impact: float = 0.5
    test_complexity: float = 0.5
    status: HypothesisStatus = HypothesisStatus.PENDING
    test_results: Optional[Dict[str, Any]] = None
    confidence_score: Optional[float] = None
    dependencies: List[str] = field(default_factory=list)

    def is_falsifiable(self) -> bool:
        """A hypothesis with nothing said about it cannot be tested empirically."""
        return bool(self.test_strategy or self.description)

    def ranking_score(self, weights: Mapping[str, float]) -> float:
        """Rank for prioritisation: likely and impactful first, complex last."""
        return (
            self.probability * weights.get("probability", 0.5)
            + self.impact * weights.get("impact", 0.3)
            - self.test_complexity * weights.get("complexity", 0.2)
        )

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (the status as its value). Field by field rather than
        ``asdict``, which deep-copies every value and costs a run of many hypotheses dearly;
        only the containers are copied."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = self.status.value
        data["dependencies"] = list(self.dependencies)
        data["test_results"] = copy.deepcopy(self.test_results)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hypothesis:
        """Build from a metadata mapping; unknown keys raise so typos are not silently lost."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown hypothesis field(s): {', '.join(unknown)}")
        values = dict(data)
        if "status" in values and not isinstance(values["status"], HypothesisStatus):
            values["status"] = HypothesisStatus(values["status"])
        return cls(**values)


@dataclass
class TestExecutionResult:
    """The outcome of running one hypothesis script, once or several times.

    ``status`` (the verdict) is derived from ``result`` unless given. ``metrics`` is what it is
    given, empty for a result built by hand as in the legacy class; the executor's results carry
    ``metrics["confidence"]``, and :attr:`confidence` scores any other result on demand. A
    result of several ``attempts`` (see :meth:`from_attempts`) takes both from the agreement of
    its attempts instead.
    """

    __test__ = False  # a data type, not a pytest test class

    hypothesis_id: str
    result: TestResult
    duration: float
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    worktree_path: str = ""
    error_message: str = ""
    metrics: Dict[str, Any] = field(default_factory=dict)
    status: Optional[HypothesisStatus] = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    #: Every run of the script, in the order they ran (empty if the script never started).
    attempts: List[TestExecutionResult] = field(default_factory=list)
    #: The runs that did not count: short of CPUs under ``auto``, each was run again once
    #: the CPUs held it. What one did may be the slowdown's, or the script's own flakiness.
    not_counted: List[TestExecutionResult] = field(default_factory=list)
    #: The deadline, in seconds, at which the runner stopped the script; None when the script
    #: ended on its own (an inner ``timeout`` exiting 124 is a TIMEOUT too, but not ours).
    timed_out_after: Optional[float] = None
    #: What the runs show about the script's pass rate (None for a single run, unless runs of
    #: an earlier session count with it).
    evidence: Optional[Evidence] = None
    #: When the result was reused from the verdict cache: the time of the original run (ISO
    #: 8601, UTC); None for a result of this run.
    cached_at: Optional[str] = None
    #: How the script is written: to disprove the hypothesis (exit 0 falsifies) or to confirm
    #: it (exit 0 supports); the verdict follows from the outcome and this.
    polarity: Polarity = Polarity.DISPROVE
    #: What the worktree's setup step did before the first attempt (see the setup docs); None
    #: when the hypothesis has no setup step.
    setup: Optional[Dict[str, Any]] = None
    #: Which code the script was pointed at: the import locations redirected into its
    #: worktree, or the worktree's own virtual environment (None: not known, never ran).
    code_under_test: Optional[CodeUnderTest] = None
    #: The script's process tree and last output lines when our deadline fired (see
    #: :mod:`~pytest_parallel_hypotheses.engine.snapshot`); None otherwise.
    timeout_snapshot: Optional[Dict[str, Any]] = None
    #: The file holding all the kept stdout (and stderr) when the output was written to files;
    #: ``stdout`` and ``stderr`` are then an excerpt of it (None: they are all that was kept).
    stdout_file: Optional[str] = None
    stderr_file: Optional[str] = None

    def __post_init__(self) -> None:
        if self.status is None:
            if len(self.attempts) > 1:
                self.status = repeated_verdict(self.outcomes, self.polarity)
            else:
                self.status = verdict_for(self.result, self.polarity)

    @classmethod
    def from_attempts(cls, attempts: Sequence[TestExecutionResult]) -> TestExecutionResult:
        """Combine the runs of one hypothesis: the majority outcome, the median duration of its
        runs, the exit status and output of the last of them, and the resource use of all."""
        if len(attempts) == 1:  # as most hypotheses are run: no majority to find
            combined = copy.copy(attempts[0])
            combined.attempts = list(attempts)
            combined.status = verdict_for(combined.result, combined.polarity)
        else:
            outcome, _count = majority_outcome([attempt.result for attempt in attempts])
            agreeing = [attempt for attempt in attempts if attempt.result is outcome]
            kept = output_source(attempts, outcome)
            assert kept is not None  # the majority outcome is some attempt's
            combined = dataclasses.replace(
                attempts[kept],
                duration=statistics.median([attempt.duration for attempt in agreeing]),
                status=None,
                attempts=list(attempts),
            )
        combined.metrics = combined_usage([attempt.metrics for attempt in attempts])
        combined.metrics["confidence"] = combined.scored_confidence()
        return combined

    @property
    def confidence(self) -> float:
        """The confidence in this result's verdict, from 0 to 1: ``metrics["confidence"]`` when
        set (by the executor, or by a hook), else the score of the scoring rules."""
        known = self.metrics.get("confidence")
        return self.scored_confidence() if known is None else float(known)

    @property
    def outcomes(self) -> List[TestResult]:
        """The outcome of each attempt."""
        return [attempt.result for attempt in self.attempts]

    @property
    def flaky(self) -> bool:
        """True when the attempts both passed and failed (the verdict is then inconclusive)."""
        return is_flaky(self.outcomes)

    @property
    def outcome_counts(self) -> Dict[str, int]:
        """How many attempts had each outcome, every outcome named."""
        outcomes = self.outcomes
        return {outcome.value: outcomes.count(outcome) for outcome in TestResult}

    def scored_confidence(self) -> float:
        """The score of the scoring rules: from the agreement of the attempts when there are
        several, else the single-run table."""
        if len(self.attempts) > 1:
            return repeated_confidence([(a.result, a.seconds_at_work) for a in self.attempts])
        return confidence_for(self.result, self.seconds_at_work)

    @property
    def seconds_at_work(self) -> float:
        """How long its run had the CPUs it wanted (:func:`.seconds_at_work`)."""
        metrics = self.metrics
        return seconds_at_work(
            self.duration, metrics.get("cpu_wait_share"), metrics.get("cpu_seconds")
        )

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary: the legacy keys first, then the newer ones."""
        assert self.status is not None  # set in __post_init__
        return {
            "hypothesis_id": self.hypothesis_id,
            "result": self.result.value,
            "duration": self.duration,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "worktree_path": self.worktree_path,
            "error_message": self.error_message,
            "metrics": dict(self.metrics),
            "status": self.status.value,
            "stdout_bytes": self.stdout_bytes,
            "stderr_bytes": self.stderr_bytes,
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "attempts": [attempt.attempt_dict() for attempt in self.attempts],
            "not_counted": [attempt.attempt_dict() for attempt in self.not_counted],
            "flaky": self.flaky,
            "outcome_counts": self.outcome_counts,
            "timed_out_after": self.timed_out_after,
            "evidence": None if self.evidence is None else self.evidence.to_dict(),
            "cached": self.cached_at is not None,
            "cached_at": self.cached_at,
            "polarity": self.polarity.value,
            "setup": None if self.setup is None else dict(self.setup),
            "code_under_test": None
            if self.code_under_test is None
            else self.code_under_test.to_dict(),
            "timeout_snapshot": self.timeout_snapshot,
            "stdout_file": self.stdout_file,
            "stderr_file": self.stderr_file,
        }

    def attempt_dict(self) -> Dict[str, Any]:
        """This result as one attempt of several: what it did, without its output."""
        return {
            "result": self.result.value,
            "exit_code": self.exit_code,
            "duration": self.duration,
            "error_message": self.error_message,
            "metrics": dict(self.metrics),
        }


#: Resource metrics of a run, and how the values of several attempts combine.
USAGE_COMBINERS: Mapping[str, Callable[[Iterable[Any]], Any]] = {
    "peak_rss_bytes": max,
    "cpu_seconds": lambda values: round(sum(values), 3),
    "processes": sum,
    "cpu_wait_share": max,
    "cpu_waited_seconds": lambda values: round(sum(values), 3),
}


def output_source(attempts: Sequence[TestExecutionResult], outcome: TestResult) -> Optional[int]:
    """The index of the attempt whose exit status and output a combined result of ``outcome``
    keeps: the last with that outcome (None if none has it)."""
    return next((i for i in reversed(range(len(attempts))) if attempts[i].result is outcome), None)


def combined_usage(metrics: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """The resource use of several attempts: the highest peak and wait for a CPU, the total
    CPU time and the total number of processes (a metric missing from any attempt is left
    out)."""
    return {
        name: combine(m[name] for m in metrics)
        for name, combine in USAGE_COMBINERS.items()
        if metrics and all(name in m for m in metrics)
    }
