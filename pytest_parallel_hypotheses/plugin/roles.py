"""Which part this process plays in a session: alone, or a pytest-xdist controller or worker.

Without xdist the plugin collects and runs every hypothesis itself. Under ``-n`` or ``--tx``
the controller collects nothing and runs nothing: each worker collects the same items and runs
the scripts of the items xdist hands it, and their reports travel back to the controller.
"""

from __future__ import annotations

import enum

import pytest


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
