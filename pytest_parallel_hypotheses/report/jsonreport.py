"""The JSON report of ``--hypotheses-report=PATH``: every hypothesis and the run around it.

Written when the session finishes, interrupted or not, through a temporary file in the same
folder and ``os.replace``, so a reader never sees half a report.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import pytest

from ..core.classification import HypothesisStatus
from ..core.config import FalsificationConfig
from ..core.version import __version__
from ..engine.memory import MemoryGuard
from ..finding.atomic import write_atomically
from .conclusions import next_action, verdict_counts
from .records import Record, RecordSource
from .runsettings import run_settings

#: Raised when a field changes meaning or disappears; new fields do not change it.
SCHEMA_VERSION = 1

#: Exit statuses that a report the user asked for and did not get turns into INTERNAL_ERROR:
#: a caller reading the status must not go looking for a report that is not there.
_OVERRIDDEN_BY_A_LOST_REPORT = (
    pytest.ExitCode.OK,
    pytest.ExitCode.TESTS_FAILED,
    pytest.ExitCode.NO_TESTS_COLLECTED,
)

#: What the shard of a CI matrix this run is holds, set by the part that selects it.
SHARD_KEY = pytest.StashKey[Dict[str, Any]]()


_PENDING = HypothesisStatus.PENDING.value


class JsonReport:
    """The plugin part that writes the JSON report at the end of the session."""

    #: How the terminal summary names the file written.
    LABEL = "hypotheses report"

    def __init__(
        self,
        path: Path,
        directory: Optional[Path],
        engine: FalsificationConfig,
        records: RecordSource,
        *,
        per_xdist_worker: bool = False,
    ) -> None:
        self._path = path
        self._directory = directory
        self._engine = engine
        self._per_xdist_worker = per_xdist_worker
        self._records = records
        self._started = datetime.now(timezone.utc)
        self._clock = time.monotonic()
        self._written = False
        self._failure = ""

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the report, unless nothing was meant to run (``--co``, a usage error); a
        report that cannot be written fails the run (the summary still shows every verdict).
        The status is the one pytest ends with, which a plugin's sessionfinish may have set."""
        status = session.exitstatus
        if session.config.option.collectonly or status == pytest.ExitCode.USAGE_ERROR:
            return
        try:
            write_atomically(self._path, self.render(self._report(session, status)))
        except OSError as error:  # the disk filled up or the folder vanished since start-up
            self._failure = f"{self.LABEL} NOT written to {self._path}: {error.strerror}"
            if session.exitstatus in _OVERRIDDEN_BY_A_LOST_REPORT:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        else:
            self._written = True

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Where the report is, or why it is missing: the last word, below every verdict."""
        if self._written:
            terminalreporter.write_line(f"{self.LABEL}: {self._path}")
        elif self._failure:
            terminalreporter.write_line(self._failure, red=True, bold=True)

    def render(self, document: Dict[str, Any]) -> str:
        """The file's text for a report document."""
        return json.dumps(document, indent=2)

    def _report(self, session: pytest.Session, exitstatus: int) -> Dict[str, Any]:
        records = self._records.records
        status = _final_status(exitstatus)
        return report_document(self._run_metadata(session, status, records), records)

    def _run_metadata(
        self, session: pytest.Session, exitstatus: int, records: Sequence[Record]
    ) -> Dict[str, Any]:
        config = session.config
        interrupted = int(exitstatus) == pytest.ExitCode.INTERRUPTED
        return {
            "started_at": self._started.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "duration": time.monotonic() - self._clock,
            "exit_status": int(exitstatus),
            "interrupted": interrupted,
            # -x, --maxfail, or a stop condition, which leaves hypotheses without a verdict
            "stopped_early": bool(session.shouldfail or session.shouldstop)
            or (not interrupted and verdict_counts(records)[_PENDING] > 0),
            "directory": None if self._directory is None else str(self._directory),
            "invocation_dir": str(config.invocation_params.dir),
            "arguments": list(config.invocation_params.args),
            "settings": {
                setting.key: setting.value
                for setting in run_settings(self._engine, self._per_xdist_worker)
            },
            "shard": config.stash.get(SHARD_KEY, None),
            "memory_enforcement": _memory_enforcement(self._engine, records),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "pytest": pytest.__version__,
            "plugin": __version__,
        }


def _memory_enforcement(engine: FalsificationConfig, records: Sequence[Record]) -> Optional[str]:
    """What enforced the memory limits on this machine, when any was set (the run's, or a
    hypothesis's own in its metadata): ``cgroup`` or ``watchdog``."""
    limited = engine.memory_limit is not None or any(r.get("memory") for r in records)
    return MemoryGuard.for_this_process(limits=True).kind if limited else None


def _final_status(exitstatus: int) -> int:
    """The session's exit status, or an interruption in flight: a second Ctrl-C that comes
    while pytest handles the first ends the session before pytest records the interruption,
    and the session finishes with the status it had before, 0."""
    if isinstance(sys.exc_info()[1], KeyboardInterrupt):
        return int(pytest.ExitCode.INTERRUPTED)
    return int(exitstatus)


def report_document(run: Dict[str, Any], records: Sequence[Record]) -> Dict[str, Any]:
    """A whole report from the run's metadata and the records: one place for its layout,
    shared with the reports that ``merge`` makes of several."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "counts": verdict_counts(records),
        "next_action": next_action(records),
        "hypotheses": list(records),
    }
