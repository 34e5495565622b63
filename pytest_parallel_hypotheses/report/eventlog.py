"""The event stream of ``--hypotheses-events=PATH``: one JSON object per line, written and
flushed as things happen, so a reader following the file sees each hypothesis as it ends.

Every event has ``schema_version``, ``type``, ``time`` (ISO 8601, UTC) and ``offset`` (seconds
since the run started, from a monotonic clock). A write that fails (a full disk) is reported
once; the run, its verdicts and the other reports go on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Optional

logger = logging.getLogger(__name__)

#: Raised when a field of an event changes meaning or disappears; new fields keep it.
EVENTS_SCHEMA_VERSION = 1


class EventLog:
    """Appends events to one file, from any thread."""

    def __init__(self, path: Path, started_clock: Optional[float] = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._clock = time.monotonic() if started_clock is None else started_clock
        self._stream: Optional[IO[str]] = None
        #: Why writing failed, once it did; no event is written after that.
        self.failure: Optional[str] = None

    def open(self) -> None:
        """Start a new stream (truncating an old file)."""
        with self._lock:
            self._attempt(self._open)

    def emit(self, event_type: str, **fields: Any) -> None:
        """Write one event and flush it."""
        event = {
            "schema_version": EVENTS_SCHEMA_VERSION,
            "type": event_type,
            "time": datetime.now(timezone.utc).isoformat(),
            "offset": round(time.monotonic() - self._clock, 6),
            **fields,
        }
        line = json.dumps(event, default=str) + "\n"
        with self._lock:
            if self._stream is not None:
                self._attempt(lambda: self._write(line))

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                stream, self._stream = self._stream, None
                self._attempt(stream.close)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - kept open

    def _write(self, line: str) -> None:
        assert self._stream is not None  # checked by the caller
        self._stream.write(line)
        self._stream.flush()

    def _attempt(self, action: Any) -> None:
        """Run ``action``; on the first OSError stop writing and remember why."""
        if self.failure is not None:
            return
        try:
            action()
        except OSError as error:
            self.failure = f"hypotheses events NOT fully written to {self.path}: {error}"
            logger.warning("%s", self.failure)
            stream, self._stream = self._stream, None
            if stream is not None:
                with contextlib.suppress(OSError):  # the failure is already recorded
                    stream.close()
