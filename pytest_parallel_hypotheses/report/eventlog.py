"""The event stream of ``--hypotheses-events=PATH``: one JSON object per line, written and
flushed as things happen, so a reader following the file sees each hypothesis as it ends.

Every event has ``schema_version``, ``type``, ``time`` (ISO 8601, UTC) and ``offset`` (seconds
since the run started, from a monotonic clock). Events are written by a thread of their own:
the run loop and the engine only hand them over, and never wait on the disk. A write that fails
(a full disk) is reported once; the run, its verdicts and the other reports go on.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Dict, Optional

import pytest

from ..engine.events import TOLD_ELSEWHERE, reporting_logger
from ..finding.atomic import open_through

logger = reporting_logger(__name__)

#: Raised when a field of an event changes meaning or disappears; new fields keep it.
EVENTS_SCHEMA_VERSION = 1

_CLOSE = None


class EventLog:
    """Appends events to one file; :meth:`emit` may be called from any thread. As a pytest
    plugin, it names a failure to write at the end of the summary, beside a report's: above
    the verdicts, a trial's tester took a lost log for a silent one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._clock = time.monotonic()
        self._pending: queue.SimpleQueue[Optional[Dict[str, Any]]] = queue.SimpleQueue()
        self._writer: Optional[threading.Thread] = None
        #: Why writing failed, once it did; no event is written after that.
        self.failure: Optional[str] = None

    def open(self) -> None:
        """Start a new stream (truncating an old file) and its writer."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            stream = open_through(self.path)  # /dev/stdout: where pytest writes already
        except OSError as error:  # a path the checks let through (/proc/x, as root)
            self._fail(error, opened=False)
            return
        self._writer = threading.Thread(
            target=self._write_all, args=(stream,), name="hypotheses-events", daemon=True
        )
        self._writer.start()

    def emit(self, event_type: str, **fields: Any) -> None:
        """Hand over one event, stamped now; it is written and flushed at once."""
        if self._writer is None:
            return
        self._pending.put(
            {
                "schema_version": EVENTS_SCHEMA_VERSION,
                "type": event_type,
                "time": datetime.now(timezone.utc).isoformat(),
                "offset": round(time.monotonic() - self._clock, 6),
                **fields,
            }
        )

    def close(self) -> None:
        """Write what is pending, then close the file."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._pending.put(_CLOSE)
            writer.join()

    def _write_all(self, stream: IO[str]) -> None:
        """The writer: each event as one line, flushed; after a failure, only drain."""
        try:
            while True:
                event = self._pending.get()
                if event is _CLOSE:
                    return
                if self.failure is None:
                    try:
                        stream.write(json.dumps(event, default=str) + "\n")
                        stream.flush()
                    except OSError as error:
                        self._fail(error)
        finally:
            try:
                stream.close()
            except OSError as error:  # the last flush failed: the disk is full
                if self.failure is None:
                    self._fail(error)

    def _fail(self, error: OSError, *, opened: bool = True) -> None:
        written = "NOT fully written" if opened else "NOT written"
        self.failure = f"hypotheses events {written} to {self.path}: {error.strerror or error}"
        logger.warning("%s", self.failure, extra=TOLD_ELSEWHERE)  # the summary's own line

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.failure is not None:
            terminalreporter.write_line(f"WARNING: {self.failure}", yellow=True, bold=True)
