"""The data a run is made of: hypotheses, results and settings.

Names, fields and enum values are those of the legacy ThreadPool module, so code written for it
ports by changing one import line.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from .classification import (
    HypothesisStatus,
    TestResult,
    confidence_for,
    is_flaky,
    majority_outcome,
    repeated_confidence,
    repeated_verdict,
    verdict_for,
)
from .halting import StopOn


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
        """A JSON-ready dictionary (the status as its value)."""
        data = asdict(self)
        data["status"] = self.status.value
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

    ``status`` (the verdict) is derived from ``result`` unless given, and ``metrics["confidence"]``
    is filled from the single-run scoring table unless given, so results built by hand by legacy
    code behave like the executor's own. A result of several ``attempts`` (see
    :meth:`from_attempts`) takes both from the agreement of its attempts instead.
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
    #: The deadline, in seconds, at which the runner stopped the script; None when the script
    #: ended on its own (an inner ``timeout`` exiting 124 is a TIMEOUT too, but not ours).
    timed_out_after: Optional[float] = None

    def __post_init__(self) -> None:
        if self.status is None:
            repeated = len(self.attempts) > 1
            self.status = repeated_verdict(self.outcomes) if repeated else verdict_for(self.result)
        self.metrics.setdefault("confidence", self.scored_confidence())

    @classmethod
    def from_attempts(cls, attempts: Sequence[TestExecutionResult]) -> TestExecutionResult:
        """Combine the runs of one hypothesis: the majority outcome, the median duration of its
        runs, the exit status and output of the last of them, and the resource use of all."""
        outcome, _count = majority_outcome([attempt.result for attempt in attempts])
        agreeing = [attempt for attempt in attempts if attempt.result is outcome]
        return dataclasses.replace(
            agreeing[-1],
            duration=statistics.median(attempt.duration for attempt in agreeing),
            status=None,
            metrics=combined_usage([attempt.metrics for attempt in attempts]),
            attempts=list(attempts),
        )

    @property
    def confidence(self) -> float:
        """The confidence in this result's verdict, from 0 to 1."""
        return float(self.metrics["confidence"])

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
            return repeated_confidence([(a.result, a.duration) for a in self.attempts])
        return confidence_for(self.result, self.duration)

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
            "flaky": self.flaky,
            "outcome_counts": self.outcome_counts,
            "timed_out_after": self.timed_out_after,
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
}


def combined_usage(metrics: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """The resource use of several attempts: the highest peak, the total CPU time and the
    total number of processes (a metric missing from any attempt is left out)."""
    return {
        name: combine(m[name] for m in metrics)
        for name, combine in USAGE_COMBINERS.items()
        if metrics and all(name in m for m in metrics)
    }


#: The most runs of one hypothesis that one run may ask for.
MAX_REPEATS = 100
#: The verdict names ``stop_on`` accepts.
STOP_ON_VALUES = tuple(condition.value for condition in StopOn)


@dataclass
class FalsificationConfig:
    """Settings of a falsification run.

    Accepts every keyword of the legacy configuration (most of which only the legacy
    orchestrator read); the executor uses the test-execution group and the new settings below.
    """

    # Hypothesis management (legacy)
    max_hypotheses: int = 5
    min_hypotheses: int = 2
    require_falsifiability: bool = True
    # Ranking weights (legacy)
    probability_weight: float = 0.5
    impact_weight: float = 0.3
    complexity_weight: float = -0.2
    # Test execution
    test_timeout: float = 300
    min_parallel_time: float = 60
    test_command: str = "pytest"
    max_concurrent_tests: int = 5
    # Overhead timings in seconds (legacy; informative)
    worktree_creation_time: float = 8.0
    session_startup_time: float = 5.0
    environment_setup_time: float = 5.0
    cleanup_time: float = 3.0
    # Paths (legacy)
    project_root: str = ""
    output_dir: str = ""
    config_file: str = ""
    # Agent integration and session persistence (legacy; kept so old configs load)
    use_root_cause_analyst: bool = True
    use_sequential_thinking: bool = True
    use_quality_engineer: bool = True
    use_memory_mcp: bool = True
    session_prefix: str = "falsification"
    # New: how a run stops what overstays and how much output it keeps
    kill_grace: float = 2.0
    max_output_bytes: int = 1024 * 1024
    # New: run each hypothesis several times; stop the run once a verdict is reached
    repeats: int = 1
    stop_on: Optional[str] = None

    def __post_init__(self) -> None:
        _require(
            self.test_timeout > 0, f"test_timeout must be > 0 seconds, got {self.test_timeout!r}"
        )
        _require(
            isinstance(self.max_concurrent_tests, int) and self.max_concurrent_tests >= 1,
            f"max_concurrent_tests must be a whole number >= 1, got {self.max_concurrent_tests!r}",
        )
        _require(self.kill_grace >= 0, f"kill_grace must be >= 0 seconds, got {self.kill_grace!r}")
        _require(
            isinstance(self.max_output_bytes, int) and self.max_output_bytes >= 2,
            f"max_output_bytes must be a whole number >= 2, got {self.max_output_bytes!r}",
        )
        _require(
            isinstance(self.repeats, int) and 1 <= self.repeats <= MAX_REPEATS,
            f"repeats must be a whole number from 1 to {MAX_REPEATS}, got {self.repeats!r}",
        )
        _require(
            self.stop_on is None or self.stop_on in STOP_ON_VALUES,
            f"stop_on must be None or one of {', '.join(STOP_ON_VALUES)}, got {self.stop_on!r}",
        )

    @classmethod
    def from_dict(cls, config_dict: Mapping[str, Any]) -> FalsificationConfig:
        """Build from a mapping, ignoring keys this version does not know (as the legacy did)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in config_dict.items() if k in known})

    def to_dict(self) -> Dict[str, Any]:
        """Every setting as a plain dictionary."""
        return asdict(self)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
