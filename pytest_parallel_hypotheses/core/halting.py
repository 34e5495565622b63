"""When a run may stop early: as soon as one hypothesis reaches a chosen verdict.

Like GNU parallel's ``--halt now,...``: once the answer that matters is known, the other
scripts are not worth their time. What was stopped or never started is reported as skipped,
with the hypothesis and the verdict that stopped it.
"""

from __future__ import annotations

from enum import Enum
from typing import Callable

from .classification import HypothesisStatus
from .models import TestExecutionResult

__all__ = [
    "CONCLUSIVE",
    "StopCondition",
    "StopOn",
    "stop_reason",
]

#: Decides, for each finished hypothesis, whether the rest of the run should stop.
StopCondition = Callable[[TestExecutionResult], bool]

#: The verdicts that answer something: ``first`` stops on either, never on an inconclusive one.
CONCLUSIVE = frozenset({HypothesisStatus.FALSIFIED, HypothesisStatus.SUPPORTED})


class StopOn(Enum):
    """The stop conditions that the option ``--hypotheses-stop-on`` names."""

    SUPPORTED = "supported"
    FALSIFIED = "falsified"
    FIRST = "first"

    def __call__(self, result: TestExecutionResult) -> bool:
        """True when ``result`` reaches the verdict this condition waits for."""
        if self is StopOn.FIRST:
            return result.status in CONCLUSIVE
        return result.status is HypothesisStatus(self.value)


def stop_reason(result: TestExecutionResult) -> str:
    """Why the rest of a run was stopped, in words a skip reason can show (a reused verdict
    says so)."""
    assert result.status is not None  # set when the result is built
    reused = "" if result.cached_at is None else " (reused)"
    return f"hypothesis {result.hypothesis_id} was {result.status.value.upper()}{reused}"
