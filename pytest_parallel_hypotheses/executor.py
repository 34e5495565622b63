"""Run many hypothesis scripts at once, within a concurrency limit, and judge each outcome.

``AsyncTestExecutor`` is the engine; ``TestExecutor`` keeps the name and synchronous methods of
the legacy ThreadPool executor so old code keeps working. Every hypothesis given gets exactly
one result, errors included, and nothing a run started outlives it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import (
    AsyncIterator,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    Union,
)

from .background import run_sync
from .classification import (
    TIMEOUT_EXIT_CODE,
    HypothesisStatus,
    TestResult,
    classify_exit,
    describe_exit,
)
from .halting import StopCondition, StopOn, stop_reason
from .metrics import ResourceSampler
from .models import FalsificationConfig, Hypothesis, TestExecutionResult
from .process import ProcessOutcome, run_script
from .scheduling import start_order
from .scripts import PathLike, ScriptProblem, explain_spawn_error, locate_script
from .tree import MARKER_PREFIX, Marker, ProcessTree

logger = logging.getLogger(__name__)

#: Fixed costs of one parallel run in the legacy break-even rule, in seconds.
PARALLEL_BASE_OVERHEAD = 7.0
PARALLEL_PER_HYPOTHESIS_OVERHEAD = 16.0

#: Exit status reported for a hypothesis that a stop condition stopped or never started.
STOPPED_EXIT_CODE = -signal.SIGTERM


@dataclass(frozen=True)
class HypothesisRun:
    """One hypothesis to test in one worktree, with its own deadline if it has one.

    The legacy ``(hypotheses, worktrees)`` form maps each id to one worktree; runs let the same
    id be tested in several worktrees, as the pytest plugin does. ``expected_duration`` (for
    example measured by an earlier run) decides the start order when not every script can
    start at once; without it the hypothesis's ``estimated_test_time`` does, if set.
    """

    hypothesis: Hypothesis
    worktree: Optional[Path]
    timeout: Optional[float] = None
    expected_duration: Optional[float] = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(
                f"timeout of hypothesis {self.hypothesis.id!r} must be > 0 seconds, "
                f"got {self.timeout!r}"
            )
        if self.expected_duration is not None and not self.expected_duration >= 0:
            raise ValueError(
                f"expected duration of hypothesis {self.hypothesis.id!r} must be >= 0 "
                f"seconds, got {self.expected_duration!r}"
            )

    @property
    def planned_duration(self) -> Optional[float]:
        """The duration to plan the start order with, or None when nothing is known."""
        if self.expected_duration is not None:
            return self.expected_duration
        estimate = self.hypothesis.estimated_test_time
        return estimate if estimate > 0 else None


RunInput = Union[Hypothesis, HypothesisRun]
#: A stop condition, or the name of a verdict to stop on (see :class:`~.halting.StopOn`).
StopInput = Union[StopCondition, str, None]


class AsyncTestExecutor:
    """Runs hypothesis scripts concurrently on asyncio and classifies each outcome."""

    def __init__(
        self, config: Optional[FalsificationConfig] = None, *, marker_prefix: str = MARKER_PREFIX
    ) -> None:
        if not marker_prefix.startswith(MARKER_PREFIX):
            raise ValueError(
                f"marker_prefix must start with {MARKER_PREFIX!r}, got {marker_prefix!r}"
            )
        self.config = config or FalsificationConfig()
        #: The start of each run's marker variable: a caller that gives its own can find every
        #: process of its runs, even after the process that ran them died (pytest-xdist).
        self.marker_prefix = marker_prefix

    @property
    def timeout_seconds(self) -> float:
        """The default deadline of one script (legacy attribute)."""
        return self.config.test_timeout

    @property
    def min_parallel_time(self) -> float:
        """Legacy attribute, kept for code that reads it."""
        return self.config.min_parallel_time

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
    ) -> ResultStream:
        """Results in the order they complete, as an async iterator.

        Use it as ``async with executor.as_completed(...) as results: async for r in results``:
        leaving the block early, or breaking out of the loop, stops every script still running
        and skips those not started. A :class:`Hypothesis` takes its worktree from
        ``worktrees``; a :class:`HypothesisRun` carries its own. ``stop_on`` (a verdict name or
        a callable; default: the config's ``stop_on``) ends the run early once a result meets
        it: the others still get one result each, skipped with the reason. Raises
        ``ValueError`` for duplicates before anything runs.
        """
        condition = _stop_condition(stop_on if stop_on is not None else self.config.stop_on)
        return ResultStream(self, _plan(hypotheses, worktrees or {}), condition)

    async def execute_parallel_async(
        self,
        hypotheses: Sequence[RunInput],
        worktrees: Optional[Mapping[str, PathLike]] = None,
        *,
        stop_on: StopInput = None,
    ) -> List[TestExecutionResult]:
        """One result per hypothesis, in the order given."""
        stream = self.as_completed(hypotheses, worktrees, stop_on=stop_on)
        results: Dict[Tuple[str, str], TestExecutionResult] = {}
        async with stream:
            async for result in stream:
                results[(result.worktree_path, result.hypothesis_id)] = result
        return [results[_key(run)] for run in stream.runs]

    async def execute_single_async(
        self, hypothesis: Hypothesis, worktree: Optional[PathLike]
    ) -> TestExecutionResult:
        """Test one hypothesis in one worktree."""
        run = HypothesisRun(hypothesis, _as_path(worktree))
        return (await self.execute_parallel_async([run]))[0]

    def execute_parallel(
        self,
        hypotheses: Sequence[RunInput],
        worktrees: Optional[Mapping[str, PathLike]] = None,
        *,
        stop_on: StopInput = None,
    ) -> List[TestExecutionResult]:
        """Synchronous :meth:`execute_parallel_async`, safe inside a running event loop."""
        return run_sync(lambda: self.execute_parallel_async(hypotheses, worktrees, stop_on=stop_on))

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


class ResultStream:
    """Results of one run as they complete; the run's scripts live only inside it.

    At most ``max_concurrent_tests`` workers take the runnable hypotheses in start order
    (longest expected first, see :mod:`~pytest_parallel_hypotheses.scheduling`); a worker runs
    all the attempts of one hypothesis, one after the other in its worktree. Once a result
    meets the stop condition, the running scripts are stopped, no other starts, and each
    hypothesis without a result gets a skipped one saying why.
    """

    def __init__(
        self,
        executor: AsyncTestExecutor,
        runs: List[HypothesisRun],
        stop_on: Optional[StopCondition] = None,
    ) -> None:
        self.runs = runs
        self._executor = executor
        self._stop_on = stop_on
        self._marker_name = f"{executor.marker_prefix}{uuid.uuid4().hex[:16]}"
        self._sampler = ResourceSampler()
        self._workers: List[asyncio.Task[None]] = []
        self._waiting: Deque[Tuple[int, Path]] = deque()
        self._started_at: Dict[int, float] = {}
        self._answered: Set[int] = set()
        self._delivered = 0
        self._halted: Optional[str] = None
        self._stop_error: Optional[Exception] = None
        self._results: Optional[asyncio.Queue[TestExecutionResult]] = None
        self._closed: Optional[asyncio.Event] = None
        self._closing = False

    async def __aenter__(self) -> ResultStream:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[TestExecutionResult]:
        self._start()
        return self._iterate()

    async def aclose(self) -> None:
        """Stop what still runs, skip what has not started, and sweep up escaped processes.

        A second call waits until the first one is done.
        """
        if self._closed is None:
            return  # never started
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._halted is None:  # a halt cancelled them already: again would kill at once
                for worker in self._workers:
                    worker.cancel()
            try:
                await asyncio.gather(*self._workers, return_exceptions=True)
            finally:
                await _sweep(Marker(self._marker_name), self._executor.config.kill_grace)
        finally:
            await self._sampler.aclose()
            self._closed.set()

    async def _iterate(self) -> AsyncIterator[TestExecutionResult]:
        """Every result, then the clean-up; dropping the iterator early also cleans up."""
        try:
            while self._delivered < len(self.runs):
                yield await self._next()
        finally:
            await self.aclose()

    async def _next(self) -> TestExecutionResult:
        assert self._results is not None  # set by _start
        if self._stop_error is not None:
            raise self._stop_error
        if self._halted is not None and self._results.empty():
            await self._skip_the_rest(self._halted)
        result = await self._results.get()
        self._delivered += 1
        return result

    def _start(self) -> None:
        if self._results is not None:
            return
        self._results = asyncio.Queue()
        self._closed = asyncio.Event()
        for index in start_order([run.planned_duration for run in self.runs]):
            run = self.runs[index]
            try:
                self._waiting.append((index, locate_script(run.worktree, run.hypothesis.id)))
            except ScriptProblem as problem:
                self._answer(index, _error_result(run, problem, 0.0))
        limit = 0 if self._halted is not None else self._executor.config.max_concurrent_tests
        workers = min(limit, len(self._waiting))
        base_env = _child_environment()
        self._workers = [asyncio.ensure_future(self._work(base_env)) for _ in range(workers)]

    def _answer(self, index: int, result: TestExecutionResult) -> None:
        """Queue the result of a run, and stop the rest at once if it meets the condition."""
        assert self._results is not None  # set by _start
        self._answered.add(index)
        self._results.put_nowait(result)
        if self._halted is None and self._stop_on is not None and self._meets_stop(result):
            self._halt(stop_reason(result))

    def _meets_stop(self, result: TestExecutionResult) -> bool:
        """Ask the stop condition; an error in it stops the run and reaches the consumer."""
        assert self._stop_on is not None  # checked by the caller
        try:
            return self._stop_on(result)
        except Exception as error:
            self._stop_error = error
            return True

    def _halt(self, reason: str) -> None:
        """Start no more scripts, and stop those running (not the caller, which is done)."""
        self._halted = reason
        logger.info("stopping the run: %s", reason)
        current = asyncio.current_task()
        for worker in self._workers:
            if worker is not current:
                worker.cancel()

    async def _skip_the_rest(self, reason: str) -> None:
        """Once stopped and its scripts gone, one skipped result for each unanswered run."""
        await asyncio.gather(*self._workers, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for index, run in enumerate(self.runs):
            if index not in self._answered:
                started = self._started_at.get(index)
                duration = 0.0 if started is None else loop.time() - started
                stopped = stopped_result(
                    run.hypothesis.id,
                    _worktree_text(run),
                    reason,
                    started=started is not None,
                    duration=duration,
                )
                self._answer(index, stopped)

    async def _work(self, base_env: Mapping[str, str]) -> None:
        """Take the next hypothesis in start order until none is left."""
        loop = asyncio.get_running_loop()
        while self._waiting and self._halted is None:
            index, script = self._waiting.popleft()
            self._started_at[index] = loop.time()
            self._answer(index, await self._run(index, script, base_env))

    async def _run(
        self, index: int, script: Path, base_env: Mapping[str, str]
    ) -> TestExecutionResult:
        run = self.runs[index]
        try:
            repeats = self._executor.config.repeats
            attempts = [
                await self._attempt(index, script, base_env, number)
                for number in range(1, repeats + 1)
            ]
            return TestExecutionResult.from_attempts(attempts)
        except Exception as error:  # a bug of ours must still leave one result per hypothesis
            logger.exception("internal error while testing %s", run.hypothesis.id)
            return _error_result(run, ScriptProblem(f"internal error: {error!r}"), 0.0)

    async def _attempt(
        self, index: int, script: Path, base_env: Mapping[str, str], number: int
    ) -> TestExecutionResult:
        """Run the script of one hypothesis once."""
        config = self._executor.config
        run = self.runs[index]
        hypothesis_id = run.hypothesis.id
        assert run.worktree is not None  # locate_script checked it
        marker = Marker(self._marker_name, str(index))
        env = {
            **base_env,
            "HYPOTHESIS_ID": hypothesis_id,
            "HYPOTHESIS_WORKTREE": str(run.worktree),
            marker.name: str(index),
        }
        timeout = run.timeout if run.timeout is not None else config.test_timeout
        logger.debug("starting %s (attempt %d) in %s", hypothesis_id, number, run.worktree)
        outcome = await run_script(
            script,
            cwd=run.worktree,
            env=env,
            tree=ProcessTree(marker),
            timeout=timeout,
            grace=config.kill_grace,
            max_output_bytes=config.max_output_bytes,
            sampler=self._sampler,
        )
        if outcome.spawn_error is not None:
            return _error_result(
                run, explain_spawn_error(script, outcome.spawn_error), outcome.duration
            )
        result = _outcome_result(run, outcome, timeout)
        logger.info(
            "%s (attempt %d): %s (exit %s, %.2fs)",
            hypothesis_id,
            number,
            result.result.value,
            result.exit_code,
            result.duration,
        )
        return result


def _outcome_result(
    run: HypothesisRun, outcome: ProcessOutcome, timeout: float
) -> TestExecutionResult:
    result = classify_exit(outcome.exit_code, timed_out=outcome.timed_out)
    if outcome.timed_out:
        exit_code = TIMEOUT_EXIT_CODE
        message = f"Test exceeded {timeout:g}s timeout; its process tree was stopped"
    else:
        assert outcome.exit_code is not None  # a reaped process has a status
        exit_code = outcome.exit_code
        message = (
            ""
            if result in (TestResult.PASS, TestResult.FAIL) and exit_code >= 0
            else (f"script {describe_exit(exit_code)}")
        )
    return TestExecutionResult(
        hypothesis_id=run.hypothesis.id,
        result=result,
        duration=outcome.duration,
        stdout=outcome.stdout.text(),
        stderr=outcome.stderr.text(),
        exit_code=exit_code,
        worktree_path=str(run.worktree),
        error_message=message,
        stdout_bytes=outcome.stdout.total,
        stderr_bytes=outcome.stderr.total,
        stdout_truncated=outcome.stdout.truncated,
        stderr_truncated=outcome.stderr.truncated,
        metrics=dict(outcome.usage),
        timed_out_after=timeout if outcome.timed_out else None,
    )


def _error_result(
    run: HypothesisRun, problem: ScriptProblem, duration: float
) -> TestExecutionResult:
    logger.warning("%s: %s", run.hypothesis.id, problem)
    return TestExecutionResult(
        hypothesis_id=run.hypothesis.id,
        result=TestResult.ERROR,
        duration=duration,
        exit_code=problem.exit_code,
        worktree_path=_worktree_text(run),
        error_message=str(problem),
    )


def stopped_result(
    hypothesis_id: str, worktree_path: str, reason: str, *, started: bool, duration: float = 0.0
) -> TestExecutionResult:
    """The skipped result of a hypothesis that a stop condition stopped (``started``) or
    never started; ``reason`` says which hypothesis reached which verdict. Its status stays
    pending: no verdict was reached, so it must not count as an inconclusive one."""
    return TestExecutionResult(
        hypothesis_id=hypothesis_id,
        result=TestResult.SKIP,
        status=HypothesisStatus.PENDING,
        duration=duration,
        exit_code=STOPPED_EXIT_CODE,
        worktree_path=worktree_path,
        error_message=f"{'stopped' if started else 'not started'} because {reason}",
    )


def _stop_condition(stop_on: StopInput) -> Optional[StopCondition]:
    """A stop condition from a callable or a verdict name; ValueError names the valid ones."""
    if not isinstance(stop_on, str):
        return stop_on
    try:
        return StopOn(stop_on)
    except ValueError:
        names = ", ".join(repr(condition.value) for condition in StopOn)
        raise ValueError(f"stop_on must be one of {names}, got {stop_on!r}") from None


def _plan(hypotheses: Iterable[RunInput], worktrees: Mapping[str, PathLike]) -> List[HypothesisRun]:
    """Turn the caller's input into runs, refusing duplicates before anything starts."""
    runs = [
        item
        if isinstance(item, HypothesisRun)
        else HypothesisRun(item, _as_path(worktrees.get(item.id)))
        for item in hypotheses
    ]
    seen: Set[Tuple[str, str]] = set()
    for run in runs:
        key = (str(run.worktree), str(run.hypothesis.id).casefold())
        if key in seen:
            raise ValueError(
                f"hypothesis id {run.hypothesis.id!r} is given twice for the same worktree "
                "(ids are compared ignoring case, as file names are on some systems)"
            )
        seen.add(key)
    return runs


async def _sweep(marker: Marker, grace: float) -> None:
    """Stop processes of a run that escaped their script's group and outlived it."""
    leftovers = ProcessTree(marker)
    try:
        await leftovers.stop(grace)
    except BaseException:
        leftovers.kill_now()
        raise


def _key(run: HypothesisRun) -> Tuple[str, str]:
    return (_worktree_text(run), run.hypothesis.id)


def _worktree_text(run: HypothesisRun) -> str:
    """The worktree as results name it (empty when there is none)."""
    return "" if run.worktree is None else str(run.worktree)


def _as_path(worktree: Optional[PathLike]) -> Optional[Path]:
    return None if worktree is None else Path(worktree)


def _child_environment() -> Dict[str, str]:
    """The runner's environment minus pytest's own variables, which confuse a nested pytest."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
