"""Run many hypothesis scripts at once, within a concurrency limit, and judge each outcome.

``AsyncTestExecutor`` is the engine; ``TestExecutor`` keeps the name and synchronous methods of
the legacy ThreadPool executor so old code keeps working. Every hypothesis given gets exactly
one result, errors included, and nothing a run started outlives it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..core.classification import TestResult, confidence_for
from ..core.config import FalsificationConfig
from ..core.halting import StopCondition, StopOn
from ..core.models import Hypothesis, TestExecutionResult
from ..core.sizes import format_size
from ..finding.layout import PathLike
from .bridge import run_sync
from .events import RunObserver
from .gate import StartGate
from .machine import total_memory
from .runs import HypothesisRun, RunInput, plan, run_in
from .spawn import keep_exit_statuses
from .stream import ResultStream
from .tree import MARKER_PREFIX

__all__ = ["AsyncTestExecutor", "HypothesisRun", "ResultStream", "TestExecutor"]


#: Fixed costs of one parallel run in the legacy break-even rule, in seconds.
PARALLEL_BASE_OVERHEAD = 7.0
PARALLEL_PER_HYPOTHESIS_OVERHEAD = 16.0

#: A stop condition, or the name of a verdict to stop on (see :class:`~.halting.StopOn`).
StopInput = Union[StopCondition, str, None]


class AsyncTestExecutor:
    """Runs hypothesis scripts concurrently on asyncio and classifies each outcome."""

    def __init__(
        self,
        config: Optional[FalsificationConfig] = None,
        *,
        marker_prefix: str = MARKER_PREFIX,
        setup_records: Optional[Path] = None,
    ) -> None:
        if not marker_prefix.startswith(MARKER_PREFIX):
            raise ValueError(
                f"marker_prefix must start with {MARKER_PREFIX!r}, got {marker_prefix!r}"
            )
        self.config = config or FalsificationConfig()
        keep_exit_statuses()
        #: The start of each run's marker variable: a caller that gives its own can find every
        #: process of its runs, even after the process that ran them died (pytest-xdist).
        self.marker_prefix = marker_prefix
        #: A folder the processes of one session share (pytest-xdist's workers), where each
        #: worktree's setup step records its outcome, so that it runs once in the session.
        self.setup_records = setup_records

    @property
    def timeout_seconds(self) -> float:
        """The default deadline of one script (legacy attribute)."""
        return self.config.test_timeout

    @property
    def min_parallel_time(self) -> float:
        """Legacy attribute, kept for code that reads it."""
        return self.config.min_parallel_time

    def _calculate_confidence(self, result: TestResult, duration: float) -> float:
        """The legacy executor's scoring of one run, kept for code that calls it."""
        return confidence_for(result, duration)

    def should_parallelize(
        self,
        hypotheses: Sequence[Hypothesis],
        recorded_durations: Optional[Mapping[str, float]] = None,
    ) -> bool:
        """The legacy break-even rule: parallel only if it saves time over running one by one.

        Sequential time is the sum of the estimated times; parallel time is the longest one plus
        7 s of base overhead and 16 s per worktree (create, set up, clean up). A hypothesis
        without an estimate counts with its duration in ``recorded_durations`` (by id), if any.
        """
        if len(hypotheses) <= 1:
            return False
        recorded = recorded_durations or {}
        times = [h.estimated_test_time or recorded.get(h.id, 0.0) for h in hypotheses]
        overhead = PARALLEL_BASE_OVERHEAD + PARALLEL_PER_HYPOTHESIS_OVERHEAD * len(times)
        return sum(times) > max(times) + overhead

    def as_completed(
        self,
        hypotheses: Iterable[RunInput],
        worktrees: Optional[Mapping[str, PathLike]] = None,
        *,
        stop_on: StopInput = None,
        observer: Optional[RunObserver] = None,
        gate: Optional[StartGate] = None,
    ) -> ResultStream:
        """Results in the order they complete, as an async iterator.

        Use it as ``async with executor.as_completed(...) as results: async for r in results``:
        leaving the block early, or breaking out of the loop, stops every script still running
        and skips those not started. A :class:`Hypothesis` takes its worktree from
        ``worktrees``; a :class:`HypothesisRun` carries its own. ``stop_on`` (a verdict name or
        a callable; default: the config's ``stop_on``) ends the run early once a result meets
        it: the others still get one result each, skipped with the reason. ``observer`` hears
        of each attempt as it starts and ends (:mod:`.events`). With a ``gate``
        (:mod:`.gate`), no script starts while a result that may end the run awaits the
        consumer's decision. Raises ``ValueError`` for duplicates, for a worktree's metadata
        file that cannot be used, and for settings that are not valid (a legacy caller may set
        a field of the config after building it), before anything runs.
        """
        _check_settings(self.config)
        condition = _stop_condition(stop_on if stop_on is not None else self.config.stop_on)
        return ResultStream(
            self.config,
            plan(hypotheses, worktrees or {}),
            condition,
            marker_prefix=self.marker_prefix,
            observer=observer,
            gate=gate,
            setup_records=self.setup_records,
        )

    async def execute_parallel_async(
        self,
        hypotheses: Sequence[RunInput],
        worktrees: Optional[Mapping[str, PathLike]] = None,
        *,
        stop_on: StopInput = None,
        observer: Optional[RunObserver] = None,
    ) -> List[TestExecutionResult]:
        """One result per hypothesis, in the order given."""
        stream = self.as_completed(hypotheses, worktrees, stop_on=stop_on, observer=observer)
        results: Dict[Tuple[str, str], TestExecutionResult] = {}
        async with stream:
            async for result in stream:
                results[(result.worktree_path, result.hypothesis_id)] = result
        return [results[run.key] for run in stream.runs]

    async def execute_single_async(
        self, hypothesis: Hypothesis, worktree: Optional[PathLike]
    ) -> TestExecutionResult:
        """Test one hypothesis in one worktree."""
        return (await self.execute_parallel_async([run_in(hypothesis, worktree)]))[0]

    def execute_parallel(
        self,
        hypotheses: Sequence[RunInput],
        worktrees: Optional[Mapping[str, PathLike]] = None,
        *,
        stop_on: StopInput = None,
        observer: Optional[RunObserver] = None,
    ) -> List[TestExecutionResult]:
        """Synchronous :meth:`execute_parallel_async`, safe inside a running event loop."""
        return run_sync(
            lambda: self.execute_parallel_async(
                hypotheses, worktrees, stop_on=stop_on, observer=observer
            )
        )

    def execute_single(
        self, hypothesis: Hypothesis, worktree: Optional[PathLike]
    ) -> TestExecutionResult:
        """Synchronous :meth:`execute_single_async`, safe inside a running event loop."""
        return run_sync(lambda: self.execute_single_async(hypothesis, worktree))


