"""From a finished script to its final result: the classification and confidence hooks,
then the notification.

The engine's result is the default answer; the hooks may change it. Their answers are checked
here, so a wrong type from a ``conftest.py`` becomes that hypothesis's error with a sentence,
not a confusing failure later in the summary or the report.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Dict

import pytest

from ..core.classification import HypothesisStatus, TestResult
from ..core.models import TestExecutionResult
from ..core.numbers import is_number
from ..core.repeats import rejudged
from ..core.results import as_error, unrunnable_result
from .options import SETTINGS_KEY

if TYPE_CHECKING:
    from ..finding.discovery import FoundHypothesis


def judge(item: pytest.Item, raw: TestExecutionResult) -> TestExecutionResult:
    """The final result of ``raw``: classified, scored and announced through the hooks.

    Each attempt of a repeated script is classified on its own, then the attempts are
    combined again, so a hook's answer counts in the agreement of the attempts.
    """
    hook = item.config.hook
    if raw.status is HypothesisStatus.PENDING:  # stopped by a stop condition: nothing to judge
        hook.pytest_hypotheses_finished(result=raw, item=item)
        return raw
    if raw.attempts:
        attempts = [_classified(item, attempt) for attempt in raw.attempts]
        judged = rejudged(raw, attempts, auto=_auto_repeat(item))
        judged.setup = raw.setup  # the worktree's, not an attempt's
    else:
        judged = _classified(item, raw)
    confidence = hook.pytest_hypotheses_confidence(result=judged, item=item)
    if not _is_probability(confidence):
        raise TypeError(
            f"pytest_hypotheses_confidence returned {confidence!r} for {item.nodeid}; "
            "expected a number from 0 to 1"
        )
    judged.metrics["confidence"] = float(confidence)
    hook.pytest_hypotheses_finished(result=judged, item=item)
    return judged


def hook_failed_result(raw: TestExecutionResult, error: Exception) -> TestExecutionResult:
    """The result of a script whose judging hook failed: it ran, and its output and exit status
    stay, but nothing can be concluded from a verdict the project's hook did not give."""
    return as_error(raw, f"a hypotheses hook failed: {error}")


def _classified(item: pytest.Item, result: TestExecutionResult) -> TestExecutionResult:
    """``result`` with the outcome that the classify hook gives it, and the verdict and
    confidence that follow from that outcome."""
    outcome = item.config.hook.pytest_hypotheses_classify(result=result, item=item)
    if not isinstance(outcome, TestResult):
        raise TypeError(
            f"pytest_hypotheses_classify returned {outcome!r} for {item.nodeid}; "
            "expected a TestResult"
        )
    return dataclasses.replace(result, result=outcome, status=None, metrics=_unscored(result))


def _unscored(result: TestExecutionResult) -> Dict[str, Any]:
    """The result's metrics without the confidence, which follows from a new outcome."""
    return {name: value for name, value in result.metrics.items() if name != "confidence"}


def _auto_repeat(item: pytest.Item) -> bool:
    settings = item.config.stash.get(SETTINGS_KEY, None)
    return settings is not None and settings.falsification.auto_repeat


def problem_result(found: FoundHypothesis) -> TestExecutionResult:
    """The error result of a hypothesis that cannot be run (bad id, broken metadata)."""
    return unrunnable_result(found.hypothesis_id, str(found.worktree), found.problem or "")


@pytest.hookimpl(trylast=True)
def pytest_hypotheses_classify(result: TestExecutionResult) -> TestResult:
    """Default: the engine's classification, which applies the core table."""
    return result.result


@pytest.hookimpl(trylast=True)
def pytest_hypotheses_confidence(result: TestExecutionResult) -> float:
    """Default: the confidence its attempts were combined with: under ``repeat=auto`` the
    evidence's (see :class:`~pytest_parallel_hypotheses.core.sequential.Evidence`), for a
    fixed number of runs the score of their agreement, for a single run the legacy table. A
    fixed number's evidence would give three agreeing runs 0.00, less than one run's 0.60,
    since three runs decide no pass rate."""
    return result.confidence


def _is_probability(value: object) -> bool:
    return is_number(value) and 0 <= value <= 1  # type: ignore[operator]
