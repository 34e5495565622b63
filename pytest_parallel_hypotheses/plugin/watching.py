"""The plugin part that watches a run: the live status on a terminal, the heartbeat in logs and
the event stream, fed by the engine (alone) or by the workers' reports (the xdist controller).

The live status and the heartbeat are drawn by a thread of their own, through a
:class:`~pytest_parallel_hypotheses.report.livearea.StatusArea` put between pytest's terminal
writer and its file, so that pytest's own lines always come first and whole.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Generator, Iterable, List, Optional, Tuple

import pytest

from ..core.models import TestExecutionResult
from ..core.results import stopped_result
from ..engine.events import LiveOutput, RunObserver
from ..engine.runs import HypothesisRun
from ..engine.spilled import FollowedOutput
from ..report.conclusions import next_action, verdict_counts
from ..report.eventlog import EventLog
from ..report.livearea import StatusArea
from ..report.records import RECORD_ATTRIBUTE, RecordSource
from ..report.runsettings import run_settings
from ..report.statusview import cut_short_lines, heartbeat_line, status_lines
from ..report.watch import CUT_SHORT, Running, RunWatch, TimedRecords
from ..report.wording import DURING_SETUP, is_cut_short, is_started, located
from .items import HypothesisItem
from .options import HypothesesSettings
from .outputfolder import session_folder
from .roles import Role, role_of

#: Seconds between two refreshes of the live status (it shows seconds, so twice a second
#: keeps the clock smooth while the terminal sees only a few writes per second).
REFRESH_SECONDS = 0.5


#: The timeout a hypothesis's metadata sets, by node id (None: the run's).
OwnTimeout = Callable[[str], Optional[float]]


class RunWatcher:
    """The plugin part that tells what a run is doing while it runs."""

    def __init__(
        self,
        settings: HypothesesSettings,
        records: RecordSource,
        own_timeout: Optional[OwnTimeout] = None,
    ) -> None:
        self._settings = settings
        #: Under xdist, where the controller's items start with no run of the engine's.
        self._own_timeout = own_timeout
        self.watch = RunWatch()
        self.records = TimedRecords(records, self.watch)
        self._events = None if settings.events_path is None else EventLog(settings.events_path)
        self._area: Optional[StatusArea] = None
        self._live = False
        #: Each item's line is ended as soon as it is reported (see :class:`StatusArea`).
        self._ends_lines = False
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        self._controller = False
        self._rootpath = Path()
        self._announced = False
        self._heartbeat_due = False

    # -- what the run loop and the engine tell ----------------------------------------------

    def observer(self, items: Iterable[HypothesisItem]) -> RunObserver:
        """The engine's observer for a run of ``items`` on this machine."""
        engine = self._settings.falsification
        nodeids = {item.key: item.nodeid for item in items}
        most = engine.max_repeats if engine.auto_repeat else int(engine.repeats)
        return _EngineWatch(self, nodeids, most, engine.test_timeout)

    def cut_short(self, item: HypothesisItem, reason: str) -> Optional[TestExecutionResult]:
        """The result of a hypothesis that ``reason`` cut short while it ran, or None if it
        was not running: not judged, with what its script had printed and how long it had
        run. Cut short in its worktree's setup step, it says so (its work had begun, which
        "not run" would deny) and keeps no output: the step's is not the script's."""
        entry = self.watch.running_entry(item.nodeid)
        if entry is None or not isinstance(entry.output, LiveOutput):
            return None
        printed = None if entry.stage else entry.output
        return stopped_result(
            item.found.hypothesis_id,
            str(item.found.worktree),
            f"{reason} {DURING_SETUP}" if entry.stage else reason,
            started=True,
            duration=time.monotonic() - entry.since,
            stdout=None if printed is None else printed.stdout,
            stderr=None if printed is None else printed.stderr,
        )

    def emit(self, event_type: str, **fields: Any) -> None:
        if self._events is not None:
            self._events.emit(event_type, **fields)

    # -- pytest hooks ------------------------------------------------------------------------

    def pytest_configure(self, config: pytest.Config) -> None:
        self._controller = role_of(config) is Role.CONTROLLER
        self._rootpath = config.rootpath
        if self._events is not None:
            config.pluginmanager.register(self._events, "hypotheses-events")
            self._events.open()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        items = [item for item in session.items if isinstance(item, HypothesisItem)]
        if not self._controller:
            self._announce([item.nodeid for item in items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: List[str]) -> None:
        self._announce(list(ids))

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Under xdist, an item starting on a worker is its script starting; what it prints
        is followed in the session's output folder, where the worker writes it. Here, the
        item is about to be reported, under pytest's capture: the status waits for its end."""
        if not self._controller:
            if self._area is not None:
                self._area.hold()
            return
        own = None if self._own_timeout is None else self._own_timeout(nodeid)
        timeout = self._settings.falsification.test_timeout if own is None else own
        since = time.monotonic()
        output = self._followed(nodeid)
        self.watch.started(Running(nodeid, _label(nodeid), "", 1, 1, timeout, since, output))
        self.emit("hypothesis_started", nodeid=nodeid, lane=None, attempt=1)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """The item is reported: its line ends now in a log, the status may show again, and a
        heartbeat that came due meanwhile is written now, as things stand now (None once
        nothing runs)."""
        if self._area is None:
            return
        if self._ends_lines:
            self._area.end_line()
        if self._controller:
            return
        self._area.release()
        if self._heartbeat_due:
            self._heartbeat_due = False
            self._write_heartbeat(self._area)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            self._finish(report)

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_handlecrashitem(self, report: pytest.TestReport) -> None:
        """A hypothesis whose xdist worker died is over: no teardown will say so (the
        controller's part, before this one, gave the report its record)."""
        self._finish(report)

    def _finish(self, report: pytest.TestReport) -> None:
        """The hypothesis of ``report`` has its record: its last bar ends, it is done."""
        record = getattr(report, RECORD_ATTRIBUTE, None)
        if record is None:
            return
        if self._controller and is_started(record):
            node = getattr(report, "node", None)
            lane = str(getattr(getattr(node, "gateway", None), "id", "worker"))
            self.watch.attempt_ended(report.nodeid, str(record["result"]), lane)
        elif is_cut_short(record):  # its attempt never ended: its bar ends at the stop
            self.watch.attempt_ended(report.nodeid, CUT_SHORT)
        self.watch.finished(report.nodeid)
        self.emit("hypothesis_finished", nodeid=report.nodeid, record=self.records.timed(record))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        self._start_display(session.config)
        try:
            return (yield)
        finally:
            self._stop_display()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._events is None:
            return
        if self._announced:
            records = self.records.records
            status = int(session.exitstatus)  # as a plugin's sessionfinish may have set it
            self.emit(
                "run_finished",
                exit_status=status,
                interrupted=status == pytest.ExitCode.INTERRUPTED,
                counts=verdict_counts(records),
                next_action=next_action(records),
            )
        self._events.close()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        cut_short = cut_short_lines(self.records.records)
        if cut_short:
            terminalreporter.write_sep("-", "hypotheses cut short: what they had printed")
            for line in cut_short:
                terminalreporter.write_line(line)

    # -- the display ---------------------------------------------------------------------------

    def _followed(self, nodeid: str) -> Optional[FollowedOutput]:
        """The output files of ``nodeid``'s script, written by a worker of this machine."""
        folder = session_folder(self._settings.falsification)
        if folder is None:
            return None
        worktree, hypothesis_id = located(self._rootpath, nodeid)
        return FollowedOutput(folder, hypothesis_id, worktree, self.watch.started_at)

    def _announce(self, nodeids: List[str]) -> None:
        if self._announced:
            return
        self._announced = True
        self.watch.expect(len(nodeids))
        engine = self._settings.falsification
        self.emit(
            "run_started",
            settings={
                setting.key: setting.value
                for setting in run_settings(engine, per_xdist_worker=self._controller)
            },
            hypotheses=nodeids,
        )

    def _start_display(self, config: pytest.Config) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        self._live = _live_wanted(self._settings.live, reporter, config)
        self._ends_lines = not self._live and reporter.showlongtestinfo
        ticking = self._live or bool(self._settings.heartbeat)
        if not ticking and not self._ends_lines:
            return
        writer = reporter._tw
        self._area = StatusArea(writer._file)
        writer._file = self._area
        if not ticking:
            return
        self._stop.clear()
        self._ticker = threading.Thread(
            target=self._tick, args=(writer,), name="hypotheses-status", daemon=True
        )
        self._ticker.start()

    def _stop_display(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
        if self._area is not None:
            self._area.clear()

    def _tick(self, writer: Any) -> None:
        """Refresh the status area, or write a heartbeat line when one is due."""
        area = self._area
        assert area is not None  # set before the thread starts
        interval = REFRESH_SECONDS if self._live else float(self._settings.heartbeat)
        while not self._stop.wait(interval):
            if not self._live:
                self._write_heartbeat(area)
                continue
            width = max(20, writer.fullwidth - 1)
            area.show(status_lines(self.watch.progress(), time.monotonic(), width))

    def _write_heartbeat(self, area: StatusArea) -> None:
        """Write the heartbeat line if anything runs; held (an item is being reported), note
        that it is due."""
        if not area.note(lambda: heartbeat_line(self.watch.progress(), time.monotonic())):
            self._heartbeat_due = True


class _EngineWatch(RunObserver):
    """The engine's side: each attempt as it starts and ends, on its slot."""

    def __init__(
        self,
        watcher: RunWatcher,
        nodeids: Dict[Tuple[str, str], str],
        repeats: int,
        timeout: float,
    ) -> None:
        self._watcher = watcher
        self._nodeids = nodeids
        self._repeats = repeats
        self._timeout = timeout

    def setup_started(
        self, run: HypothesisRun, *, slot: int, timeout: float, output: LiveOutput
    ) -> None:
        nodeid = self._nodeids.get(run.key, run.hypothesis.id)
        lane = f"slot {slot + 1}"
        running = Running(
            nodeid, run.hypothesis.id, lane, 1, 1, timeout, time.monotonic(), output, "setup"
        )
        self._watcher.watch.started(running)
        self._watcher.emit("setup_started", nodeid=nodeid, lane=lane)

    def setup_finished(self, run: HypothesisRun, *, slot: int) -> None:
        nodeid = self._nodeids.get(run.key, run.hypothesis.id)
        if self._watcher.watch.setup_ended(nodeid):
            self._watcher.emit("setup_finished", nodeid=nodeid, lane=f"slot {slot + 1}")

    def attempt_started(
        self, run: HypothesisRun, *, number: int, slot: int, output: LiveOutput
    ) -> None:
        nodeid = self._nodeids.get(run.key, run.hypothesis.id)
        timeout = run.timeout if run.timeout is not None else self._timeout
        lane = f"slot {slot + 1}"
        running = Running(
            nodeid,
            run.hypothesis.id,
            lane,
            number,
            self._repeats,
            timeout,
            time.monotonic(),
            output,
        )
        self._watcher.watch.started(running)
        kind = "hypothesis_started" if number == 1 else "attempt_started"
        self._watcher.emit(kind, nodeid=nodeid, lane=lane, attempt=number)

    def attempt_finished(
        self, run: HypothesisRun, *, number: int, slot: int, result: TestExecutionResult
    ) -> None:
        nodeid = self._nodeids.get(run.key, run.hypothesis.id)
        self._watcher.watch.attempt_ended(nodeid, result.result.value)
        self._watcher.emit(
            "attempt_finished",
            nodeid=nodeid,
            lane=f"slot {slot + 1}",
            attempt=number,
            result=result.result.value,
            exit_code=result.exit_code,
            duration=result.duration,
        )


def _live_wanted(mode: str, reporter: pytest.TerminalReporter, config: pytest.Config) -> bool:
    """``on``: always; ``auto``: on a terminal, unless quiet; ``off``: never."""
    if mode != "auto":
        return mode == "on"
    return bool(reporter.isatty()) and config.get_verbosity() >= 0


def _label(nodeid: str) -> str:
    return nodeid.rpartition("::")[2] or nodeid
