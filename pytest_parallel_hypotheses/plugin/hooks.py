"""Hooks of the hypotheses plugin, added with ``pytest_addhooks``.

Implement them in a ``conftest.py`` or a plugin to change how a finished hypothesis script is
judged, or to be told about each result. Each hook receives the ``item``
(:class:`~pytest_parallel_hypotheses.plugin.items.HypothesisItem`, whose ``found`` attribute
holds the worktree, branch, HEAD and metadata) and the ``result``
(:class:`~pytest_parallel_hypotheses.TestExecutionResult`).

The two ``firstresult`` hooks have default implementations registered with ``trylast=True``;
an implementation returns None to leave the decision to the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import pytest

if TYPE_CHECKING:
    from ..core.classification import TestResult
    from ..core.models import TestExecutionResult
    from .items import HypothesisItem


@pytest.hookspec(firstresult=True)
def pytest_hypotheses_classify(
    result: TestExecutionResult, item: HypothesisItem
) -> Optional[TestResult]:
    """Classify a finished hypothesis script: return a ``TestResult``, or None to pass.

    The default returns the engine's classification, the core table (exit 0 pass, 1-123 or a
    crash signal fail, 124 or our deadline timeout, 125 skip, anything else error). The
    verdict follows from the returned value: pass falsifies, fail supports, the others are
    inconclusive. ``result.exit_code``, ``result.stdout`` and ``result.stderr`` are there to
    decide on, e.g. to treat a known flaky exit status as inconclusive. When the script ran
    several times (``--hypotheses-repeat``), this is called for each attempt, with that
    attempt's exit status and output, and the attempts are combined afterwards.
    """


@pytest.hookspec(firstresult=True)
def pytest_hypotheses_confidence(
    result: TestExecutionResult, item: HypothesisItem
) -> Optional[float]:
    """Score how far the verdict of a finished script can be trusted, from 0 to 1.

    Called after classification, so ``result.result`` and ``result.status`` are final. The
    default returns the legacy single-run values: timeout 0.3, error 0.2, skip 0.0, pass or
    fail 0.6 when faster than 5 s, else 0.85; for a script run several times, the score of the
    agreement of its ``result.attempts`` (see the concepts page). Return None to pass.
    """


@pytest.hookspec
def pytest_hypotheses_finished(result: TestExecutionResult, item: HypothesisItem) -> None:
    """Be told of each finished hypothesis, once its classification and confidence are final.

    Called as each result arrives, before pytest reports the item, so a notification can go
    out while other scripts still run. Also called, with an error result, for a hypothesis
    that could not be run (a bad id or broken metadata).
    """
