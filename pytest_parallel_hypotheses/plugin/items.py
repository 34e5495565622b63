"""The collection nodes: one root collector, and one item per hypothesis script.

An item does not run its script: the run loop runs every script at once and hands each item
its result as it arrives (under pytest-xdist, a worker runs each item's script just before
the item's setup). The item then maps that result onto pytest's outcomes, so reports,
``-x``, JUnit XML and other plugins see an ordinary test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import pluggy
import pytest

from ..core.classification import Polarity, TestResult
from ..core.models import TestExecutionResult
from ..engine.runs import HypothesisRun, SetupSteps
from ..finding.discovery import FoundHypothesis
from ..report.records import Record, record_of
from ..report.wording import ONE_RUN_NOTE, failure_text, headline, is_undecided, worktree_label
from .durations import recorded_cpus, recorded_durations
from .judging import hook_failed_result, judge
from .output import attach_failed_setup_output, attach_passing_output

#: The ``user_properties`` each item records (JUnit XML shows them as testcase properties).
PROPERTY_NAMES = ("verdict", "result", "confidence", "polarity")
#: The properties added when the worktree had a setup step: its command and what it did.
SETUP_PROPERTY_NAMES = ("setup", "setup_outcome")
#: The properties added when the script ran more than once: how its attempts went.
REPEAT_PROPERTY_NAMES = ("attempts", "passes", "fails", "flaky")
#: The properties of the evidence about the pass rate, when there is some.
EVIDENCE_PROPERTY_NAMES = ("runs", "pass_rate_low", "pass_rate_high", "alpha", "decision")


class HypothesesRoot(pytest.Collector):
    """Every hypothesis found, as one collector under the session.

    The items hang directly below it, not below a collector per worktree: results arrive in
    any order, and pytest's setup stack only accepts a next item whose collectors are already
    set up. Node ids still name the worktree: ``<worktree from the rootdir>::<id>``.
    """

    NAME = "hypotheses"

    def __init__(self, *, found: Iterable[FoundHypothesis], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._found = list(found)

    @property
    def ihook(self) -> pluggy.HookRelay:
        """Every loaded conftest applies: the worktrees are often outside the rootdir, and
        the project's conftest.py should still see its hypotheses."""
        return self.config.hook

    @classmethod
    def for_session(
        cls, session: pytest.Session, found: Iterable[FoundHypothesis]
    ) -> HypothesesRoot:
        root: HypothesesRoot = cls.from_parent(session, name=cls.NAME, nodeid=cls.NAME, found=found)
        return root

    def collect(self) -> List[pytest.Item]:
        rootpath = self.config.rootpath
        items: List[pytest.Item] = [
            HypothesisItem.from_parent(
                self,
                name=found.hypothesis_id,
                nodeid=node_id(rootpath, found),
                found=found,
            )
            for found in self._found
        ]
        if _pytest_timeout_loaded(self.config):
            no_timeout = pytest.mark.timeout(0)  # pytest-timeout's "no timeout"
            for item in items:
                item.add_marker(no_timeout)
        return items


def node_id(rootpath: Path, found: FoundHypothesis) -> str:
    """A hypothesis's node id: ``<worktree from the rootdir>::<id>``."""
    return f"{worktree_label(rootpath, found.worktree)}::{found.hypothesis_id}"


#: The setup steps of the selected hypotheses, by worktree, once the selection is final.
_SELECTED_STEPS = pytest.StashKey[Dict[Path, SetupSteps]]()


def selected_steps(session: pytest.Session) -> Dict[Path, SetupSteps]:
    """The setup step each selected hypothesis of each worktree has, by the worktree: its
    metadata's, or None for the run-wide one, with its timeout. Each worktree's scripts wait
    for all of them, wherever each hypothesis runs (a pytest-xdist worker knows only the one
    it runs); a hypothesis left out by ``-k`` runs nothing, its step included. Read once
    items run, when ``session.items`` holds the selection."""
    if _SELECTED_STEPS not in session.stash:
        steps: Dict[Path, Dict[Tuple[Optional[str], Optional[float]], None]] = {}
        for item in session.items:
            if isinstance(item, HypothesisItem):
                found = item.found
                steps.setdefault(found.worktree, {})[found.setup, found.setup_timeout] = None
        session.stash[_SELECTED_STEPS] = {w: tuple(declared) for w, declared in steps.items()}
    return session.stash[_SELECTED_STEPS]


