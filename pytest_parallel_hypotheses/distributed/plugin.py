"""The distributed side's pytest entry point: CI-matrix shards and pytest-xdist roles.

Registered through a ``pytest11`` entry point of its own, it runs after the main plugin has
resolved the options and adds, with ``--hypotheses``, the shard selection and, under
pytest-xdist, the controller's parts (gathering the workers' reports) or a worker's (running
each item's script when xdist hands it the item).
"""

from __future__ import annotations

from typing import Dict, Optional

import pytest

from ..plugin import register_parts, reporting_parts
from ..plugin.durations import DurationRecorder
from ..plugin.options import SETTINGS_KEY, HypothesesSettings
from ..plugin.reuse import VerdictReuse
from ..plugin.roles import Role, role_of
from ..plugin.runnerwarnings import RunnerWarnings
from .controller import DistributedRecords, XdistController
from .orphan import ControllerWatch
from .sharding import ShardSelection
from .wire import WIRE_KEY, workerinput_of
from .worker import XdistWorkerRun


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is not None:
        register_parts(config, _parts(config, settings))


def _parts(config: pytest.Config, settings: HypothesesSettings) -> Dict[str, object]:
    role = role_of(config)
    shard: Optional[ShardSelection] = None
    parts: Dict[str, object] = {}
    if settings.shard is not None:
        shard = ShardSelection(settings.shard, config)
        parts["shard"] = shard
    if role is Role.WORKER:
        briefing = workerinput_of(config).get(WIRE_KEY, {})
        parts["controller-watch"] = ControllerWatch(
            briefing.get("controller_pid"), briefing.get("shared_folder")
        )
        warnings = RunnerWarnings()
        parts["runnerwarnings"] = warnings
        parts["xdist-worker"] = XdistWorkerRun(
            config, settings.falsification, shard, VerdictReuse(settings), warnings
        )
    elif role is Role.CONTROLLER:
        records = DistributedRecords(config)
        warnings = RunnerWarnings()
        parts["runnerwarnings"] = warnings
        parts["xdist-controller"] = XdistController(
            settings, records, shard, config.rootpath, warnings
        )
        parts["records"] = records
        parts["durations"] = DurationRecorder(records)
        parts.update(
            reporting_parts(
                settings, records, warnings, per_xdist_worker=True, own_timeout=records.own_timeout
            )
        )
    return parts
