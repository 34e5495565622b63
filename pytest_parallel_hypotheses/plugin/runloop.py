"""The run loop under ``--hypotheses``: every script starts at once, each item is reported as
its result arrives.

pytest's loop is synchronous and runs one item after another; the engine is asynchronous and
runs them all. The engine's result stream runs on a private loop in a worker thread
(``BackgroundStream``), and this loop hands each result to its item and runs pytest's normal
``pytest_runtest_protocol`` for it. Leaving the stream, because pytest stops (``-x``,
``--maxfail``), on Ctrl-C or on SIGTERM, stops every script still running.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Tuple

import pytest

from ..core.config import FalsificationConfig
from ..core.halting import StopOn, stop_reason
from ..core.models import TestExecutionResult
from ..core.results import stopped_result
from ..engine.bridge import BackgroundStream
from ..engine.executor import AsyncTestExecutor
from ..engine.gate import StartGate
from ..engine.runs import HypothesisRun
from ..report.watch import CUT_SHORT
from .items import HypothesisItem, fails_its_item
from .judging import problem_result
from .reuse import VerdictReuse
from .watching import RunWatcher

logger = logging.getLogger(__name__)


class HypothesisRunLoop:
    """The plugin part that runs the selected hypotheses and reports them as they finish."""

    def __init__(
        self, config: FalsificationConfig, reuse: VerdictReuse, watcher: RunWatcher
    ) -> None:
        self._config = config
        self._reuse = reuse
        self._watcher = watcher

    @pytest.hookimpl
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            errors = session.testsfailed
            raise session.Interrupted(
                f"{errors} error{'s' if errors != 1 else ''} during collection"
            )
        if session.config.option.collectonly:
            return True
        items = [item for item in session.items if isinstance(item, HypothesisItem)]
        run = _Run(session, items, self._reuse, self._watcher, self._config.stop_on)
        run.report_all(AsyncTestExecutor(self._config))
        return True


class _Run:
    """One pass over the selected items, in the order their results arrive."""

    def __init__(
        self,
        session: pytest.Session,
        items: List[HypothesisItem],
        reuse: VerdictReuse,
        watcher: RunWatcher,
        stop_on: Optional[str] = None,
    ) -> None:
        self._session = session
        self._watcher = watcher
        self._pending = list(items)
        self._reuse = reuse
        self._runnable: Dict[Tuple[str, str], Tuple[HypothesisItem, HypothesisRun]] = {}
        self._cached: Dict[Tuple[str, str], TestExecutionResult] = {}
        for item in items:
            run = item.run
            plan = None if run is None else reuse.plan(item, run)
            if plan is not None and plan.cached is not None:
                self._cached[item.key] = plan.cached
            elif plan is not None and plan.run is not None:
                self._runnable[item.key] = (item, plan.run)
        if stop_on is not None:
            self._stop_on_reused(StopOn(stop_on))

    def _stop_on_reused(self, condition: StopOn) -> None:
        """A reused verdict counts like any other, for the stop condition too: once one meets
        it, nothing runs, and every runnable hypothesis is skipped with the reason."""
        reused = [self._cached[item.key] for item in self._pending if item.key in self._cached]
        stopping = next((result for result in reused if condition(result)), None)
        if stopping is None:
            return
        reason = stop_reason(stopping)
        logger.info("not starting the run: %s", reason)
        for key, (item, _run) in self._runnable.items():
            found = item.found
            self._cached[key] = stopped_result(
                found.hypothesis_id, str(found.worktree), reason, started=False
            )
        self._runnable.clear()

    def report_all(self, executor: AsyncTestExecutor) -> None:
        """Start every runnable script, report the unrunnable and the reused, then each
        result as it comes (stored for reuse first). Under ``-x`` or ``--maxfail``, the
        unrunnable and the reused are reported before any script starts (they may be the
        failures that stop the run), and no script starts while a failure waits for its
        report (:mod:`~pytest_parallel_hypotheses.engine.gate`)."""
        runs = [run for _item, run in self._runnable.values()]
        observer = self._watcher.observer(item for item, _run in self._runnable.values())
        gate = StartGate(fails_its_item) if self._session.config.option.maxfail else None
        try:
            if gate is not None:
                self._report_known()
            with BackgroundStream(
                lambda: executor.as_completed(runs, observer=observer, gate=gate)
            ) as results:
                self._report_known()
                for result in results:
                    item, _run = self._runnable[(result.worktree_path, result.hypothesis_id)]
                    self._reuse.remember(item, result)
                    item.deliver(result)
                    self._report(item)
                    if gate is not None:
                        gate.reported(result)
        except (KeyboardInterrupt, self._session.Interrupted, self._session.Failed) as stop:
            self._keep_what_was_printed(stop)
            raise

    def _report_known(self) -> None:
        """Report the hypotheses whose result is known without running: reused, or not
        runnable (once)."""
        for item in list(self._pending):
            if item.key not in self._runnable:
                item.deliver(self._cached.get(item.key) or problem_result(item.found))
                self._report(item)

    def _keep_what_was_printed(self, stop: BaseException) -> None:
        """Each hypothesis cut short keeps, in its record, what its script printed and how
        long it ran (in its worktree's setup step: that it was there, and for how long)."""
        reason = "the run was interrupted" if isinstance(stop, KeyboardInterrupt) else str(stop)
        for item in self._pending:
            result = None if item.result is not None else self._watcher.cut_short(item, reason)
            if result is not None:
                item.keep_cut_short(result)
                self._watcher.watch.attempt_ended(item.nodeid, CUT_SHORT)

    def _report(self, item: HypothesisItem) -> None:
        """Run pytest's protocol for one item; raise as pytest's own loop does to stop."""
        self._pending.remove(item)
        nextitem = self._pending[0] if self._pending else None
        item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        session = self._session
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
