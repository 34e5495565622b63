"""Shards: one run's hypotheses split among the N jobs of a CI matrix (``K/N``).

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
from typing import Dict, List, Optional, Sequence, Tuple

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
