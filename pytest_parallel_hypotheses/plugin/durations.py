"""How long each hypothesis took last time, and how many CPUs it kept busy, kept in pytest's
cache between runs.

The engine plans its start order with the expected durations when the scripts cannot all
start at once (quick answers first, then the longest); a
measured duration is a better guess than the ``estimated_test_time`` someone wrote down. Under
``auto`` a script known to keep CPUs busy starts only when the CPUs hold what it wants (a
test suite run with ``pytest -n 2`` looks like a one-CPU script for its first second), and
one known to be idle passes the scripts waiting for the CPUs. Both live in
``.pytest_cache`` under :data:`CACHE_KEY` and :data:`CPUS_KEY`, by node id, so
``--cache-clear`` forgets them and ``-p no:cacheprovider`` turns them off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

import pytest

from ..core.diagnosis import cpus_wanted
from ..core.numbers import number_at_least

if TYPE_CHECKING:
    from ..report.records import Record, RecordSource

#: Where the durations are kept in pytest's cache.
CACHE_KEY = "hypotheses/durations"
#: Where the CPUs each hypothesis kept busy (or waited for) are kept.
CPUS_KEY = "hypotheses/cpus"
#: A run shorter than this tells too little of what its script wants of the CPUs: most of it
#: would be a test runner's imports, in one process.
CPUS_MIN_SECONDS = 1.0

_LOADED = pytest.StashKey[Dict[str, float]]()
_LOADED_CPUS = pytest.StashKey[Dict[str, float]]()


def recorded_durations(config: pytest.Config) -> Mapping[str, float]:
    """The duration of each hypothesis in its last run, by node id (empty without a cache)."""
    return config.stash.get(_LOADED, {})


def recorded_cpus(config: pytest.Config) -> Mapping[str, float]:
    """The CPUs each hypothesis kept busy or waited for in its last run of
    :data:`CPUS_MIN_SECONDS` or more, by node id (empty without a cache)."""
    return config.stash.get(_LOADED_CPUS, {})


class DurationRecorder:
    """The plugin part that reads the durations and CPUs at the start and records them at the
    end."""

    def __init__(self, records: RecordSource) -> None:
        self._records = records

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        cache = _cache_of(session.config)
        stash = session.config.stash
        stash[_LOADED] = _valid(cache.get(CACHE_KEY, {}) if cache else {})
        stash[_LOADED_CPUS] = _valid(cache.get(CPUS_KEY, {}) if cache else {})

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Record the duration of every hypothesis whose script ran, and the CPUs of those
        that ran long enough to tell, keeping the others."""
        config = session.config
        cache = _cache_of(config)
        # a pytest-xdist worker leaves it to the controller, which sees every record
        if cache is None or hasattr(config, "workerinput"):
            return
        ran = [record for record in self._records.records if _ran(record)]
        if ran:
            measured = {record["nodeid"]: float(record["duration"]) for record in ran}
            cache.set(CACHE_KEY, {**recorded_durations(config), **measured})
        known = {r["nodeid"]: round(w, 2) for r in ran if (w := _cpus_of(r)) is not None}
        if known:
            cache.set(CPUS_KEY, {**recorded_cpus(config), **known})


def _cache_of(config: pytest.Config) -> Optional[pytest.Cache]:
    cache: Optional[pytest.Cache] = getattr(config, "cache", None)
    return cache


def _ran(record: Record) -> bool:
    """True when the script ran at least once (not for a bad id or a stopped run)."""
    return bool(record.get("attempts")) and record.get("duration") is not None


def _cpus_of(record: Record) -> Optional[float]:
    """What the hypothesis wanted of the CPUs over its run, when it ran long enough to tell."""
    duration = float(record["duration"])
    if duration < CPUS_MIN_SECONDS:
        return None
    return cpus_wanted(record.get("metrics") or {}, duration)


def _valid(stored: Any) -> Dict[str, float]:
    """The well-formed entries of what the cache holds (someone may have edited it)."""
    if not isinstance(stored, dict):
        return {}
    return {
        nodeid: float(value)
        for nodeid, value in stored.items()
        if isinstance(nodeid, str) and number_at_least(value, 0)
    }
