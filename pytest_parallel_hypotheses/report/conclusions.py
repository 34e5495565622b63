"""What a run concluded: how many hypotheses reached each verdict, and what to do next."""

from __future__ import annotations

from collections import Counter
from typing import Dict, Sequence

from ..core.classification import HypothesisStatus, Polarity
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
    confirmed = [r for r in supported if r.get("polarity") == Polarity.CONFIRM.value]
    if not records:
        return f"No hypothesis was found: write scripts named {SCRIPT_PATTERN} first."
    if confirmed:
        action = _merge_action(confirmed)
    elif not supported:
        action = _none_supported(records)
    elif len(supported) == 1:
        only = supported[0]
        action = (
            f"Exactly one hypothesis is supported ({only['hypothesis_id']} on {_where(only)}): "
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


def _none_supported(records: Sequence[Record]) -> str:
    """With no hypothesis supported: new ones, unless some are inconclusive, whose verdicts
    are still to be had (a broken script, a timeout, a failed setup step)."""
    undecided = [r["hypothesis_id"] for r in records if r["status"] == _INCONCLUSIVE]
    if not undecided:
        return "No hypothesis is supported: generate new hypotheses."
    shown = ", ".join(undecided[:5]) + (
        f" and {len(undecided) - 5} more" if len(undecided) > 5 else ""
    )
    return (
        f"No hypothesis is supported, but {len(undecided)} reached no verdict ({shown}): fix "
        "what stopped them (their errors say) and run them again before generating new ones."
    )


_INCONCLUSIVE = HypothesisStatus.INCONCLUSIVE.value


def _merge_action(confirmed: Sequence[Record]) -> str:
    """The action when scripts written to confirm a fix passed: review and merge."""
    fixes = ", ".join(f"{r['hypothesis_id']} on {_where(r)}" for r in confirmed)
    if len(confirmed) == 1:
        return f"A fix is confirmed ({fixes}): review that branch and merge it."
    return (
        f"{len(confirmed)} fixes are confirmed ({fixes}): review them and merge the branch to keep."
    )


def _where(record: Record) -> str:
    branch = record["branch"]
    return f"branch {branch}" if branch else str(record["worktree_path"])


def counts_line(records: Sequence[Record]) -> str:
    """``2 falsified, 1 supported, 0 inconclusive`` (and ``not run`` when any did not run)."""
    counts = verdict_counts(records)
    parts = [
        f"{counts[status.value]} {_COUNT_NAMES.get(status, status.value)}"
        for status in COUNTED
        if counts[status.value] or status is not HypothesisStatus.PENDING
    ]
    return ", ".join(parts)
