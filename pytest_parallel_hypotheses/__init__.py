"""Test debugging hypotheses in parallel git worktrees.

Each hypothesis has a script, ``<worktree>/.falsification/test_<id>.sh``, written to disprove
it: exit 0 falsifies the hypothesis, a genuine failure supports it.
"""

import logging

from .classification import HypothesisStatus, TestResult
from .executor import AsyncTestExecutor, HypothesisRun, ResultStream, TestExecutor
from .models import FalsificationConfig, Hypothesis, TestExecutionResult

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AsyncTestExecutor",
    "FalsificationConfig",
    "Hypothesis",
    "HypothesisRun",
    "HypothesisStatus",
    "ResultStream",
    "TestExecutionResult",
    "TestExecutor",
    "TestResult",
    "__version__",
]
