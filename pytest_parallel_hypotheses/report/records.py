"""One record per hypothesis: a plain JSON-ready dictionary of who it is and what it did.

The terminal summary and the JSON report are built from records, not from items, because a
record travels with a test report from one process to another (pytest-xdist) as the report's
``hypotheses_record`` attribute.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Protocol

from ..core.classification import HypothesisStatus, Polarity
from ..core.models import TestExecutionResult
from ..finding.discovery import FoundHypothesis
from ..finding.git import GitError, changed_paths
from ..finding.layout import SCRIPT_DIR, WORKTREE_VENV

#: The report attribute that holds a hypothesis's record.
RECORD_ATTRIBUTE = "hypotheses_record"

Record = Dict[str, Any]


class RecordSource(Protocol):
    """Whatever holds the records of a run, in the order they are shown."""

    @property
    def records(self) -> List[Record]: ...


def record_of(nodeid: str, found: FoundHypothesis, result: Optional[TestExecutionResult]) -> Record:
    """Who the hypothesis is, where it ran, and every field of its result (None if not run)."""
    record: Record = {
        "nodeid": nodeid,
        "hypothesis_id": found.hypothesis_id,
        "worktree_path": str(found.worktree),
        "branch": found.branch,
        "branch_gone": found.branch_gone,
        "head": found.head,
        "script": str(found.script),
        "problem": found.problem,
        "timeout": found.timeout,
        "polarity": found.polarity.value,
        "setup_command": found.setup,
        "memory": found.memory,
        "hypothesis": _hypothesis_fields(found, result),
        "uncommitted": _uncommitted_fix(found, result),
    }
    for name, value in result_fields(result).items():
        record.setdefault(name, value)  # the id and worktree are the item's even if not run
    return record


def _uncommitted_fix(
    found: FoundHypothesis, result: Optional[TestExecutionResult]
) -> Optional[List[str]]:
    """For a confirmed fix, its worktree's changes that are not committed, its hypotheses'
    own folder and venv aside: its branch does not hold the code that passed. None for any
    other hypothesis, or where git cannot tell."""
    if result is None or result.status is not HypothesisStatus.SUPPORTED:
        return None
    if found.polarity is not Polarity.CONFIRM:
        return None
    try:
        paths = changed_paths(found.worktree)
    except (GitError, OSError):
        return None
    own = {SCRIPT_DIR, WORKTREE_VENV}
    return [path for path in paths if path.split("/", 1)[0] not in own]


def _hypothesis_fields(
    found: FoundHypothesis, result: Optional[TestExecutionResult]
) -> Optional[Record]:
    """The hypothesis's metadata, with the verdict and confidence the run gave it: as read,
    its ``status`` said ``pending`` beside the record's own ``falsified``."""
    if found.hypothesis is None:
        return None
    fields = found.hypothesis.to_dict()
    if result is not None and result.status is not None:
        fields.update(status=result.status.value, confidence_score=result.confidence)
    return fields


def result_fields(result: Optional[TestExecutionResult]) -> Record:
    """Every field of ``result`` and its confidence; all None and pending when not run."""
    if result is not None:
        return {**result.to_dict(), "confidence": result.confidence}
    fields: Record = {field.name: None for field in dataclasses.fields(TestExecutionResult)}
    fields.update(
        status=HypothesisStatus.PENDING.value,
        confidence=None,
        flaky=None,
        outcome_counts=None,
        cached=False,
    )
    return fields
