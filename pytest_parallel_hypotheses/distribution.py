"""Which part this process plays in a pytest-xdist session, and what the controller and its
workers tell each other.

Without xdist the plugin collects and runs every hypothesis itself. Under ``-n`` or ``--tx``
the controller collects nothing and runs nothing: each worker collects the same items and runs
the scripts of the items xdist hands it, and their reports travel back to the controller. The
controller tells each worker, through ``workerinput``, the marker its scripts must carry and
the folder its workers share (the run-wide concurrency slots, the stop of
``--hypotheses-stop-on``); a worker that finishes tells the controller, through
``workeroutput``, what it collected and never ran, and why it stopped the run if it did.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Optional

import pytest

#: The key of the plugin's entry in xdist's ``workerinput`` and ``workeroutput``.
WIRE_KEY = "hypotheses"


class Role(enum.Enum):
    """What the plugin does in this process."""

    #: No xdist: collect and run everything here.
    ALONE = "alone"
    #: The xdist controller: gather the workers' reports, stop what crashed workers left.
    CONTROLLER = "controller"
    #: An xdist worker: run the script of each item xdist hands over.
    WORKER = "worker"


def role_of(config: pytest.Config) -> Role:
    """The role of this process, decided as pytest-xdist decides whether to distribute."""
    if hasattr(config, "workerinput"):
        return Role.WORKER
    distributing = config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))
    if distributing and not config.option.collectonly:
        return Role.CONTROLLER
    return Role.ALONE


def worker_marker_prefix(run_prefix: str, worker_id: str) -> str:
    """The start of the marker variable of every script of one worker: the controller finds
    them all when that worker dies, and every worker's with ``run_prefix`` at the end."""
    return f"{run_prefix}{worker_id}_"


def workerinput_of(config: pytest.Config) -> Dict[str, Any]:
    """xdist's ``workerinput`` of a worker (empty elsewhere)."""
    found: Optional[Dict[str, Any]] = getattr(config, "workerinput", None)
    return {} if found is None else found
