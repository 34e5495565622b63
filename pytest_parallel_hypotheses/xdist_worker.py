"""The run under a pytest-xdist worker: each item runs its script when xdist runs the item.

xdist hands a worker items one by one and expects each to be run, reported and done before the
next (its own run loop calls ``pytest_runtest_protocol``). A worker therefore runs one script
at a time, and a run is as parallel as it has workers. The alternative, a worker starting every
item queued for it at once, would break what xdist relies on: it moves queued items between
workers (``--dist worksteal``) and re-schedules them when a worker crashes, so a started script
could run twice; and a crash would lose every script the worker had started, while xdist
blames only one item. On one machine without ``-n`` the plugin starts every script at once.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any, ContextManager, Dict, Mapping, Optional

import pytest

from .distribution import WIRE_KEY, worker_marker_prefix, workerinput_of
from .executor import AsyncTestExecutor
from .items import HypothesisItem
from .models import FalsificationConfig, TestExecutionResult
from .records import record_for
from .sharding import ShardSelection
from .slots import SlotFolder
from .termination import SigtermInterrupts
from .tree import MARKER_PREFIX
from .verdicts import problem_result


class XdistWorkerRun:
    """The plugin part of an xdist worker that gives each item its result before its setup."""

    def __init__(
        self,
        config: pytest.Config,
        falsification: FalsificationConfig,
        shard: Optional[ShardSelection],
    ) -> None:
        workerinput = workerinput_of(config)
        briefing: Mapping[str, Any] = workerinput.get(WIRE_KEY, {})
        prefix = worker_marker_prefix(
            briefing.get("marker_prefix", MARKER_PREFIX), str(workerinput.get("workerid", "gw"))
        )
        self._executor = AsyncTestExecutor(falsification, marker_prefix=prefix)
        self._slots = _slots(briefing, falsification.max_concurrent_tests)
        self._shard = shard
        self._sigterm = SigtermInterrupts()

    def pytest_sessionstart(self) -> None:
        self._sigterm.install()

    def pytest_unconfigure(self) -> None:
        self._sigterm.restore()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Run the script first; the item's own setup then judges the result."""
        if isinstance(item, HypothesisItem) and item.raw_result is None:
            item.raw_result = self._result_of(item)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Tell the controller what it needs to list hypotheses that never ran here."""
        output: Optional[Dict[str, Any]] = getattr(session.config, "workeroutput", None)
        if output is None:
            return
        output[WIRE_KEY] = {
            "not_run": [
                record_for(item)
                for item in session.items
                if isinstance(item, HypothesisItem) and item.result is None
            ],
            "shard": None if self._shard is None else self._shard.description,
        }

    def _result_of(self, item: HypothesisItem) -> TestExecutionResult:
        run = item.run
        if run is None:
            return problem_result(item.found)
        with self._slots:
            return self._executor.execute_parallel([run])[0]


def _slots(briefing: Mapping[str, Any], limit: int) -> ContextManager[object]:
    """The run-wide slots when this worker shares the controller's machine; else none: a
    worker elsewhere cannot reach the controller's folder (it runs one script at a time)."""
    folder = briefing.get("slot_folder")
    same_host = briefing.get("host") == socket.gethostname()
    if folder is None or not same_host or not os.path.isdir(folder):
        return contextlib.nullcontext()
    return SlotFolder(Path(folder), limit)
