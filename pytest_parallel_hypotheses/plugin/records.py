"""The plugin part that puts each hypothesis's record on its test reports and gathers them.

Records are gathered from reports, not from items, because reports are what travel from one
process to another (pytest-xdist).
"""

from __future__ import annotations

from typing import Dict, Generator, List, Optional

import pytest

from ..core.classification import HypothesisStatus, Polarity
from ..core.models import TestExecutionResult
from ..report.records import RECORD_ATTRIBUTE, Record
from ..report.wording import failure_text, record_verdict_word, verdict_colour, what_happened
from .items import HypothesisItem
from .junit import set_classname

#: The progress letter of each outcome pytest itself knows.
_LETTERS = {"passed": ".", "failed": "F", "skipped": "s", "error": "E"}


class HypothesisRecords:
    """The plugin part that attaches records to reports and gathers them, in item order."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._selected: List[HypothesisItem] = []
        self._reported: Dict[str, Record] = {}

    @property
    def records(self) -> List[Record]:
        """Every selected hypothesis in collection order, those that never ran as pending,
        then any reported hypothesis that was not collected here."""
        selected = [self._reported.get(item.nodeid) or item.record() for item in self._selected]
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
            setattr(report, RECORD_ATTRIBUTE, item.record())
            if call.when == "call" or report.failed:  # the phase that tells the verdict
                report.duration = item.result.duration
            elif call.when == "setup" and item.ran_during_setup:  # told in the call's
                report.duration = max(0.0, report.duration - item.result.duration)
            if _failed_on_its_verdict(call, item):
                _say_what_happened(report, item.result)
        return report

    @pytest.hookimpl(tryfirst=True)  # before JUnit XML records the test case
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, RECORD_ATTRIBUTE, None)
        if record is None:
            return
        if report.when == "setup":
            set_classname(self._config, report)
        if report.when == "teardown":
            self._reported[report.nodeid] = record

    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> Optional[tuple[str, str, tuple[str, Dict[str, bool]]]]:
        """Verbose progress says the verdict: FALSIFIED, SUPPORTED or INCONCLUSIVE (CUT SHORT
        for a script a stop cut short), as the summary does."""
        record = getattr(report, RECORD_ATTRIBUTE, None)
        deciding = report.when == "call" or (report.when == "setup" and report.failed)
        if record is None or not deciding or hasattr(report, "wasxfail"):
            return None  # an xfail's outcome is pytest's to name: xfailed, xpassed
        status = HypothesisStatus(record["status"])
        colour = verdict_colour(status, Polarity(record["polarity"]))
        category = "error" if report.when != "call" else report.outcome
        letter = _LETTERS.get(category)
        if letter is None:  # another plugin's outcome, such as pytest-rerunfailures' "rerun"
            return None
        return category, letter, (record_verdict_word(record), {colour: True})


def _failed_on_its_verdict(call: pytest.CallInfo[None], item: HypothesisItem) -> bool:
    """True when the item failed itself, with its result's story: not another plugin's
    ``pytest.fail`` (a leak checker's at teardown, say), whose message stays its own."""
    excinfo, result = call.excinfo, item.result
    if excinfo is None or result is None or not excinfo.errisinstance(pytest.fail.Exception):
        return False
    return str(excinfo.value) == failure_text(item.found, result)


def _say_what_happened(report: pytest.TestReport, result: TestExecutionResult) -> None:
    """The failure's one-line message (the short summary's, the JUnit ``message``) says what
    the script did: the summary line starts with the verdict already, and ``Failed:
    hypothesis h is SUPPORTED`` said it twice."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        crash.message = what_happened(result)
