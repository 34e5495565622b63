"""``--hypotheses-shard=K/N`` in a session: keep this job's part of the collected hypotheses.

The split itself is :mod:`~pytest_parallel_hypotheses.core.shards`; this part feeds it the
collected items and deselects the hypotheses of the other jobs.
"""

from __future__ import annotations

from typing import Any, Dict, Generator, List, Optional, Set

import pytest

from ..core.shards import Entry, Shard, fingerprint, partition
from ..plugin.items import HypothesisItem
from ..report.jsonreport import SHARD_KEY


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

    def __init__(self, shard: Shard, config: pytest.Config) -> None:
        self.shard = shard
        self._config = config
        #: What this shard holds, for the JSON report; set once the items are known.
        self.description: Optional[Dict[str, Any]] = None

    def describe(self, description: Dict[str, Any]) -> None:
        """Record what this shard holds, for the report (a controller learns it from a worker)."""
        self.description = description
        self._config.stash[SHARD_KEY] = description

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: List[pytest.Item]
    ) -> None:
        entries = [entry_for(item) for item in items if isinstance(item, HypothesisItem)]
        mine = set(partition(entries, self.shard.count)[self.shard.index - 1])
        kept = [item for item in items if not _is_other(item, mine)]
        self.describe(
            {
                "index": self.shard.index,
                "count": self.shard.count,
                "size": len(mine),
                "total": len(entries),
                "fingerprint": fingerprint(entries, self.shard.count),
            }
        )
        if len(kept) < len(items):
            config.hook.pytest_deselected(items=[item for item in items if _is_other(item, mine)])
            items[:] = kept

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        """A part that the split left empty (fewer hypotheses than parts) ran all it had:
        pytest's "no tests collected" (exit status 5, which the docs read as "no hypothesis
        found") would turn its CI job red, so it ends as a run of nothing that failed,
        before the reports and the event log record the status."""
        described = self.description
        if (
            session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and described is not None
            and described["size"] == 0
            and described["total"] > 0
        ):
            session.exitstatus = pytest.ExitCode.OK
        return (yield)

    def pytest_report_collectionfinish(self) -> Optional[str]:
        if self.description is None:
            return None
        return (
            f"hypotheses shard {self.shard}: {self.description['size']} of "
            f"{self.description['total']} hypotheses"
        )


def _is_other(item: pytest.Item, mine: Set[str]) -> bool:
    return isinstance(item, HypothesisItem) and item.nodeid not in mine
