"""Run many hypothesis scripts at once, within a concurrency limit, and judge each outcome.

``AsyncTestExecutor`` is the engine; ``TestExecutor`` keeps the name and synchronous methods of
the legacy ThreadPool executor so old code keeps working. Every hypothesis given gets exactly
one result, errors included, and nothing a run started outlives it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import (
    Awaitable,
    Dict,
    Iterable,
    Iterator,
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
    TestResult,
    classify_exit,
    describe_exit,
)
from .models import FalsificationConfig, Hypothesis, TestExecutionResult
from .process import ProcessOutcome, run_script
from .scripts import PathLike, ScriptProblem, explain_spawn_error, locate_script
from .tree import Marker, ProcessTree

logger = logging.getLogger(__name__)

#: Fixed costs of one parallel run in the legacy break-even rule, in seconds.
PARALLEL_BASE_OVERHEAD = 7.0
PARALLEL_PER_HYPOTHESIS_OVERHEAD = 16.0


@dataclass(frozen=True)
class HypothesisRun:
    """One hypothesis to test in one worktree, with its own deadline if it has one.

    The legacy ``(hypotheses, worktrees)`` form maps each id to one worktree; runs let the same
    id be tested in several worktrees, as the pytest plugin does.
    """

    hypothesis: Hypothesis
    worktree: Optional[Path]
    timeout: Optional[float] = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(
                f"timeout of hypothesis {self.hypothesis.id!r} must be > 0 seconds, "
                f"got {self.timeout!r}"
            )


RunInput = Union[Hypothesis, HypothesisRun]


class AsyncTestExecutor:
    """Runs hypothesis scripts concurrently on asyncio and classifies each outcome."""

    def __init__(self, config: Optional[FalsificationConfig] = None) -> None:
        self.config = config or FalsificationConfig()

    @property
    def timeout_seconds(self) -> float:
        """The default deadline of one script (legacy attribute)."""
        return self.config.test_timeout

    @property
    def min_parallel_time(self) -> float:
        """Legacy attribute, kept for code that reads it."""
        return self.config.min_parallel_time

    def should_parallelize(self, hypotheses: Sequence[Hypothesis]) -> bool:
        """The legacy break-even rule: parallel only if it saves time over running one by one.

        Sequential time is the sum of the estimated times; parallel time is the longest one plus
        7 s of base overhead and 16 s per worktree (create, set up, clean up).
        """
        if len(hypotheses) <= 1:
            return False
        times = [h.estimated_test_time for h in hypotheses]
        overhead = PARALLEL_BASE_OVERHEAD + PARALLEL_PER_HYPOTHESIS_OVERHEAD * len(times)
        return sum(times) > max(times) + overhead

    def as_completed(
        self,
        hypotheses: Iterable[RunInput],
        worktrees: Optional[Mapping[str, PathLike]] = None,
    ) -> ResultStream:
        """Results in the order they complete, as an async iterator.

        Use it as ``async with executor.as_completed(...) as results: async for r in results``:
        leaving the block early stops every script still running and skips those not started.
        A :class:`Hypothesis` takes its worktree from ``worktrees``; a :class:`HypothesisRun`
        carries its own. Raises ``ValueError`` for duplicates before anything runs.
        """
        return ResultStream(self, _plan(hypotheses, worktrees or {}))

    async def execute_parallel_async(
        self, hypotheses: Sequence[RunInput], worktrees: Optional[Mapping[str, PathLike]] = None
    ) -> List[TestExecutionResult]:
        """One result per hypothesis, in the order given."""
        stream = self.as_completed(hypotheses, worktrees)
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
        self, hypotheses: Sequence[RunInput], worktrees: Optional[Mapping[str, PathLike]] = None
    ) -> List[TestExecutionResult]:
        """Synchronous :meth:`execute_parallel_async`, safe inside a running event loop."""
        return run_sync(lambda: self.execute_parallel_async(hypotheses, worktrees))

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
    """Results of one run as they complete; the run's scripts live only inside it."""

    def __init__(self, executor: AsyncTestExecutor, runs: List[HypothesisRun]) -> None:
        self.runs = runs
        self._executor = executor
        self._marker_name = f"PPH_RUN_{uuid.uuid4().hex[:16]}"
        self._tasks: List[asyncio.Task[TestExecutionResult]] = []
        self._completions: Optional[Iterator[Awaitable[TestExecutionResult]]] = None
        self._closed = False

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

    def __aiter__(self) -> ResultStream:
        self._start()
        return self

    async def __anext__(self) -> TestExecutionResult:
        assert self._completions is not None
        try:
            next_done = next(self._completions)
        except StopIteration:
            await self.aclose()
            raise StopAsyncIteration from None
        return await next_done

    async def aclose(self) -> None:
        """Stop what still runs, skip what has not started, and sweep up escaped processes."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await _sweep(Marker(self._marker_name), self._executor.config.kill_grace)

    def _start(self) -> None:
        if self._completions is not None:
            return
        config = self._executor.config
        limit = asyncio.Semaphore(config.max_concurrent_tests)
        base_env = _child_environment()
        self._tasks = [
            asyncio.ensure_future(self._run(index, run, limit, base_env))
            for index, run in enumerate(self.runs)
        ]
        self._completions = iter(asyncio.as_completed(self._tasks))

    async def _run(
        self,
        index: int,
        run: HypothesisRun,
        limit: asyncio.Semaphore,
        base_env: Mapping[str, str],
    ) -> TestExecutionResult:
        try:
            return await self._run_checked(index, run, limit, base_env)
        except Exception as error:  # a bug of ours must still leave one result per hypothesis
            logger.exception("internal error while testing %s", run.hypothesis.id)
            return _error_result(run, ScriptProblem(f"internal error: {error!r}"), 0.0)

    async def _run_checked(
        self,
        index: int,
        run: HypothesisRun,
        limit: asyncio.Semaphore,
        base_env: Mapping[str, str],
    ) -> TestExecutionResult:
        config = self._executor.config
        hypothesis_id = run.hypothesis.id
        worktree = "" if run.worktree is None else str(run.worktree)
        try:
            script = locate_script(run.worktree, hypothesis_id)
        except ScriptProblem as problem:
            return _error_result(run, problem, 0.0)
        assert run.worktree is not None  # locate_script checked it
        marker = Marker(self._marker_name, str(index))
        env = {
            **base_env,
            "HYPOTHESIS_ID": hypothesis_id,
            "HYPOTHESIS_WORKTREE": worktree,
            marker.name: str(index),
        }
        timeout = run.timeout if run.timeout is not None else config.test_timeout
        async with limit:
            logger.debug("starting %s in %s", hypothesis_id, worktree)
            outcome = await run_script(
                script,
                cwd=run.worktree,
                env=env,
                tree=ProcessTree(marker),
                timeout=timeout,
                grace=config.kill_grace,
                max_output_bytes=config.max_output_bytes,
            )
        if outcome.spawn_error is not None:
            return _error_result(
                run, explain_spawn_error(script, outcome.spawn_error), outcome.duration
            )
        result = _outcome_result(run, outcome, timeout)
        logger.info(
            "%s: %s (exit %s, %.2fs)",
            hypothesis_id,
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
        worktree_path="" if run.worktree is None else str(run.worktree),
        error_message=str(problem),
    )


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
    return ("" if run.worktree is None else str(run.worktree), run.hypothesis.id)


def _as_path(worktree: Optional[PathLike]) -> Optional[Path]:
    return None if worktree is None else Path(worktree)


def _child_environment() -> Dict[str, str]:
    """The runner's environment minus pytest's own variables, which confuse a nested pytest."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
