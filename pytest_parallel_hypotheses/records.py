"""One record per hypothesis, carried by its test reports and gathered from them.

The terminal summary and the JSON report are built from what pytest reported, not from the
items, because reports are what travel from one process to another (pytest-xdist). Each
report of a judged item carries the record as its ``hypotheses_record`` attribute, a plain
JSON-ready dictionary.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Generator, List, Optional

import pytest

from .classification import HypothesisStatus
from .explain import verdict_colour, verdict_word
from .items import HypothesisItem
from .models import TestExecutionResult

#: The report attribute that holds a hypothesis's record.
RECORD_ATTRIBUTE = "hypotheses_record"

Record = Dict[str, Any]


def record_for(item: HypothesisItem) -> Record:
    """Who the hypothesis is, where it ran, and every field of its result (None if not run)."""
    found = item.found
    record: Record = {
        "nodeid": item.nodeid,
        "hypothesis_id": found.hypothesis_id,
        "worktree_path": str(found.worktree),
        "branch": found.branch,
        "head": found.head,
        "script": str(found.script),
        "problem": found.problem,
        "timeout": found.timeout,
        "hypothesis": None if found.hypothesis is None else found.hypothesis.to_dict(),
    }
    for name, value in result_fields(item.result).items():
        record.setdefault(name, value)  # the id and worktree are the item's even if not run
    return record


def result_fields(result: Optional[TestExecutionResult]) -> Record:
    """Every field of ``result`` and its confidence; all None and pending when not run."""
    if result is not None:
        return {**result.to_dict(), "confidence": result.confidence}
    fields: Record = {field.name: None for field in dataclasses.fields(TestExecutionResult)}
    fields.update(
        status=HypothesisStatus.PENDING.value, confidence=None, flaky=None, outcome_counts=None
    )
    return fields


class HypothesisRecords:
    """The plugin part that attaches records to reports and gathers them, in item order."""

    def __init__(self) -> None:
        self._selected: List[HypothesisItem] = []
        self._reported: Dict[str, Record] = {}

    @property
    def records(self) -> List[Record]:
        """Every selected hypothesis in collection order, those that never ran as pending,
        then any reported hypothesis that was not collected here."""
        selected = [self._reported.get(item.nodeid) or record_for(item) for item in self._selected]
        known = {item.nodeid for item in self._selected}
        others = [record for nodeid, record in self._reported.items() if nodeid not in known]
        return [*selected, *others]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._selected = [item for item in session.items if isinstance(item, HypothesisItem)]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, HypothesisItem) and item.result is not None:
            setattr(report, RECORD_ATTRIBUTE, record_for(item))
            if call.when == "call" or report.failed:
                report.duration = item.result.duration
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, RECORD_ATTRIBUTE, None)
        if record is not None and report.when == "teardown":
            self._reported[report.nodeid] = record

    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> Optional[tuple[str, str, tuple[str, Dict[str, bool]]]]:
        """Verbose progress says the verdict: FALSIFIED, SUPPORTED or INCONCLUSIVE."""
        record = getattr(report, RECORD_ATTRIBUTE, None)
        deciding = report.when == "call" or (report.when == "setup" and report.failed)
        if record is None or not deciding:
            return None
        status = HypothesisStatus(record["status"])
        category = "error" if report.when != "call" else report.outcome
        letter = {"passed": ".", "failed": "F", "skipped": "s", "error": "E"}[category]
        return category, letter, (verdict_word(status), {verdict_colour(status): True})
