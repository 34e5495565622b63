"""The pytest-xdist controller under ``--hypotheses``: it briefs the workers, gathers their
reports into one summary and one JSON report, and stops what a crashed worker leaves behind.

A worker killed with SIGKILL runs no clean-up, and its scripts lead sessions of their own, so
nothing else would stop them. Every script of a worker carries a marker variable whose name
starts with that worker's prefix; when the worker goes down, the controller stops every
process of this machine that carries it, and at the end of the session every process that
carries the run's prefix. Processes on other machines (``--tx ssh=...``) are out of its reach.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Generator, Iterable, List, Optional, Sequence, Tuple

import pytest

from ..core.models import TestExecutionResult
from ..core.results import stopped_result
from ..engine.bridge import run_sync
from ..engine.tree import MARKER_PREFIX, Marker, ProcessTree
from ..finding.discovery import DiscoveryError, FoundHypothesis, discover
from ..plugin.collection import own_limits, report_header, worktrees_to_search
from ..plugin.itemless import report_skipped
from ..plugin.options import SETTINGS_KEY, HypothesesSettings
from ..plugin.outputfolder import session_folder
from ..plugin.records import HypothesisRecords
from ..plugin.runnerwarnings import RunnerWarnings
from ..report.records import RECORD_ATTRIBUTE, Record, record_of, result_fields
from ..report.wording import crash_text, located
from .crashes import CrashedScripts
from .sharding import ShardSelection
from .stopflag import StopFlag
from .wire import WIRE_KEY, worker_marker_prefix

#: The record keys that say who a hypothesis is and where it is, before any result.
_IDENTITY_KEYS = ("branch", "head", "script", "problem", "timeout", "hypothesis")


logger = logging.getLogger(__name__)


class DistributedRecords(HypothesisRecords):
    """The controller's records: those the workers reported, in collection order, completed
    with the hypotheses that never ran (with the reason, when a stop condition ended the run)
    and those whose worker crashed."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        self._rootpath = config.rootpath
        #: Every selected hypothesis by node id, in collection order, as not run yet.
        self._expected: Dict[str, Record] = {}
        #: The error of each hypothesis whose worker crashed.
        self._crashed: Dict[str, TestExecutionResult] = {}
        #: Why the run stopped early, when a result met the stop condition.
        self._stopped: Optional[str] = None
        self._config = config
        #: Who each hypothesis is, from a look at the worktrees: made for the limits told
        #: after collection, and when a worker never told (interrupted, or crashed first).
        self._found: Optional[Dict[Tuple[str, str], FoundHypothesis]] = None
        #: After an interruption: the cut-short result of a hypothesis a worker had started
        #: and never reported (None: it had not started).
        self._cut_short: Optional[Callable[[str], Optional[TestExecutionResult]]] = None

    @property
    def records(self) -> List[Record]:
        reported = {record["nodeid"]: record for record in super().records}
        for nodeid, result in self._crashed.items():
            reported.setdefault(nodeid, self._crash_record(nodeid, result))
        listed = [
            reported.pop(nodeid) if nodeid in reported else self._unreported(nodeid, record)
            for nodeid, record in self._expected.items()
        ]
        return [*listed, *reported.values()]

    def interrupted(self, cut_short: Callable[[str], Optional[TestExecutionResult]]) -> None:
        """The session was interrupted: a hypothesis a worker started and never reported gets
        what ``cut_short`` gives it."""
        self._cut_short = cut_short

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        for nodeid in ids:
            self._expected.setdefault(nodeid, self._unknown(nodeid))

    def learn(self, not_run: Iterable[Record]) -> None:
        """Take what a worker knows of the hypotheses it collected and did not run."""
        for record in not_run:
            if record["nodeid"] in self._expected:
                self._expected[record["nodeid"]] = record

    def stopped(self, reason: str) -> None:
        """A worker's result met the stop condition: what never ran was not started."""
        self._stopped = self._stopped or reason

    @property
    def stop_reason(self) -> Optional[str]:
        """Why a worker stopped the run (``--hypotheses-stop-on``), once one has said so."""
        return self._stopped

    def crashed(self, nodeid: str, result: TestExecutionResult) -> Record:
        """The worker running ``nodeid`` died: the hypothesis has an error, not a verdict;
        its record as known now."""
        self._crashed[nodeid] = result
        return self._crash_record(nodeid, result)

    def _crash_record(self, nodeid: str, result: TestExecutionResult) -> Record:
        known = self._identified(self._expected.get(nodeid) or self._unknown(nodeid))
        return _with_result(known, result)

    def unreported(self) -> List[Tuple[Record, TestExecutionResult]]:
        """Each hypothesis no worker reported nor crashed on that has a result all the same
        (see :meth:`_unreported_result`), with its record."""
        reported = {record["nodeid"] for record in super().records} | set(self._crashed)
        found = []
        for nodeid, record in self._expected.items():
            result = None if nodeid in reported else self._unreported_result(nodeid, record)
            if result is not None:
                found.append((_with_result(self._identified(record), result), result))
        return found

    def _unreported(self, nodeid: str, record: Record) -> Record:
        """A hypothesis no worker reported, with its result if it has one, else pending."""
        result = self._unreported_result(nodeid, record)
        record = self._identified(record)
        return record if result is None else _with_result(record, result)

    def _unreported_result(self, nodeid: str, record: Record) -> Optional[TestExecutionResult]:
        """Cut short by an interruption; else, once the run stopped on a verdict, the stopped
        result that says why it never started; else none: it has not run yet."""
        result = None if self._cut_short is None else self._cut_short(nodeid)
        if result is None and self._stopped is not None:
            result = stopped_result(
                record["hypothesis_id"], record["worktree_path"], self._stopped, started=False
            )
        return result

    def _identified(self, record: Record) -> Record:
        """A record known from its node id alone, completed by a look at its worktree."""
        if record["script"] is not None:
            return record
        found = self._discovered().get((record["worktree_path"], record["hypothesis_id"]))
        return record if found is None else record_of(record["nodeid"], found, None)

    def selected(self) -> List[FoundHypothesis]:
        """The hypotheses the workers collected, as a look at their worktrees finds them."""
        found = self._discovered()
        places = (located(self._rootpath, nodeid) for nodeid in self._expected)
        return [found[place] for place in places if place in found]

    def own_timeout(self, nodeid: str) -> Optional[float]:
        """The timeout the hypothesis's metadata sets, from a look at its worktree; None for
        the run's, or when the look fails (the live status is a courtesy)."""
        try:
            found = self._discovered().get(located(self._rootpath, nodeid))
        except OSError:
            return None
        return None if found is None else found.timeout

    def _discovered(self) -> Dict[Tuple[str, str], FoundHypothesis]:
        if self._found is None:
            settings = self._config.stash.get(SETTINGS_KEY, None)
            try:
                found = [] if settings is None else discover(settings.directory)
            except DiscoveryError:
                found = []  # gone since collection: the node ids are all there is
            self._found = {(str(f.worktree), f.hypothesis_id): f for f in found}
        return self._found

    def _unknown(self, nodeid: str) -> Record:
        """What the node id alone says, until a worker tells more."""
        worktree, hypothesis_id = located(self._rootpath, nodeid)
        record: Record = {
            "nodeid": nodeid,
            "hypothesis_id": hypothesis_id,
            "worktree_path": worktree,
            **dict.fromkeys(_IDENTITY_KEYS),
        }
        for name, value in result_fields(None).items():
            record.setdefault(name, value)
        return record


