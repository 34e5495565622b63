"""The reports of a hypothesis that has a result but no item left to report it.

Under pytest-xdist, a stop condition ends the run by shutting the workers down, and the
hypotheses they had not started are never reported: they would be missing from the summary
and the JUnit file, where a run without xdist reports each as skipped. The controller reports
them itself, as the item would have: a passed setup, a skipped call, a passed teardown.
"""

from __future__ import annotations

import os
from typing import List, Literal, Optional, Tuple

import pytest

from ..core.models import TestExecutionResult
from ..report.records import RECORD_ATTRIBUTE, Record
from ..report.wording import headline, record_polarity
from .items import result_properties

_When = Literal["setup", "call", "teardown"]
_Outcome = Literal["passed", "skipped"]


def report_skipped(config: pytest.Config, record: Record, result: TestExecutionResult) -> None:
    """Report the hypothesis of ``record`` as skipped with ``result``'s story, so that every
    reporter sees an ordinary skipped test. Not through ``pytest_runtest_logstart``: under
    xdist that hook says a worker started the item, and its script with it."""
    nodeid = record["nodeid"]
    script = record["script"] or nodeid
    # where an item's report is: its script, from the rootdir (see HypothesisItem.reportinfo)
    place = os.path.relpath(script, config.rootpath) if record["script"] else nodeid
    location = (place, 0, f"hypothesis {record['hypothesis_id']}")
    properties = result_properties(result, record_polarity(record))
    phases: List[Tuple[_When, _Outcome, Optional[Tuple[str, int, str]]]] = [
        ("setup", "passed", None),
        ("call", "skipped", (script, 1, f"Skipped: {headline(result)}")),
        ("teardown", "passed", None),
    ]
    for when, outcome, longrepr in phases:
        report = pytest.TestReport(
            nodeid, location, {}, outcome, longrepr, when, user_properties=properties
        )
        setattr(report, RECORD_ATTRIBUTE, record)
        config.hook.pytest_runtest_logreport(report=report)
    config.hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
