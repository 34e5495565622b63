"""The pytest plugin entry point (registered through the ``pytest11`` entry point).

It declares the options and hooks; with ``--hypotheses`` it registers the parts of a
hypotheses run, each a plugin object of its own: collection, run loop, records, terminal
summary and, when asked for, the JSON report.
"""

from __future__ import annotations

from typing import Dict

import pytest

from . import newhooks, settings, verdicts
from .collection import HypothesisCollection
from .distribution import Role, role_of
from .durations import DurationRecorder
from .jsonreport import JsonReport
from .records import HypothesisRecords
from .runloop import HypothesisRunLoop
from .sharding import ShardSelection
from .summary import TerminalSummary
from .xdist_controller import DistributedRecords, XdistController
from .xdist_worker import XdistWorkerRun

#: Name prefix of the plugin objects registered for a hypotheses run.
PLUGIN_PREFIX = "hypotheses"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(newhooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    resolved = settings.resolve(config)
    if resolved is None:
        return
    for name, part in _parts(config, resolved).items():
        config.pluginmanager.register(part, f"{PLUGIN_PREFIX}-{name}")


def _parts(config: pytest.Config, resolved: settings.HypothesesSettings) -> Dict[str, object]:
    """Alone, every part; under pytest-xdist, the workers collect and run, and the controller
    gathers their reports (see ``distribution``)."""
    role = role_of(config)
    shard = None if resolved.shard is None else ShardSelection(resolved.shard)
    parts: Dict[str, object] = {"defaults": verdicts}
    records: HypothesisRecords
    if role is Role.CONTROLLER:
        records = DistributedRecords(config.rootpath)
        parts["xdist-controller"] = XdistController(resolved, records, shard)
    else:
        records = HypothesisRecords()
        parts["collection"] = HypothesisCollection(resolved)
        parts["runloop"] = (
            XdistWorkerRun(config, resolved.falsification, shard)
            if role is Role.WORKER
            else HypothesisRunLoop(resolved.falsification)
        )
    if shard is not None:
        parts["shard"] = shard
    parts["records"] = records
    parts["durations"] = DurationRecorder(records)
    if role is not Role.WORKER:  # a worker's reports go to the controller, which sums up
        parts["summary"] = TerminalSummary(records)
        if resolved.report_path is not None:
            parts["jsonreport"] = JsonReport(resolved.report_path, resolved, records, shard)
    return parts
