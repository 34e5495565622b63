"""``--hypotheses-shard=K/N``: split one run's hypotheses among the N jobs of a CI matrix.

Every job computes the same partition on its own, so the partition may depend only on what
every job sees alike: the node ids and the ``estimated_test_time`` of each hypothesis's
metadata, both committed. Durations cached by earlier runs are not used: each CI job has a
cache of its own, jobs whose caches differ would compute different partitions, and a
hypothesis would then run twice or never.

The shards are balanced by expected duration, longest first, each to the shard with the least
expected time so far; a hypothesis without an estimate counts as the average of those with
one. With at least N hypotheses no shard is empty.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import pytest

from .items import HypothesisItem

#: How many seconds a hypothesis counts for when no hypothesis has an estimate.
DEFAULT_WEIGHT = 1.0

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

#: A hypothesis to place: its node id and its expected duration (None when unknown).
Entry = Tuple[str, Optional[float]]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 1) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Optional[Shard]:
        """``K/N`` with 1 <= K <= N, or None when ``text`` is not that."""
        match = _SPEC.match(text)
        if match is None:
            return None
        index, count = int(match.group(1)), int(match.group(2))
        return cls(index, count) if 1 <= index <= count else None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def partition(entries: Sequence[Entry], count: int) -> List[List[str]]:
    """The node ids of each of ``count`` shards, each shard in the order given.

    Longest first, each goes to the shard with the least expected time, then the fewest
    hypotheses, then the lowest index; ties between equal hypotheses are broken by node id,
    so the result depends on nothing but the entries.
    """
    weights = _weights(entries)
    order = sorted(weights, key=lambda nodeid: (-weights[nodeid], nodeid))
    loads = [(0.0, 0, shard) for shard in range(count)]
    placed: Dict[str, int] = {}
    for nodeid in order:
        total, size, shard = min(loads)
        loads[shard] = (total + weights[nodeid], size + 1, shard)
        placed[nodeid] = shard
    shards: List[List[str]] = [[] for _ in range(count)]
    for nodeid, _estimate in entries:
        shards[placed[nodeid]].append(nodeid)
    return shards


def fingerprint(entries: Sequence[Entry], count: int) -> str:
    """Names the partition: shards of one run have the same fingerprint only if they split
    the same hypotheses with the same estimates into the same number of shards."""
    text = json.dumps([count, sorted(entries)], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _weights(entries: Sequence[Entry]) -> Dict[str, float]:
    known = [estimate for _nodeid, estimate in entries if estimate]
    default = sum(known) / len(known) if known else DEFAULT_WEIGHT
    return {nodeid: estimate or default for nodeid, estimate in entries}


def entry_for(item: HypothesisItem) -> Entry:
    """The node id and the metadata's ``estimated_test_time`` (None when not given)."""
    hypothesis = item.found.hypothesis
    estimate = None if hypothesis is None else hypothesis.estimated_test_time
    return item.nodeid, (float(estimate) if estimate and estimate > 0 else None)


class ShardSelection:
    """The plugin part that keeps this shard's hypotheses and deselects the others.

    It runs before ``-k``, ``-m`` and ``--lf`` select among the items, so every shard splits
    the same list, whatever each job's cache holds; those options then select within it.
    """

    def __init__(self, shard: Shard) -> None:
        self.shard = shard
        #: What this shard holds, for the JSON report; set once the items are known.
        self.description: Optional[Dict[str, Any]] = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: List[pytest.Item]
    ) -> None:
        entries = [entry_for(item) for item in items if isinstance(item, HypothesisItem)]
        mine = set(partition(entries, self.shard.count)[self.shard.index - 1])
        kept = [item for item in items if not _is_other(item, mine)]
        self.description = {
            "index": self.shard.index,
            "count": self.shard.count,
            "size": len(mine),
            "total": len(entries),
            "fingerprint": fingerprint(entries, self.shard.count),
        }
        if len(kept) < len(items):
            config.hook.pytest_deselected(items=[item for item in items if _is_other(item, mine)])
            items[:] = kept

    def pytest_report_collectionfinish(self) -> Optional[str]:
        if self.description is None:
            return None
        return (
            f"hypotheses shard {self.shard}: {self.description['size']} of "
            f"{self.description['total']} hypotheses"
        )


def _is_other(item: pytest.Item, mine: Set[str]) -> bool:
    return isinstance(item, HypothesisItem) and item.nodeid not in mine
