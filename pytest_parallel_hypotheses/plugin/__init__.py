"""The pytest plugin entry point (registered through the ``pytest11`` entry point).

It declares the hooks and options; with ``--hypotheses`` it registers the parts of a hypotheses
run, each a plugin object of its own: collection, run loop, records, durations, the terminal
summary and, when asked for, the JSON report. Under pytest-xdist the distributed plugin
(:mod:`pytest_parallel_hypotheses.distributed.plugin`) adds the controller's and the workers'
parts.
"""

from __future__ import annotations

from typing import Dict, Optional

import pytest

from ..report.html import HtmlReport
from ..report.jsonreport import JsonReport
from ..report.records import RecordSource
from ..report.terminal import TerminalSummary
from . import hooks, judging, options
from .collection import HypothesisCollection
from .durations import DurationRecorder
from .options import SETTINGS_KEY, HypothesesSettings
from .outputfolder import TemporaryOutput
from .records import HypothesisRecords
from .reuse import VerdictReuse, clear_if_asked
from .roles import Role, role_of
from .runloop import HypothesisRunLoop
from .runnerwarnings import RunnerWarnings
from .session import StopSignals
from .watching import OwnTimeout, RunWatcher

#: Name prefix of the plugin objects registered for a hypotheses run.
PLUGIN_PREFIX = "hypotheses"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    settings = options.resolve(config)
    if settings is None:
        return
    config.stash[SETTINGS_KEY] = settings
    if role_of(config) is not Role.WORKER:
        clear_if_asked(config, settings)
    register_parts(config, _parts(config, settings))


def register_parts(config: pytest.Config, parts: Dict[str, object]) -> None:
    """Register each part of a hypotheses run under a name of its own."""
    for name, part in parts.items():
        config.pluginmanager.register(part, f"{PLUGIN_PREFIX}-{name}")


def reporting_parts(
    settings: HypothesesSettings,
    records: RecordSource,
    runner_warnings: Optional[RunnerWarnings] = None,
    per_xdist_worker: bool = False,
    own_timeout: Optional[OwnTimeout] = None,
) -> Dict[str, object]:
    """Where the records end up: the terminal summary (with ``runner_warnings``), the JSON
    and HTML reports and the watcher of the run (live status, heartbeat, events), in the
    process that sums up the run (alone, or the xdist controller: ``per_xdist_worker``, which
    learns a hypothesis's ``own_timeout`` by node id as its worker starts it)."""
    watcher = RunWatcher(settings, records, own_timeout)
    summary = TerminalSummary(
        records, tuple if runner_warnings is None else runner_warnings.messages
    )
    parts: Dict[str, object] = {"summary": summary, "watch": watcher}
    if settings.report_path is not None:
        parts["jsonreport"] = JsonReport(
            settings.report_path,
            settings.directory,
            settings.falsification,
            watcher.records,
            per_xdist_worker=per_xdist_worker,
        )
    if settings.html_path is not None:
        parts["htmlreport"] = HtmlReport(
            settings.html_path,
            settings.directory,
            settings.falsification,
            watcher.records,
            per_xdist_worker=per_xdist_worker,
        )
    return parts


def _parts(config: pytest.Config, settings: HypothesesSettings) -> Dict[str, object]:
    """Alone, every part; an xdist worker collects, judges and records (the distributed plugin
    runs its scripts); the controller only takes SIGTERM and SIGHUP here and gets the rest there."""
    role = role_of(config)
    parts: Dict[str, object] = {
        "defaults": judging,
        "stopsignals": StopSignals(),
        "temporaryoutput": TemporaryOutput(config),
    }
    if role is Role.CONTROLLER:
        return parts
    records = HypothesisRecords(config)
    parts["collection"] = HypothesisCollection(settings)
    parts["records"] = records
    parts["durations"] = DurationRecorder(records)
    if role is Role.ALONE:
        runner_warnings = RunnerWarnings()
        parts["runnerwarnings"] = runner_warnings
        reporting = reporting_parts(settings, records, runner_warnings)
        watcher = reporting["watch"]
        assert isinstance(watcher, RunWatcher)  # made just above
        parts["runloop"] = HypothesisRunLoop(
            settings.falsification, VerdictReuse(settings), watcher
        )
        parts.update(reporting)
    return parts
