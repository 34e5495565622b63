"""What a run is doing right now: which hypotheses run, on which lane, since when, and what
they printed last; and when each attempt ran, for the timeline.

Fed from the engine's thread (or from the xdist controller's hooks) and read by the live
status, the heartbeat and the reports from others, so every access takes one lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Protocol

from .records import Record, RecordSource


class Printed(Protocol):
    """What a running hypothesis printed, as the live status needs it: the engine's live
    output in this process, or the files a worker writes, followed from the xdist controller."""

    def last_line(self) -> str: ...


@dataclass(frozen=True)
class Running:
    """One hypothesis running now."""

    nodeid: str
    label: str
    lane: str
    attempt: int
    repeats: int
    timeout: Optional[float]
    #: ``time.monotonic()`` when its current attempt (or its worktree's setup step) started.
    since: float
    output: Optional[Printed] = field(default=None, compare=False)
    #: What runs before its attempts: ``"setup"`` while its worktree's setup step runs.
    stage: str = ""

    def last_line(self) -> str:
        return "" if self.output is None else self.output.last_line()


@dataclass(frozen=True)
class Progress:
    """A consistent view of the run at one moment."""

    total: int
    done: int
    running: List[Running]

    @property
    def waiting(self) -> int:
        return max(0, self.total - self.done - len(self.running))


#: The outcome on the timeline of an attempt that a stop cut short.
CUT_SHORT = "cut short"


class RunWatch:
    """The state of the run, safe to feed and read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0
        self._running: Dict[str, Running] = {}
        self._timeline: Dict[str, List[Dict[str, Any]]] = {}
        #: The run's start as a moment, not for durations: the output files
        #: written since, whose times are wall-clock times, are this run's.
        self.started_at = datetime.now(timezone.utc)
        self.started_clock = time.monotonic()

    def expect(self, total: int) -> None:
        """The run has ``total`` hypotheses."""
        with self._lock:
            self._total = total

    def started(self, running: Running) -> None:
        """An attempt of a hypothesis started (its earlier attempt, if any, is over)."""
        with self._lock:
            self._running[running.nodeid] = running

    def setup_ended(self, nodeid: str) -> bool:
        """The worktree's setup step ``nodeid`` was running succeeded: until its script
        starts, it waits again. True when it was shown running its step."""
        with self._lock:
            running = self._running.get(nodeid)
            if running is None or not running.stage:
                return False
            del self._running[nodeid]
            return True

    def attempt_ended(self, nodeid: str, outcome: str, lane: Optional[str] = None) -> None:
        """The current attempt of ``nodeid`` ended with ``outcome``: one bar of the timeline
        (on ``lane`` when only now known); nothing if that attempt has its bar already."""
        with self._lock:
            running = self._running.get(nodeid)
            bars = self._timeline.get(nodeid) or [{}]
            if running is None or bars[-1].get("attempt") == running.attempt:
                return
            self._timeline.setdefault(nodeid, []).append(
                {
                    "attempt": running.attempt,
                    "lane": lane or running.lane,
                    "start": round(running.since - self.started_clock, 3),
                    "end": round(time.monotonic() - self.started_clock, 3),
                    "result": outcome,
                }
            )
            # its output is in its result now: a hypothesis waiting to be reported must not
            # hold a whole capture (hundreds of them may wait behind a slow report)
            self._running[nodeid] = replace(running, output=None)

    def finished(self, nodeid: str) -> None:
        """A hypothesis has its result (reported, or never run)."""
        with self._lock:
            self._running.pop(nodeid, None)
            self._done += 1

    def running_entry(self, nodeid: str) -> Optional[Running]:
        with self._lock:
            return self._running.get(nodeid)

    def progress(self) -> Progress:
        with self._lock:
            running = sorted(self._running.values(), key=lambda entry: entry.since)
            return Progress(self._total, self._done, [replace(entry) for entry in running])

    def timeline(self, nodeid: str) -> List[Dict[str, Any]]:
        """The attempts of ``nodeid`` that ran here: lane, start and end in seconds from the
        run's start, outcome."""
        with self._lock:
            return list(self._timeline.get(nodeid, ()))


class TimedRecords:
    """The records of a run, each with its ``timeline``: when and on which lane each attempt
    ran here (an empty list for a record of another process)."""

    def __init__(self, source: RecordSource, watch: RunWatch) -> None:
        self._source = source
        self._watch = watch

    @property
    def records(self) -> List[Record]:
        return [self.timed(record) for record in self._source.records]

    def timed(self, record: Record) -> Record:
        timeline = self._watch.timeline(record["nodeid"]) or record.get("timeline") or []
        return {**record, "timeline": timeline}
