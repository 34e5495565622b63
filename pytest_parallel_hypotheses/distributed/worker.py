"""The run under a pytest-xdist worker: each item runs its script when xdist runs the item.

xdist hands a worker items one by one and expects each to be run, reported and done before the
next (its own run loop calls ``pytest_runtest_protocol``). A worker therefore runs one script
at a time, and a run is as parallel as it has workers. The alternative, a worker starting every
item queued for it at once, would break what xdist relies on: it moves queued items between
workers (``--dist worksteal``) and re-schedules them when a worker crashes, so a started script
could run twice; and a crash would lose every script the worker had started, while xdist
blames only one item. On one machine without ``-n`` the plugin starts every script at once.

With ``--hypotheses-stop-on``, the worker whose result meets the condition stops (xdist then
hands out no more items) and tells the workers of its machine through a :class:`StopFlag`:
they stop the script they run and skip the items queued for them, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from pathlib import Path
from typing import Any, ContextManager, Dict, Mapping, Optional

import pytest

from ..core.config import FalsificationConfig
from ..core.halting import StopOn, stop_reason
from ..core.models import TestExecutionResult
from ..core.results import stopped_result
from ..engine.bridge import run_sync
from ..engine.executor import AsyncTestExecutor
from ..engine.runs import HypothesisRun
from ..engine.tree import MARKER_PREFIX
from ..plugin.items import HypothesisItem
from ..plugin.judging import problem_result
from ..plugin.outputfolder import writing_to
from ..plugin.reuse import VerdictReuse
from ..plugin.runnerwarnings import RunnerWarnings
from .sharding import ShardSelection
from .slots import SlotFolder
from .stopflag import StopFlag
from .wire import WIRE_KEY, worker_marker_prefix, workerinput_of


class XdistWorkerRun:
    """The plugin part of an xdist worker that gives each item its result before its setup."""

    def __init__(
        self,
        config: pytest.Config,
        falsification: FalsificationConfig,
        shard: Optional[ShardSelection],
        reuse: VerdictReuse,
        warnings: RunnerWarnings,
    ) -> None:
        self._reuse = reuse
        self._warnings = warnings
        workerinput = workerinput_of(config)
        briefing: Mapping[str, Any] = workerinput.get(WIRE_KEY, {})
        prefix = worker_marker_prefix(
            briefing.get("marker_prefix", MARKER_PREFIX), str(workerinput.get("workerid", "gw"))
        )
        folder = _shared_folder(briefing)
        if folder is not None:  # this machine's: where the controller reads the output
            falsification = writing_to(falsification, briefing.get("output_folder"))
        # one script at a time: ``auto`` has nothing to fit here, nor a script to run again
        # when it timed out short of CPUs (the crowd is the other workers' scripts)
        engine = dataclasses.replace(falsification, adaptive_concurrency=False)
        self._executor = AsyncTestExecutor(engine, marker_prefix=prefix, setup_records=folder)
        self._slots: ContextManager[object] = (
            contextlib.nullcontext()
            if folder is None
            else SlotFolder(folder, falsification.max_concurrent_tests)
        )
        self._stop_on = None if falsification.stop_on is None else StopOn(falsification.stop_on)
        self._stop = StopFlag(folder)
        #: Why this worker stopped the run, if one of its results met the stop condition.
        self._stopped: Optional[str] = None
        self._shard = shard

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Run the script first; the item's own setup then judges the result."""
        if isinstance(item, HypothesisItem) and not item.delivered:
            item.deliver(self._result_of(item), during_setup=True)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Tell the controller what it needs to list hypotheses that never ran here."""
        output: Optional[Dict[str, Any]] = getattr(session.config, "workeroutput", None)
        if output is None:
            return
        output[WIRE_KEY] = {
            "not_run": [
                item.record()
                for item in session.items
                if isinstance(item, HypothesisItem) and item.result is None
            ],
            "shard": None if self._shard is None else self._shard.description,
            "stopped": self._stopped,
            "warnings": self._warnings.kinds(),
        }

    def _result_of(self, item: HypothesisItem) -> TestExecutionResult:
        run = item.run
        if run is None:
            return problem_result(item.found)
        plan = self._reuse.plan(item, run)
        if plan.run is None:
            assert plan.cached is not None  # a plan either runs or reuses
            self._stop_if_met(item.session, plan.cached)  # a reused verdict counts too
            return plan.cached
        planned = plan.run
        with self._slots:
            result = run_sync(lambda: self._run_unless_stopped(planned))
            self._stop_if_met(item.session, result)  # before a waiting worker takes the slot
        self._reuse.remember(item, result)
        return result

    async def _run_unless_stopped(self, run: HypothesisRun) -> TestExecutionResult:
        """The script's result; or, once another worker has stopped the run, the stopped result
        that says why (the script is then stopped with its tree, or never started)."""
        reason = self._stop.reason()
        if reason is not None:
            return stopped_result(run.hypothesis.id, str(run.worktree), reason, started=False)
        loop = asyncio.get_running_loop()
        started = loop.time()
        running = asyncio.ensure_future(self._executor.execute_parallel_async([run]))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            running.cancel()  # the engine stops the script's tree; a done task stays as it is
            stopping.cancel()
            await asyncio.wait({running, stopping})
        if not running.cancelled():
            return running.result()[0]
        duration = loop.time() - started
        return stopped_result(
            run.hypothesis.id, str(run.worktree), stopping.result(), started=True, duration=duration
        )

    def _stop_if_met(self, session: pytest.Session, result: TestExecutionResult) -> None:
        """Stop this worker and the others once a result meets the stop condition, as the
        engine does without xdist: it asks before any hook changes the result."""
        if self._stop_on is None or not self._stop_on(result):
            return
        self._stopped = stop_reason(result)
        self._stop.set(self._stopped)
        session.shouldstop = self._stopped


def _shared_folder(briefing: Mapping[str, Any]) -> Optional[Path]:
    """The controller's folder of run-wide slots and of the stop, when this worker shares its
    machine; else None: a worker elsewhere cannot reach it (it runs one script at a time, and
    hears of a stop only when xdist stops handing it items)."""
    folder = briefing.get("shared_folder")
    same_host = briefing.get("host") == socket.gethostname()
    if folder is None or not same_host or not os.path.isdir(folder):
        return None
    return Path(folder)