def _with_result(known: Record, result: TestExecutionResult) -> Record:
    """``known`` with every field of ``result``, made here rather than by a worker: its
    polarity stays the hypothesis's own, which such a result does not know."""
    return {**known, **result_fields(result), "polarity": known.get("polarity")}


class XdistController:
    """The plugin part of the xdist controller: briefs each worker, stops the scripts of
    workers that died and gives their hypotheses what they had printed."""

    def __init__(
        self,
        settings: HypothesesSettings,
        records: DistributedRecords,
        shard: Optional[ShardSelection],
        rootpath: Path,
        warnings: RunnerWarnings,
    ) -> None:
        self._settings = settings
        self._records = records
        self._warnings = warnings
        self._shard = shard
        self._run_prefix = f"{MARKER_PREFIX}{uuid.uuid4().hex[:12]}_"
        #: The run-wide slots and the stop shared by the workers of this machine.
        self._shared_folder = Path(tempfile.mkdtemp(prefix="pytest-hypotheses-shared-"))
        self._rootpath = rootpath
        self._reporter: Optional[pytest.TerminalReporter] = None
        self._limits_told = False

    @functools.cached_property
    def _output_folder(self) -> Optional[Path]:
        """Where every worker writes its scripts' output, read back when one dies; made when
        first needed, in pytest's temporary folder of the session once pytest has one."""
        return session_folder(self._settings.falsification)

    @functools.cached_property
    def _crashes(self) -> CrashedScripts:
        return CrashedScripts(
            self._rootpath, self._output_folder, self._settings.falsification.max_output_bytes
        )

    def pytest_report_header(self) -> str:
        return report_header(self._settings, per_xdist_worker=True)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Refuse a folder that cannot be searched before any worker starts, as a plain
        usage error (a worker's would end the session in an internal error); only when every
        worker runs here, since a remote worker may have a folder this machine has not."""
        if all(_is_local(spec) for spec in session.config.getoption("tx")):
            worktrees_to_search(self._settings)
            # a remote worker's folder may not be this machine's: its limits go untold
            self._reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def pytest_unconfigure(self) -> None:
        shutil.rmtree(self._shared_folder, ignore_errors=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Brief a worker: its scripts' marker, the folder of the run-wide limit's slots and
        of the stop, the session's output folder, and who the controller is (a worker it
        started watches it)."""
        node.workerinput[WIRE_KEY] = {
            "marker_prefix": self._run_prefix,
            "shared_folder": str(self._shared_folder),
            "output_folder": None if self._output_folder is None else str(self._output_folder),
            "host": socket.gethostname(),
            "controller_pid": os.getpid(),
        }

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """A worker started the item: its script runs from now. The first tells the limits
        the hypotheses' metadata set, as a run without xdist does after its collection."""
        self._crashes.started(nodeid)
        if not self._limits_told:
            self._limits_told = True
            self._tell_own_limits()

    def _tell_own_limits(self) -> None:
        """The controller collects nothing: the workers' collection is complete once one
        starts an item, and a look at the worktrees finds the metadata of what they chose."""
        if self._reporter is None:
            return
        try:
            selected = self._records.selected()
        except OSError as error:  # the lines are a courtesy: never an internal error
            logger.warning("cannot tell the hypotheses' own limits: %s", error)
            return
        for line in own_limits(selected, self._settings):
            self._reporter.write_line(line)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Optional[object]) -> None:
        """A worker ended: stop its scripts if it died; learn what it collected and left."""
        if error is not None:
            self._crashes.worker_down(_worker_id(node))
            self._stop(worker_marker_prefix(self._run_prefix, _worker_id(node)))
        told = getattr(node, "workeroutput", {}).get(WIRE_KEY)
        if told is None:
            return
        self._records.learn(told["not_run"])
        self._warnings.take(told["warnings"])
        if told["stopped"] is not None:
            self._records.stopped(told["stopped"])
        if self._shard is not None and self._shard.description is None:
            self._shard.describe(told["shard"])

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport) -> None:
        """Report the hypothesis as an error (xdist's own report says "failed"), with how
        long its script ran and what it printed, in the records and the error text."""
        report.when = "setup"
        message = f"{report.longrepr}; the scripts it had started were stopped"
        node = vars(report)["node"]  # xdist's handle of the dead worker
        result = self._crashes.result(crashitem, _worker_id(node), message)
        # the record makes the report speak of a verdict, and tells the watcher it is over
        setattr(report, RECORD_ATTRIBUTE, self._records.crashed(crashitem, result))
        report.longrepr = crash_text(result)
        report.duration = result.duration

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """xdist ends its loop with an interruption when a worker stops the run, as if the
        user had pressed Ctrl-C. A stop condition that was met ends the run as it does
        without xdist instead: not interrupted, exit 1 or 0, the reason said once, and each
        hypothesis it kept from starting reported as skipped."""
        try:
            return (yield)
        except KeyboardInterrupt as interruption:
            reason = self._records.stop_reason
            if reason is None or str(interruption) != reason:
                raise  # a Ctrl-C, or xdist's own stop (-x)
            session.shouldstop = reason
            for record, result in self._records.unreported():
                report_skipped(session.config, record, result)
            return True

    def pytest_keyboard_interrupt(self) -> None:
        """Ctrl-C (or SIGTERM): xdist shuts the workers down before they report the scripts
        they were running; those keep what they had printed, read from their files. The
        workers of this machine stop their scripts at once, as the engine does without xdist:
        a signal sent to the controller alone (a CI cancel) does not reach them, and xdist's
        shutdown takes seconds."""
        reason = "the run was interrupted"
        self._crashes.interrupted()
        self._records.interrupted(lambda nodeid: self._crashes.cut_short(nodeid, reason))
        with contextlib.suppress(OSError):  # a full disk: xdist's shutdown still stops them
            StopFlag(self._shared_folder).set(reason)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """Stop whatever any worker left, once xdist has shut them all down."""
        self._stop(self._run_prefix)

    def _stop(self, prefix: str) -> None:
        tree = ProcessTree(Marker(prefix, prefix=True))
        grace = self._settings.falsification.kill_grace
        run_sync(lambda: tree.stop(grace))


def _worker_id(node: Any) -> str:
    """The id of the worker behind xdist's handle ``node`` (``gw0``)."""
    return str(node.gateway.id)


def _is_local(spec: str) -> bool:
    """Whether an xdist ``--tx`` spec (``popen``, ``2*popen//python=...``, ``ssh=host``)
    starts its workers on this machine."""
    return spec.split("*", 1)[-1].startswith("popen")
