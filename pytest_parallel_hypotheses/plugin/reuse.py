"""The verdict cache in a session (``--hypotheses-reuse``): reuse a decided verdict whose inputs
have not changed, store each new one, and empty the store on ``--cache-clear``.

A hypothesis's key is computed before its script runs: a script that writes into its worktree
must not change the key its own result is stored under.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

from ..core.classification import HypothesisStatus, TestResult
from ..core.config import FalsificationConfig
from ..core.models import TestExecutionResult
from ..core.sequential import Decision
from ..engine.runs import HypothesisRun
from ..finding.cache import VerdictStore, entry_of, result_of, store_folder, stores_of
from ..finding.discovery import DiscoveryError, find_worktrees
from ..finding.fingerprint import Fingerprinter
from ..finding.installs import worktree_venv
from ..finding.layout import config_path
from .items import HypothesisItem
from .options import HypothesesSettings

logger = logging.getLogger(__name__)

#: The verdicts a later session may reuse: decided ones only, never an inconclusive one.
DECIDED = (HypothesisStatus.FALSIFIED, HypothesisStatus.SUPPORTED)


@dataclass(frozen=True)
class Plan:
    """What to do with one hypothesis: run ``run``, or deliver the ``cached`` result."""

    run: Optional[HypothesisRun]
    cached: Optional[TestExecutionResult] = None


class VerdictReuse:
    """Looks up and stores the verdicts of one session's hypotheses."""

    def __init__(self, settings: HypothesesSettings) -> None:
        self._enabled = settings.reuse
        self._config = settings.falsification
        self._fingerprints = Fingerprinter()
        self._keys: Dict[str, Tuple[VerdictStore, str]] = {}
        #: Each worktree's store, found once: finding it runs git, which took 3 s over the
        #: 1,000 hypotheses of one worktree when asked for each.
        self._stores: Dict[Path, Optional[VerdictStore]] = {}

    def plan(self, item: HypothesisItem, run: HypothesisRun) -> Plan:
        """Reuse the stored result of unchanged inputs when it is decided; under
        ``repeat=auto`` an undecided one's runs count as evidence the new runs add to."""
        located = self._locate(item, run)
        if located is None:
            return Plan(run)
        store, key = located
        entry = store.load(key)
        cached = None if entry is None else result_of(entry, str(item.found.worktree))
        if cached is None or not _same_venv(cached, item.found.worktree):
            return Plan(run)
        if _reusable(cached, self._config):
            return Plan(None, cached)
        if self._config.auto_repeat and cached.evidence is not None:
            return Plan(dataclasses.replace(run, prior=cached.evidence))
        return Plan(run)

    def remember(self, item: HypothesisItem, result: TestExecutionResult) -> None:
        """Store a new result that a later session may reuse or add runs to."""
        located = self._keys.get(item.nodeid)
        if located is None or result.cached_at is not None or not _storable(result, self._config):
            return
        if result.code_under_test is not None and result.code_under_test.warnings:
            # what the warning asks for (a build, a .venv) is what git ignores: the key would
            # not change once it is done, and a later session would get this verdict back
            logger.warning(
                "the verdict of %s is not stored for reuse: its code under test was warned "
                "about (see the warnings above)",
                result.hypothesis_id,
            )
            return
        store, key = located
        store.save(key, entry_of(result, _now()))

    def _locate(
        self, item: HypothesisItem, run: HypothesisRun
    ) -> Optional[Tuple[VerdictStore, str]]:
        """The store and key of a hypothesis, computed once, before it runs."""
        found = item.found
        if not self._enabled or not found.cache:
            return None
        if found.worktree not in self._stores:
            folder = store_folder(found.worktree)
            self._stores[found.worktree] = None if folder is None else VerdictStore(folder)
        store = self._stores[found.worktree]
        metadata = config_path(found.worktree, found.hypothesis_id)
        key = self._fingerprints.key(found.worktree, found.script, metadata, self._settings(run))
        if store is None or key is None:
            return None
        self._keys[item.nodeid] = (store, key)
        return self._keys[item.nodeid]

    def _settings(self, run: HypothesisRun) -> Dict[str, Any]:
        """The settings that can change an outcome."""
        config = self._config
        settings: Dict[str, Any] = {
            "hypothesis_id": run.hypothesis.id,
            "timeout": run.timeout if run.timeout is not None else config.test_timeout,
            "repeats": config.repeats,
            "polarity": run.polarity.value,
        }
        if config.auto_repeat:
            settings.update(alpha=config.alpha, flake_tolerance=config.flake_tolerance)
        if config.setup_command is not None:  # a metadata's own is in its file, digested apart
            settings.update(setup=config.setup_command, setup_timeout=config.setup_timeout)
        declared = [[command, timeout] for command, timeout in run.worktree_steps if command]
        if declared:  # the worktree's steps run before this script: they change what it tests
            settings.update(worktree_steps=declared)
        memory = run.memory_limit if run.memory_limit is not None else config.memory_limit
        if memory is not None:  # a tree past it is stopped: inconclusive, whatever it did
            settings.update(memory=memory)
        return settings


def clear_if_asked(config: pytest.Config, settings: HypothesesSettings) -> None:
    """``--cache-clear`` empties the verdict stores of the repositories searched, before
    anything runs (in the process that leads the session, never in an xdist worker)."""
    if not getattr(config.option, "cacheclear", False):
        return
    try:
        worktrees = find_worktrees(settings.directory)
    except DiscoveryError:
        return  # collection reports it as a usage error
    for store in stores_of(worktree.path for worktree in worktrees):
        store.clear()


def _same_venv(cached: TestExecutionResult, worktree: Path) -> bool:
    """Whether the worktree has its own ``.venv`` as when the cached result was reached (its
    scripts run with it): git ignores the folder, so the key does not show one made or
    removed. Asked before any setup step runs, which makes its ``.venv`` before the scripts:
    after the first session's, the result and the worktree agree."""
    tested = cached.code_under_test
    if tested is None:  # the script did not run, or an older store
        return True
    return (tested.venv is None) == (worktree_venv(worktree) is None)


def _reusable(result: TestExecutionResult, config: FalsificationConfig) -> bool:
    if config.auto_repeat:
        return result.evidence is not None and result.evidence.decision is not Decision.UNDECIDED
    return result.status in DECIDED


def _storable(result: TestExecutionResult, config: FalsificationConfig) -> bool:
    """Decided results; under ``repeat=auto`` also runs that all passed or failed (their
    evidence counts in the next session), never a timeout, error, skip or stop."""
    if result.status in DECIDED:
        return True
    clean = all(attempt.result in (TestResult.PASS, TestResult.FAIL) for attempt in result.attempts)
    return config.auto_repeat and result.evidence is not None and bool(result.attempts) and clean


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
