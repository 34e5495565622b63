"""What a run concluded: how many hypotheses reached each verdict, and what to do next."""

from __future__ import annotations

from collections import Counter
from typing import Dict, Sequence

from ..core.classification import HypothesisStatus
from ..finding.layout import SCRIPT_PATTERN
from .records import Record

#: Verdicts in the order they are counted and shown.
COUNTED = (
    HypothesisStatus.FALSIFIED,
    HypothesisStatus.SUPPORTED,
    HypothesisStatus.INCONCLUSIVE,
    HypothesisStatus.PENDING,
)
_COUNT_NAMES = {HypothesisStatus.PENDING: "not run"}


def verdict_counts(records: Sequence[Record]) -> Dict[str, int]:
    """How many hypotheses reached each verdict (``pending``: did not run)."""
    counts = Counter(record["status"] for record in records)
    return {status.value: counts[status.value] for status in COUNTED}


def next_action(records: Sequence[Record]) -> str:
    """What to do next, from the supported hypotheses (the ones the evidence did not refute)."""
    supported = [r for r in records if r["status"] == HypothesisStatus.SUPPORTED.value]
    if not records:
        return f"No hypothesis was found: write scripts named {SCRIPT_PATTERN} first."
    if not supported:
        action = "No hypothesis is supported: generate new hypotheses."
    elif len(supported) == 1:
        only = supported[0]
        where = f"branch {only['branch']}" if only["branch"] else only["worktree_path"]
        action = (
            f"Exactly one hypothesis is supported ({only['hypothesis_id']} on {where}): "
            "focus the fix on it."
        )
    else:
        names = ", ".join(r["hypothesis_id"] for r in supported)
        action = (
            f"{len(supported)} hypotheses are supported ({names}): refine them with tests "
            "that tell them apart."
        )
    not_run = verdict_counts(records)[HypothesisStatus.PENDING.value]
    if not_run:
        action += f" ({not_run} did not run: run them before concluding.)"
    return action


def counts_line(records: Sequence[Record]) -> str:
    """``2 falsified, 1 supported, 0 inconclusive`` (and ``not run`` when any did not run)."""
    counts = verdict_counts(records)
    parts = [
        f"{counts[status.value]} {_COUNT_NAMES.get(status, status.value)}"
        for status in COUNTED
        if counts[status.value] or status is not HypothesisStatus.PENDING
    ]
    return ", ".join(parts)
