"""What the pytest-xdist controller and its workers tell each other.

The controller tells each worker, through ``workerinput``, the marker its scripts must carry,
the folder its workers share (the run-wide concurrency slots, the stop of
``--hypotheses-stop-on``) and the session's output folder (where the controller follows what
the scripts print, and takes it up when a worker dies); a worker that finishes tells the
controller, through ``workeroutput``, what it collected and never ran, why it stopped the run
if it did, and what its runner warned of.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

#: The key of the plugin's entry in xdist's ``workerinput`` and ``workeroutput``.
WIRE_KEY = "hypotheses"


def worker_marker_prefix(run_prefix: str, worker_id: str) -> str:
    """The start of the marker variable of every script of one worker: the controller finds
    them all when that worker dies, and every worker's with ``run_prefix`` at the end."""
    return f"{run_prefix}{worker_id}_"


def workerinput_of(config: pytest.Config) -> Dict[str, Any]:
    """xdist's ``workerinput`` of a worker (empty elsewhere)."""
    found: Optional[Dict[str, Any]] = getattr(config, "workerinput", None)
    return {} if found is None else found