class HypothesisItem(pytest.Item):
    """One hypothesis script, reported as a test once the run loop gives it its result."""

    def __init__(self, *, found: FoundHypothesis, **kwargs: Any) -> None:
        super().__init__(path=found.script, **kwargs)
        self.found = found
        label = worktree_label(self.config.rootpath, found.worktree)
        self.extra_keyword_matches.update(name for name in (label, found.branch) if name)
        self._raw_result: Optional[TestExecutionResult] = None
        #: True when the script ran inside the item's setup phase (under xdist).
        self.ran_during_setup = False
        #: The result after the classification and confidence hooks.
        self.result: Optional[TestExecutionResult] = None
        #: The record of the result it was made from: the reports of every phase carry it.
        self._record: Optional[Tuple[Optional[TestExecutionResult], Record]] = None

    @property
    def ihook(self) -> pluggy.HookRelay:
        """Every loaded conftest applies, wherever the worktree is (see HypothesesRoot)."""
        return self.config.hook

    def deliver(self, result: TestExecutionResult, *, during_setup: bool = False) -> None:
        """Hand the item the engine's result of its script, before the item is reported, or
        ``during_setup`` (an xdist worker runs the script there, so that phase took its time)."""
        self._raw_result = result
        self.ran_during_setup = during_setup

    def keep_cut_short(self, result: TestExecutionResult) -> None:
        """Keep the result of a script an interruption cut short: the item is never reported,
        but its record keeps what the script printed."""
        self._raw_result = self.result = result

    @property
    def delivered(self) -> bool:
        """True once the item has the engine's result."""
        return self._raw_result is not None

    def record(self) -> Record:
        """The item's record: who the hypothesis is and, once judged, its result (made once
        per result; treat it as read-only)."""
        if self._record is None or self._record[0] is not self.result:
            self._record = (self.result, record_of(self.nodeid, self.found, self.result))
        return self._record[1]

    @property
    def key(self) -> Tuple[str, str]:
        """How the engine's results name this hypothesis: (worktree path, id)."""
        return (str(self.found.worktree), self.found.hypothesis_id)

    @property
    def run(self) -> Optional[HypothesisRun]:
        """What the engine should run, or None when the hypothesis cannot be run."""
        found = self.found
        if found.problem is not None or found.hypothesis is None:
            return None
        expected = recorded_durations(self.config).get(self.nodeid)
        return HypothesisRun(
            found.hypothesis,
            found.worktree,
            found.timeout,
            expected,
            setup=found.setup,
            setup_timeout=found.setup_timeout,
            polarity=found.polarity,
            memory_limit=found.memory,
            worktree_steps=selected_steps(self.session).get(found.worktree, ()),
            expected_cpus=recorded_cpus(self.config).get(self.nodeid),
        )

    def setup(self) -> None:
        """Judge the result; a script that could not run (ERROR) is reported as an error."""
        if self._raw_result is None:
            pytest.fail(
                f"hypothesis {self.found.hypothesis_id} was not run: hypothesis items are "
                "run by the --hypotheses run loop",
                pytrace=False,
            )
        try:
            self.result = judge(self, self._raw_result)
        except Exception as error:  # reported by pytest, naming the hook; the script did run
            self.result = hook_failed_result(self._raw_result, error)
            self._record_properties(self.result)
            raise
        self._record_properties(self.result)
        if self.result.result is TestResult.ERROR:
            attach_failed_setup_output(self, self.result)
            pytest.fail(failure_text(self.found, self.result), pytrace=False)

    def runtest(self) -> None:
        """FALSIFIED passes, SKIP skips; FAIL, TIMEOUT, flaky or undecided attempts fail
        with the script's story."""
        result = self.result
        assert result is not None  # setup judged it or failed
        if result.result is TestResult.SKIP:  # reported at the script, not at this line
            raise pytest.skip.Exception(headline(result), _use_item_location=True)
        if not fails_its_item(result):
            attach_passing_output(self, result)
            return
        pytest.fail(failure_text(self.found, result), pytrace=False)

    def reportinfo(self) -> Tuple[Path, int, str]:
        """The script, from its first line (pytest counts lines from 0 here)."""
        return self.found.script, 0, f"hypothesis {self.found.hypothesis_id}"

    def _record_properties(self, result: TestExecutionResult) -> None:
        self.user_properties.extend(result_properties(result, self.found.polarity))


def result_properties(result: TestExecutionResult, polarity: Polarity) -> List[Tuple[str, str]]:
    """The JUnit properties of a hypothesis's result: its verdict and confidence, its setup
    step, its attempts and the evidence they give."""
    assert result.status is not None  # set when the result is built
    values = (result.status.value, result.result.value, repr(result.confidence), polarity.value)
    properties = list(zip(PROPERTY_NAMES, values))
    if result.setup is not None:
        setup = (result.setup["command"], result.setup["outcome"])
        properties.extend(zip(SETUP_PROPERTY_NAMES, setup))
    if len(result.attempts) > 1:
        counts = result.outcome_counts
        repeats = (len(result.attempts), counts["pass"], counts["fail"], result.flaky)
        properties.extend(zip(REPEAT_PROPERTY_NAMES, map(str, repeats)))
    properties.extend(_evidence_properties(result))
    return properties


def _pytest_timeout_loaded(config: pytest.Config) -> bool:
    """True when pytest-timeout is loaded. The script's own deadline governs a hypothesis
    item: pytest-timeout's (often a project's ini ``timeout``) would end an xdist worker's
    item while its script runs, and the hypothesis would never be judged."""
    return any(config.pluginmanager.has_plugin(name) for name in ("timeout", "pytest_timeout"))


def fails_its_item(result: TestExecutionResult) -> bool:
    """True when the item of ``result`` fails (at setup for a script that could not run):
    anything but a clear pass or a skip. What pytest's ``-x`` and ``--maxfail`` count."""
    if result.result is TestResult.SKIP:
        return False
    return result.result is not TestResult.PASS or result.flaky or is_undecided(result)


def _evidence_properties(result: TestExecutionResult) -> List[Tuple[str, str]]:
    """The evidence about the pass rate (or that one run has none), and the date of the
    original run when the verdict was reused."""
    properties = []
    if result.evidence is None:
        properties.append(("evidence", ONE_RUN_NOTE))
    else:
        evidence = result.evidence.to_dict()
        low, high = evidence["interval"]
        values = (evidence["runs"], low, high, evidence["alpha"], evidence["decision"])
        properties.extend(zip(EVIDENCE_PROPERTY_NAMES, map(str, values)))
    if result.cached_at is not None:
        properties.append(("cached", result.cached_at))
    return properties
