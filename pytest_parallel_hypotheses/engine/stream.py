"""The results of one run as they complete: the pool of workers that run the scripts, and the
stop state that ends the run early.

The run's scripts live only inside the stream: leaving it, however, stops what still runs,
skips what has not started and sweeps up processes that escaped their script's group.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import heapq
import time
import uuid
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import (
    AsyncIterator,
    Deque,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Type,
)

from ..core.classification import INNER_TIMEOUT_EXIT, Polarity, TestResult
from ..core.config import FalsificationConfig
from ..core.diagnosis import (
    ONE_CPU_DEMAND,
    STARVED_SHARE,
    cpu_demand,
    cpus_wanted,
    starved,
    starved_share,
)
from ..core.halting import StopCondition, stop_reason
from ..core.models import TestExecutionResult
from ..core.repeats import repeat_policy
from ..core.results import (
    broken_script_result,
    missing_dependency_result,
    missing_module_result,
    missing_runner_result,
    no_tests_result,
    runner_error_result,
    setup_failed_result,
    shell_error_result,
    stale_extension_result,
    stopped_result,
    unbuilt_extension_result,
    unfound_package_result,
    unreachable_package_result,
    unrunnable_result,
    unwatched_result,
)
from ..core.tested import CodeUnderTest, missing_module_to_run, missing_top_level, ran_no_tests
from ..finding.installs import holds_module
from ..finding.layout import ScriptProblem
from ..finding.nodepackages import missing_dependency
from ..finding.syntax import (
    carriage_return,
    refused_by_node,
    shell_error_in,
    speaks_of_a_syntax_error,
    syntax_error,
)
from . import machine
from .admission import TICK_SECONDS, admission_for
from .ahead import Turn, TurnsAhead
from .attempt import run_attempt
from .environment import without_pytest_variables
from .events import TOLD_ELSEWHERE, LiveOutput, RunObserver, about, reporting_logger, tell
from .gate import StartGate
from .imports import WorktreeCode
from .importwatch import ImportWatch, Noted, hiding_line
from .memory import MemoryGuard
from .runs import HypothesisRun
from .scheduling import start_order
from .setup import WorktreeSetups
from .spill import OutputFiles
from .tree import Marker, ProcessTree
from .usage import ResourceSampler
from .watchdog import Watchdog

logger = reporting_logger(__name__)


class ResultStream:
    """Results of one run as they complete; the run's scripts live only inside it.

    Workers take the runnable hypotheses in start order (quick answers, then the longest
    expected, see :mod:`~pytest_parallel_hypotheses.engine.scheduling`), each once the
    admission (see :mod:`~pytest_parallel_hypotheses.engine.admission`) gives it a slot; a
    worker runs all the attempts of one hypothesis, one after the other in its worktree. Once a
    result meets the stop condition, the running scripts are stopped, no other starts, and each
    hypothesis without a result gets a skipped one saying why.
    """

    def __init__(
        self,
        config: FalsificationConfig,
        runs: List[HypothesisRun],
        stop_on: Optional[StopCondition] = None,
        *,
        marker_prefix: str,
        observer: Optional[RunObserver] = None,
        gate: Optional[StartGate] = None,
        setup_records: Optional[Path] = None,
    ) -> None:
        self.runs = runs
        self._config = config
        self._stop_on = stop_on
        self._observer = observer
        self._gate = gate if gate is not None else StartGate(_never)
        #: What each started hypothesis has printed so far, kept for a stop that cuts it short.
        self._output: Dict[int, LiveOutput] = {}
        self._marker_name = f"{marker_prefix}{uuid.uuid4().hex[:16]}"
        self._sampler = ResourceSampler()
        self._setups = WorktreeSetups(config, self._marker_name, self._sampler, runs, setup_records)
        self._admission = admission_for(config, self._sampler)
        self._memory_guard = MemoryGuard.for_this_process(
            limits=config.memory_limit is not None or any(run.memory_limit for run in runs)
        )
        self._output_files: Optional[OutputFiles] = None
        self._workers: List[asyncio.Task[None]] = []
        self._lanes = _Lanes()
        self._imports = ImportWatch()
        self._waiting: Deque[int] = deque()
        self._started_at: Dict[int, float] = {}
        self._answered: Set[int] = set()
        #: The result of a hypothesis whose script waits to run again (it timed out short of
        #: CPUs): its answer if the run stops first.
        self._kept: Dict[int, TestExecutionResult] = {}
        self._delivered = 0
        self._halted: Optional[str] = None
        #: Why the run stopped, when a bug of ours stopped it.
        self._failure: Optional[str] = None
        self._stop_error: Optional[Exception] = None
        self._results: Optional[asyncio.Queue[TestExecutionResult]] = None
        self._closed: Optional[asyncio.Event] = None
        self._closing = False
        self._ahead: Optional[TurnsAhead] = None
        self._watchdog: Optional[Watchdog] = None

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
                await _sweep(Marker(self._marker_name), self._config.kill_grace)
        finally:
            try:
                await self._let_go()
            finally:
                self._closed.set()  # a second call must not wait for ever

    async def _let_go(self) -> None:
        """Stop the run's helpers, each one even when another fails."""
        async with contextlib.AsyncExitStack() as helpers:
            if self._watchdog is not None:
                helpers.push_async_callback(self._watchdog.dismiss)
            helpers.push_async_callback(self._sampler.aclose)
            helpers.push_async_callback(self._memory_guard.aclose)
            helpers.push_async_callback(self._admission.aclose)
            helpers.callback(self._imports.close)
            if self._ahead is not None:
                helpers.callback(self._ahead.stop)

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
        self._gate.bind()
        self._waiting.extend(start_order([run.planned_duration for run in self.runs]))
        workers = 0 if self._halted is not None else self._admission.workers(len(self._waiting))
        if workers:  # scripts will run: if this process dies, nothing must stay behind
            self._watchdog = _start_watchdog(self._marker_name, self._config.kill_grace)
            self._output_files = OutputFiles.for_run(self._config)
        base_env = without_pytest_variables()
        if workers:  # found off the loop, ahead of each turn: it reads files and asks git
            self._ahead = TurnsAhead(
                self.runs, list(self._waiting), base_env, kinds=self._admission.weighs_kinds
            )
            asyncio.get_running_loop().run_in_executor(None, self._ahead.find)
        self._workers = [asyncio.ensure_future(self._work(base_env)) for _ in range(workers)]

    def _answer(self, index: int, result: TestExecutionResult) -> None:
        """Queue the result of a run, and stop the rest at once if it meets the condition."""
        assert self._results is not None  # set by _start
        self._answered.add(index)
        self._gate.seen(result)
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
        if self._ahead is not None:
            self._ahead.stop()
        current = asyncio.current_task()
        for worker in self._workers:
            if worker is not current:
                worker.cancel()

    async def _skip_the_rest(self, reason: str) -> None:
        """Once stopped and its scripts gone, one skipped result for each unanswered run (an
        error, when a bug of ours stopped the run)."""
        current = asyncio.current_task()
        others = [worker for worker in self._workers if worker is not current]
        await asyncio.gather(*others, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for index, run in enumerate(self.runs):
            if index in self._kept and index not in self._answered:
                self._answer(index, self._kept.pop(index))
            if index not in self._answered and self._failure is not None:
                failed = runner_error_result(run.hypothesis.id, run.worktree_text, self._failure)
                self._answer(index, failed)
            if index not in self._answered:
                started = self._started_at.get(index)
                duration = 0.0 if started is None else loop.time() - started
                output = self._output.get(index)
                if output is not None:
                    output.close()
                stopped = stopped_result(
                    run.hypothesis.id,
                    run.worktree_text,
                    reason,
                    started=started is not None,
                    duration=duration,
                    stdout=None if output is None else output.stdout,
                    stderr=None if output is None else output.stderr,
                )
                self._answer(index, stopped)

    async def _work(self, base_env: Mapping[str, str]) -> None:
        """Take the next hypothesis in start order until none is left. A bug of ours outside
        a hypothesis's own turn (in the admission, say) stops the run, and every hypothesis
        left gets an error: the run would otherwise wait for them forever."""
        try:
            await self._take_turns(base_env)
        except Exception as error:
            logger.exception("internal error of the runner: the run stops")
            if self._halted is None:
                self._failure = f"internal error of the runner: {error!r}"
                self._halt(self._failure)
                await self._skip_the_rest(self._failure)  # the consumer may wait for a result

    async def _take_turns(self, base_env: Mapping[str, str]) -> None:
        while self._waiting and self._halted is None:
            await self._take_turn(self._waiting.popleft(), base_env)

    async def _take_turn(self, index: int, base_env: Mapping[str, str]) -> None:
        """Test one hypothesis once the gate is open and the admission lets its script start,
        told what the script is known to want of the CPUs and the kind of its text. A run
        stopped meanwhile leaves it to the stop to answer."""
        loop = asyncio.get_running_loop()
        wants = self.runs[index].expected_cpus
        kind = await self._kind(index)
        while self._halted is None:
            await self._gate.opened()
            async with self._admission.slot(wants, kind):
                if self._halted is not None:
                    return
                if not self._gate.is_open():  # shut while this worker waited for its slot
                    continue
                self._started_at[index] = loop.time()
                with self._lanes.taken() as lane:
                    self._answer(index, await self._run(index, base_env, lane))
                self._output.pop(index, None)  # its result holds the output now
                return

    async def _kind(self, index: int) -> Optional[str]:
        """The digest of the hypothesis's script's text, None if it has none (its turn says
        why when it runs)."""
        assert self._ahead is not None  # set by _start
        try:
            return (await self._ahead.turn(index)).kind
        except Exception:  # the turn's own error is its hypothesis's result
            return None

    async def _run(self, index: int, base_env: Mapping[str, str], slot: int) -> TestExecutionResult:
        """The script checked, the worktree's setup step if any, then the attempts of one
        hypothesis. The check is found ahead of the turn, off the loop, rather than for
        every script before the first starts: for a large run, that was the time to start."""
        run = self.runs[index]
        try:
            assert self._ahead is not None  # set by _start
            turn = await self._ahead.turn(index)
            if isinstance(turn.script, ScriptProblem):
                logger.warning("%s: %s", run.hypothesis.id, turn.script, extra=TOLD_ELSEWHERE)
                return _unrunnable(run, turn.script)
            loop = asyncio.get_running_loop()
            asked = loop.time()
            set_up, setup = await self._setups.prepare(
                run,
                base_env,
                functools.partial(self._setting_up, index, slot),
                stale_builds=turn.code.tested.stale is not None,
            )
            if setup is not None and setup.problem is not None:
                return setup_failed_result(
                    run.hypothesis.id,
                    run.worktree_text,
                    self._setups.problem_of(run, setup),
                    setup=setup.as_dict(),
                    polarity=run.polarity,
                )
            if set_up:
                tell(self._observer, "setup_finished", run, slot=slot)
            if set_up and loop.time() - asked > TICK_SECONDS:
                # what let it in may be gone
                await self._admission.resume(run.expected_cpus, turn.kind)
            code = await self._code_after_setup(run) if set_up else turn.code
            result = await self._repeat(index, turn, code, code.applied_to(base_env), slot)
            result.setup = None if setup is None else setup.as_dict()
            return result
        except Exception as error:  # a bug of ours must still leave one result per hypothesis
            logger.exception("internal error while testing %s", run.hypothesis.id)
            return runner_error_result(
                run.hypothesis.id, run.worktree_text, f"internal error of the runner: {error!r}"
            )

    async def _repeat(
        self, index: int, turn: Turn, code: WorktreeCode, env: Mapping[str, str], slot: int
    ) -> TestExecutionResult:
        """Every attempt of one hypothesis, as many as its repeat policy asks, combined."""
        run = self.runs[index]
        script = turn.script
        assert isinstance(script, Path)  # _run answered a script problem
        assert run.worktree is not None  # locate_script checked it
        marker = Marker(self._marker_name, str(index))
        policy = repeat_policy(self._config, run.prior)
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempts: List[TestExecutionResult] = []
        not_counted: List[TestExecutionResult] = []
        number = 0
        #: Once an attempt short of CPUs did not count: what the next one says of it.
        ran_again, note = False, None
        # whether the next attempt runs alone (see the admission's rerun)
        alone = False
        stale, watched = code.tested.stale, code.tested.watched
        notes, hidden = None, None
        # the run's sitecustomize: did the script use compiled code its worktree has no
        # current build of, did one of its Pythons keep its own install of the project?
        if watched or code.tested.redirects:
            changed_at = 0.0 if stale is None else stale.changed_at
            env, notes = self._imports.environment(
                env, watched, run.worktree, str(index), changed_at=changed_at
            )
            hidden = hiding_line(script) if watched else None
        text = _ScriptText(script, env)
        while policy.another(attempts, loop.time() - started):
            number += 1
            if number > 1:  # a daemon the last attempt left (holding a port, a lock) must not
                await _sweep(marker, self._config.kill_grace)  # decide this one
            company = self._lanes.shared_seconds()
            attempt = await run_attempt(
                run,
                script,
                number=number,
                config=self._config,
                marker=marker,
                base_env=env,
                sampler=self._sampler,
                kind=turn.kind,
                memory_guard=self._memory_guard,
                output_files=self._output_files,
                on_start=functools.partial(self._started, index, number, slot),
            )
            if alone:  # the attempt that ran again alone has ended
                self._admission.rejoin()
                alone = False
            noted = Noted() if notes is None else self._imports.take(notes)
            judged = _judged_with(code.tested, attempt, run.worktree, noted.modules, hidden)
            attempt = await text.judge(judged)
            # a judge may combine the attempts again
            attempt.code_under_test = code.tested.kept_by(noted.own_installs)
            tell(self._observer, "attempt_finished", run, number=number, slot=slot, result=attempt)
            demand = _starved_demand(attempt)
            if demand is not None and self._runs_again(
                attempt,
                demand,
                turn,
                alone=self._lanes.shared_seconds() - company < STARVED_SHARE * attempt.duration,
                second=note is not None,  # the attempt right after the one that did not count
                ran_again=ran_again,
            ):
                ran_again, note = True, SECOND_ATTEMPT[attempt.result]
                # what it did is told, not what it printed: the run holds no more output
                not_counted.append(dataclasses.replace(attempt, stdout="", stderr=""))
                if attempt.result is TestResult.TIMEOUT:  # what a stop meanwhile leaves it:
                    self._kept[index] = policy.combine([*attempts, attempt])  # inconclusive
                await self._admission.rerun()
                alone = True
                # a failure's or a pass's was no verdict: a stop meanwhile cut it short
                self._kept.pop(index, None)
                continue
            # what stands says so, on the attempt, which a judging hook's verdict keeps (the
            # error of a timeout at our deadline says already how long its processes waited)
            if demand is not None and attempt.timed_out_after is None:
                attempt.error_message = _noted(attempt.error_message, CROWDED)
            if note is not None:
                attempt.error_message, note = _noted(attempt.error_message, note), None
            attempts.append(attempt)
        combined = policy.combine(attempts)
        combined.not_counted = not_counted
        return combined

    def _runs_again(
        self,
        attempt: TestExecutionResult,
        demand: float,
        turn: Turn,
        *,
        alone: bool,
        second: bool,
        ran_again: bool,
    ) -> bool:
        """Whether an attempt short of CPUs (see :func:`_starved_demand`) runs again, once per
        hypothesis, when the CPUs hold it: under ``auto``, what it did may be the crowd's,
        which ``auto`` cannot always foresee (a script that sleeps before it computes looks
        idle when it starts), not its hypothesis's. It stands, and the summary says why, when
        it is the ``second`` attempt already; when the hypothesis ``ran_again`` before, or
        under repeats a pass or a failure (a sample like any other); when it ran ``alone``
        (other hypotheses of the run, their scripts or their worktrees' setup steps, were
        beside it for less than a quarter of its life: it waited mostly for the machine's
        other work or for itself, as a second attempt would); and with a fixed number of
        workers."""
        how, load = _HOW[attempt.result], machine.load_words()
        if not self._config.adaptive_concurrency:
            logger.warning(  # one kind of warning per outcome in the summary
                f"a script {how} while its processes waited for a CPU (%s; %s): with a fixed "
                "number of workers (--hypotheses-workers=N, max_concurrent_tests, or one per "
                "xdist worker) it does not run again, so its verdict may be the slowdown's, "
                "not its hypothesis's",
                attempt.hypothesis_id,
                load,
                extra=about(attempt.hypothesis_id),
            )
            return False
        if second:
            logger.warning(
                f"a script's second attempt {how} while its processes waited for a CPU too "
                "(%s; %s): it stands, so its verdict may be the slowdown's",
                attempt.hypothesis_id,
                load,
                extra=about(attempt.hypothesis_id),
            )
            return False
        if ran_again or (attempt.result is not TestResult.TIMEOUT and self._config.repeats != 1):
            # dropping some samples of a crowd, and not others, would bias the rate
            logger.warning(
                f"a script {how} while its processes waited for a CPU (%s; %s): under "
                "--hypotheses-repeat it counts as a sample like any other, so its pass rate "
                "may be the slowdown's",
                attempt.hypothesis_id,
                load,
                extra=about(attempt.hypothesis_id),
            )
            return False
        # careful from now on, a failure too: second attempts look as idle as the first as
        # they start, and a trial's four, let in together again, failed again; and after one
        # alone, the machine is busy or scripts of its text want more than they seemed to
        self._admission.ran_short(demand, turn.kind)
        if alone:
            logger.warning(
                f"a script {how} while its processes waited for a CPU (%s; %s), with the run's "
                "other scripts beside it less than a quarter of its time: the machine was busy "
                "with other work, or the script wants more CPUs than it has; a second attempt "
                "would wait as this one did, so it does not run again, and its verdict may be "
                "the slowdown's",
                attempt.hypothesis_id,
                load,
                extra=about(attempt.hypothesis_id),
            )
            return False
        logger.warning(
            f"a script {how} while its processes waited for a CPU (%s; %s): that attempt does "
            "not count, and it was given one more, alone",
            attempt.hypothesis_id,
            load,
            extra=about(attempt.hypothesis_id),
        )
        return True

    async def _code_after_setup(self, run: HypothesisRun) -> WorktreeCode:
        """The code the run's scripts test once the worktree's setup step is done (it may
        have made the worktree's venv, or built its extensions): a look through git."""
        assert self._ahead is not None  # set by _start
        assert run.worktree is not None  # its turn's script was found
        return await asyncio.to_thread(self._ahead.code.after_setup, run.worktree)

    def _setting_up(self, index: int, slot: int, timeout: float, output: LiveOutput) -> None:
        """Tell the observer that the hypothesis's worktree is being set up."""
        tell(
            self._observer,
            "setup_started",
            self.runs[index],
            slot=slot,
            timeout=timeout,
            output=output,
        )

    def _started(self, index: int, number: int, slot: int, output: LiveOutput) -> None:
        """Keep what the script prints, and tell the observer it started."""
        self._output[index] = output
        tell(
            self._observer,
            "attempt_started",
            self.runs[index],
            number=number,
            slot=slot,
            output=output,
        )


class _Lanes:
    """The number observers show a running hypothesis on: the lowest one free. Under ``auto``
    any of the many waiting workers may be let in next, and a timeline should have as many
    lanes as hypotheses ran at once, not one per worker. The lanes also tell how long a
    hypothesis had company: another hypothesis in a lane (its script, its worktree's setup
    step, or a wait for the CPUs between them), a crowd of the run's own, which a second
    attempt can avoid."""

    def __init__(self) -> None:
        self._free: List[int] = []
        self._used = 0
        #: Seconds during which two lanes or more were taken, up to ``_since``.
        self._shared = 0.0
        #: When two lanes or more were last taken, while they still are.
        self._since: Optional[float] = None

    @contextlib.contextmanager
    def taken(self) -> Iterator[int]:
        if self._free:
            lane = heapq.heappop(self._free)
        else:
            lane, self._used = self._used, self._used + 1
        self._count_shared()
        try:
            yield lane
        finally:
            heapq.heappush(self._free, lane)
            self._count_shared()

    def shared_seconds(self) -> float:
        """Seconds so far during which two hypotheses or more were in lanes: what one in a
        lane shared between two readings is the difference of those readings."""
        since = self._since
        return self._shared + (0.0 if since is None else time.monotonic() - since)

    def _count_shared(self) -> None:
        """Close or open a stretch of shared time as the number of lanes taken changes."""
        self._shared = self.shared_seconds()
        shared = self._used - len(self._free) >= 2
        self._since = time.monotonic() if shared else None


def _starved_demand(attempt: TestExecutionResult) -> Optional[float]:
    """The CPUs an attempt wanted, when it was short of them and what it did may be the
    slowdown's; else None. At the runner's deadline, its picture tells; at the script's own
    ``timeout`` (exit 124), a failure or a pass, its samples do. A failure, because checks
    may be of time (a script's own, a suite's timing test, a race). A pass only where it
    supports the hypothesis (a confirming script's "exit 0 if it takes over 10 s") and the
    script wanted one CPU: most checks pass when fast, and a script that wanted several
    waited for its own processes too, so its wait says little of a crowd."""
    if attempt.timed_out_after:
        snapshot = attempt.timeout_snapshot
        return cpu_demand(snapshot) if snapshot is not None and starved(snapshot) else None
    inner = attempt.result is TestResult.TIMEOUT and attempt.exit_code == INNER_TIMEOUT_EXIT
    confirming = attempt.result is TestResult.PASS and attempt.polarity is Polarity.CONFIRM
    if not (inner or confirming or attempt.result is TestResult.FAIL):
        return None
    if not starved_share(attempt.metrics.get("cpu_wait_share")):
        return None
    demand = cpus_wanted({"cpu_seconds": 0.0, **attempt.metrics}, attempt.duration)
    if demand is None or (confirming and demand > ONE_CPU_DEMAND):
        return None
    return demand


def _noted(message: str, note: str) -> str:
    """An attempt's error message with ``note`` after it."""
    return f"{message}; {note}" if message else note


#: How a script's attempt ended, in the words of the warnings and notes.
_HOW = {TestResult.TIMEOUT: "timed out", TestResult.FAIL: "failed", TestResult.PASS: "passed"}
#: What the attempt after one short of CPUs that did not count says, by how that one ended.
SECOND_ATTEMPT = {
    outcome: f"this was its second attempt: the first had {how} short of CPUs, and was not counted"
    for outcome, how in _HOW.items()
}
SECOND_TIMEOUT = SECOND_ATTEMPT[TestResult.TIMEOUT]
SECOND_FAILURE = SECOND_ATTEMPT[TestResult.FAIL]
SECOND_PASS = SECOND_ATTEMPT[TestResult.PASS]
#: Said of an attempt short of CPUs that stands (a fixed number of workers, a sample of
#: repeats, a second attempt).
CROWDED = (
    f"its processes waited for a CPU {STARVED_SHARE:.0%} of its time or more: what it did "
    "may be the slowdown's, not its hypothesis's"
)


def _judged_with(
    tested: CodeUnderTest,
    attempt: TestExecutionResult,
    worktree: Path,
    imported: Sequence[str] = (),
    hidden: Optional[str] = None,
) -> TestExecutionResult:
    """An attempt that passed or failed after importing a compiled extension its worktree
    has no current build of (none, or one older than a native source it changed; one of
    ``imported``, noted unless a build made meanwhile answered), or with the watch of those
    modules ``hidden`` by a line of its own, or failed only to import a
    module its worktree lacks, or to find the worktree's own package where its Python looked,
    to find a Node.js package in a worktree with no ``node_modules``, or ended as its test
    runner does when it ran no test, or failed to find the module it ran with ``python -m``
    where that is none of the worktree's, is an error."""
    if attempt.result in (TestResult.PASS, TestResult.FAIL):
        unbuilt = [module for module in tested.unbuilt_extensions if module in imported]
        if unbuilt:
            return unbuilt_extension_result(attempt, unbuilt)
        stale = tested.stale
        if stale is not None and any(module in imported for module in stale.modules):
            names = [module for module in stale.modules if module in imported]
            return stale_extension_result(attempt, names, stale.source)
        if hidden is not None:
            return unwatched_result(attempt, hidden, tested.watched)
    if attempt.result is not TestResult.FAIL:
        return attempt
    missing = tested.failed_import(attempt.stdout, attempt.stderr)
    if missing in tested.unreachable_packages:
        return unreachable_package_result(attempt, missing)
    if missing is not None:
        return missing_module_result(attempt, missing)
    own = missing_top_level(attempt.stdout, attempt.stderr)
    if own is not None and holds_module(worktree, own, regular=True):
        return unfound_package_result(attempt, own)
    package = missing_dependency(worktree, attempt.stdout, attempt.stderr)
    if package is not None:
        return missing_dependency_result(attempt, package)
    lacking = own is not None and not holds_module(worktree, own)
    said = ran_no_tests(
        attempt.exit_code,
        str(worktree.absolute()),
        attempt.stderr,
        attempt.stdout,
        lacking=lacking,
    )
    if said is not None:
        return no_tests_result(attempt, said)
    complaint = missing_module_to_run(attempt.stderr)
    if complaint is None or holds_module(worktree, complaint[1]):
        return attempt  # the worktree's own module failing to run can be the bug
    return missing_runner_result(attempt, complaint[0])


class _ScriptText:
    """Whether one hypothesis's script can be read by its interpreter: asked once (the script
    is the same at every attempt), at a failure whose output speaks of a syntax error, so a
    run whose scripts pass or fail as tests do pays nothing."""

    def __init__(self, script: Path, env: Mapping[str, str]) -> None:
        self._script = script
        self._env = env
        self._asked = False
        self._complaint: Optional[str] = None

    @functools.cached_property
    def _line_end(self) -> Optional[str]:
        return carriage_return(self._script)

    async def judge(self, attempt: TestExecutionResult) -> TestExecutionResult:
        """A failed attempt of a script its interpreter cannot read is an error, and so is a
        pass after its shell said that one of its lines failed."""
        if attempt.result is TestResult.PASS:
            complaint = shell_error_in(self._script, attempt.stderr)
            return attempt if complaint is None else shell_error_result(attempt, complaint)
        if attempt.result is not TestResult.FAIL:
            return attempt
        if self._line_end is not None:
            return broken_script_result(attempt, self._line_end)
        refused = refused_by_node(self._script, attempt.stderr)
        if refused is not None:
            return broken_script_result(attempt, refused)
        if not speaks_of_a_syntax_error(f"{attempt.stderr}\n{attempt.stdout}"):
            return attempt
        if not self._asked:
            self._asked = True
            self._complaint = await asyncio.to_thread(syntax_error, self._script, self._env)
        if self._complaint is None:
            return attempt
        return broken_script_result(attempt, f"has a syntax error ({self._complaint})")


def _unrunnable(run: HypothesisRun, problem: ScriptProblem) -> TestExecutionResult:
    return unrunnable_result(
        run.hypothesis.id, run.worktree_text, str(problem), exit_code=problem.exit_code
    )


def _start_watchdog(marker_name: str, grace: float) -> Optional[Watchdog]:
    """The run's watchdog; without one (no process can be started) the run still runs."""
    try:
        return Watchdog(marker_name, grace)
    except OSError as error:
        logger.warning("no watchdog for this run, which a killed runner may outlive: %s", error)
        return None


async def _sweep(marker: Marker, grace: float) -> None:
    """Stop the processes carrying ``marker`` (a run's, or one hypothesis's) that escaped
    their script's group and outlived it."""
    leftovers = ProcessTree(marker)
    try:
        await leftovers.stop(grace)
    except BaseException:
        leftovers.kill_now()
        raise


def _never(_result: TestExecutionResult) -> bool:
    """No result holds the next scripts back (a run without a gate of its consumer's)."""
    return False
