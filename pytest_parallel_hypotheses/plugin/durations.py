"""How long each hypothesis took last time, kept in pytest's cache between runs.

The engine plans its start order with the expected durations when the scripts cannot all
start at once (quick answers first, then the longest); a
measured duration is a better guess than the ``estimated_test_time`` someone wrote down. The
durations live in ``.pytest_cache`` under :data:`CACHE_KEY`, by node id, so ``--cache-clear``
forgets them and ``-p no:cacheprovider`` turns them off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

import pytest

from ..core.numbers import number_at_least

if TYPE_CHECKING:
    from ..report.records import Record, RecordSource

#: Where the durations are kept in pytest's cache.
CACHE_KEY = "hypotheses/durations"

_LOADED = pytest.StashKey[Dict[str, float]]()


def recorded_durations(config: pytest.Config) -> Mapping[str, float]:
    """The duration of each hypothesis in its last run, by node id (empty without a cache)."""
    return config.stash.get(_LOADED, {})


class DurationRecorder:
    """The plugin part that reads the durations at the start and records them at the end."""

    def __init__(self, records: RecordSource) -> None:
        self._records = records

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        cache = _cache_of(session.config)
        stored = {} if cache is None else cache.get(CACHE_KEY, {})
        session.config.stash[_LOADED] = _valid_durations(stored)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Record the duration of every hypothesis whose script ran, keeping the others."""
        config = session.config
        cache = _cache_of(config)
        # a pytest-xdist worker leaves it to the controller, which sees every record
        if cache is None or hasattr(config, "workerinput"):
            return
        measured = {
            record["nodeid"]: float(record["duration"])
            for record in self._records.records
            if _ran(record)
        }
        if measured:
            cache.set(CACHE_KEY, {**recorded_durations(config), **measured})


def _cache_of(config: pytest.Config) -> Optional[pytest.Cache]:
    cache: Optional[pytest.Cache] = getattr(config, "cache", None)
    return cache


def _ran(record: Record) -> bool:
    """True when the script ran at least once (not for a bad id or a stopped run)."""
    return bool(record.get("attempts")) and record.get("duration") is not None


def _valid_durations(stored: Any) -> Dict[str, float]:
    """The well-formed entries of what the cache holds (someone may have edited it)."""
    if not isinstance(stored, dict):
        return {}
    return {
        nodeid: float(duration)
        for nodeid, duration in stored.items()
        if isinstance(nodeid, str) and _is_duration(duration)
    }


def _is_duration(value: object) -> bool:
    return number_at_least(value, 0)