class TestExecutor(AsyncTestExecutor):
    """The legacy synchronous executor, now backed by the asyncio engine.

    ``TestExecutor(config).execute_parallel(hypotheses, worktrees)`` works unchanged from plain
    code, from worker threads and from inside a running event loop: each call runs on a private
    loop in a worker thread and leaves the caller's loop alone.
    """

    __test__ = False  # not a pytest test class


def _stop_condition(stop_on: StopInput) -> Optional[StopCondition]:
    """A stop condition from a callable or a verdict name; ValueError names the valid ones."""
    if not isinstance(stop_on, str):
        return stop_on
    try:
        return StopOn(stop_on)
    except ValueError:
        names = ", ".join(repr(condition.value) for condition in StopOn)
        raise ValueError(f"stop_on must be one of {names}, got {stop_on!r}") from None


def _check_settings(config: FalsificationConfig) -> None:
    """Raise ``ValueError`` for settings that are not valid, or that this machine cannot
    meet: a free-memory floor above all of its memory would hold every script back."""
    config.check()
    floor, total = config.memory_free_floor, total_memory()
    if floor is not None and total is not None and floor > total:
        raise ValueError(
            f"memory_free_floor must be at most this machine's memory ({format_size(total)}), "
            f"got {floor!r} ({format_size(floor)})"
        )
