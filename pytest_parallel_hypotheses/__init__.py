"""Test debugging hypotheses in parallel git worktrees.

Each hypothesis has a script, ``<worktree>/.falsification/test_<id>.sh``, written to disprove
it: exit 0 falsifies the hypothesis, a genuine failure supports it.
"""

import logging

from .core.classification import HypothesisStatus, Polarity, TestResult
from .core.config import FalsificationConfig
from .core.models import Hypothesis, TestExecutionResult
from .core.version import __version__
from .engine.executor import AsyncTestExecutor, HypothesisRun, TestExecutor
from .engine.stream import ResultStream

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AsyncTestExecutor",
    "FalsificationConfig",
    "Hypothesis",
    "HypothesisRun",
    "HypothesisStatus",
    "Polarity",
    "ResultStream",
    "TestExecutionResult",
    "TestExecutor",
    "TestResult",
    "__version__",
]
