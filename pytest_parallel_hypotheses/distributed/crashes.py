"""The result of a hypothesis whose xdist worker died, or was shut down by an interruption,
while running its script.

The worker's memory goes down with it, but not the files it spilled its scripts' output to
(see :mod:`..engine.spilled`): the controller takes up what the script had printed there, and
tells how long it had run from when the worker started the item until the crash, or the
interruption, was seen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..core.models import TestExecutionResult
from ..core.results import KeptOutput, runner_error_result, stopped_result
from ..engine.spilled import left_behind
from ..report.wording import located


class CrashedScripts:
    """When each hypothesis started on a worker, and the crash results of those whose worker
    died under them."""

    def __init__(self, rootpath: Path, folder: Optional[Path], max_output_bytes: int) -> None:
        self._rootpath = rootpath
        self._folder = folder
        self._limit = max_output_bytes
        #: The session's start, as a moment: older output files are an earlier run's.
        self._since = datetime.now(timezone.utc)
        #: ``time.monotonic()`` when each running hypothesis started, by node id.
        self._started: Dict[str, float] = {}
        #: ``time.monotonic()`` when each dead worker was seen down, by its id.
        self._down: Dict[str, float] = {}
        #: ``time.monotonic()`` when the session was interrupted, if it was.
        self._interrupted: Optional[float] = None

    def started(self, nodeid: str) -> None:
        """A worker started the item ``nodeid`` (a new start replaces an earlier one)."""
        self._started[nodeid] = time.monotonic()

    def worker_down(self, worker: str) -> None:
        """The worker ``worker`` was seen dead: its scripts ran until now."""
        self._down[worker] = time.monotonic()

    def interrupted(self) -> None:
        """The session was interrupted: every script still running ran until now."""
        self._interrupted = self._interrupted or time.monotonic()

    def cut_short(self, nodeid: str, reason: str) -> Optional[TestExecutionResult]:
        """After an interruption, the stopped result of ``nodeid`` if a worker had started it
        (what it had printed, and how long it had run); None if none had, or no interruption
        came."""
        since = self._started.get(nodeid)
        if self._interrupted is None or since is None:
            return None
        ran = self._ran(nodeid, since, self._interrupted)
        return stopped_result(ran.hypothesis_id, ran.worktree, reason, started=True, **ran.kept())

    def result(self, nodeid: str, worker: str, message: str) -> TestExecutionResult:
        """The error of ``nodeid``, whose worker died: how long it had run and what it had
        printed, when this machine has its files."""
        since = self._started.pop(nodeid, None)
        ran = self._ran(nodeid, since, self._down.get(worker, time.monotonic()))
        return runner_error_result(ran.hypothesis_id, ran.worktree, message, **ran.kept())

    def _ran(self, nodeid: str, since: Optional[float], until: float) -> _Ran:
        """What the script of ``nodeid`` did, from ``since`` (None: not known) ``until``."""
        worktree, hypothesis_id = located(self._rootpath, nodeid)
        stdout, stderr = self._output(hypothesis_id, worktree) or (None, None)
        duration = 0.0 if since is None else max(0.0, until - since)
        return _Ran(worktree, hypothesis_id, duration, stdout, stderr)

    def _output(self, hypothesis_id: str, worktree: str) -> Optional[Tuple[KeptOutput, KeptOutput]]:
        if self._folder is None:
            return None
        return left_behind(self._limit, self._folder, hypothesis_id, worktree, since=self._since)


@dataclass(frozen=True)
class _Ran:
    """Where a script ran, for how long, and what it printed (None: no files here)."""

    worktree: str
    hypothesis_id: str
    duration: float
    stdout: Optional[KeptOutput]
    stderr: Optional[KeptOutput]

    def kept(self) -> Dict[str, Any]:
        """How long it ran and what it printed, as a result's keyword arguments."""
        return {"duration": self.duration, "stdout": self.stdout, "stderr": self.stderr}
