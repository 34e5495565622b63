"""The pytest plugin entry point (registered through the ``pytest11`` entry point).

It declares the options and hooks; with ``--hypotheses`` it registers the parts of a
hypotheses run, each a plugin object of its own: collection, run loop, records, terminal
summary and, when asked for, the JSON report.
"""

from __future__ import annotations

import pytest

from . import newhooks, settings, verdicts
from .collection import HypothesisCollection
from .jsonreport import JsonReport
from .records import HypothesisRecords
from .runloop import HypothesisRunLoop
from .summary import TerminalSummary

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
    records = HypothesisRecords()
    parts = {
        "defaults": verdicts,
        "collection": HypothesisCollection(resolved),
        "runloop": HypothesisRunLoop(resolved.falsification),
        "records": records,
        "summary": TerminalSummary(records),
    }
    if resolved.report_path is not None:
        parts["jsonreport"] = JsonReport(resolved.report_path, resolved, records)
    for name, part in parts.items():
        config.pluginmanager.register(part, f"{PLUGIN_PREFIX}-{name}")
