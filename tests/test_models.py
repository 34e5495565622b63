"""The data types keep the legacy names, fields, defaults and methods."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisStatus,
    TestExecutionResult,
    TestResult,
)

LEGACY_CONFIG: Dict[str, Any] = {
    "max_hypotheses": 4,
    "min_hypotheses": 1,
    "require_falsifiability": False,
    "probability_weight": 0.6,
    "impact_weight": 0.2,
    "complexity_weight": -0.1,
    "test_timeout": 120,
    "min_parallel_time": 30,
    "test_command": "make check",
    "max_concurrent_tests": 3,
    "worktree_creation_time": 4.0,
    "session_startup_time": 2.0,
    "environment_setup_time": 1.0,
    "cleanup_time": 0.5,
    "project_root": "project",
    "output_dir": "out",
    "config_file": "falsification.json",
    "use_root_cause_analyst": False,
    "use_sequential_thinking": False,
    "use_quality_engineer": False,
    "use_memory_mcp": False,
    "session_prefix": "bug-123",
}


def test_hypothesis_defaults_are_the_legacy_ones() -> None:
    hypothesis = Hypothesis("h1", "the cache is stale")
    assert hypothesis.test_strategy == ""
    assert hypothesis.expected_behavior == ""
    assert hypothesis.estimated_test_time == 0.0
    assert (hypothesis.probability, hypothesis.impact, hypothesis.test_complexity) == (
        0.5,
        0.5,
        0.5,
    )
    assert hypothesis.status is HypothesisStatus.PENDING
    assert hypothesis.test_results is None
    assert hypothesis.confidence_score is None
    assert hypothesis.dependencies == []


def test_hypotheses_do_not_share_their_dependency_lists() -> None:
    first, second = Hypothesis("a", "x"), Hypothesis("b", "y")
    first.dependencies.append("c")
    assert second.dependencies == []


@pytest.mark.parametrize(
    ("description", "strategy", "falsifiable"),
    [("a claim", "", True), ("", "run the suite", True), ("", "", False)],
)
def test_a_hypothesis_is_falsifiable_when_something_is_said_about_it(
    description: str, strategy: str, falsifiable: bool
) -> None:
    hypothesis = Hypothesis("h1", description, test_strategy=strategy)
    assert hypothesis.is_falsifiable() is falsifiable


def test_ranking_score_uses_the_given_weights() -> None:
    hypothesis = Hypothesis("h1", "x", probability=0.8, impact=0.5, test_complexity=0.25)
    weights = {"probability": 1.0, "impact": 2.0, "complexity": 4.0}
    assert hypothesis.ranking_score(weights) == pytest.approx(0.8 + 1.0 - 1.0)


def test_ranking_score_falls_back_to_the_legacy_weights() -> None:
    hypothesis = Hypothesis("h1", "x", probability=0.8, impact=0.5, test_complexity=0.25)
    assert hypothesis.ranking_score({}) == pytest.approx(0.8 * 0.5 + 0.5 * 0.3 - 0.25 * 0.2)


def test_hypothesis_to_dict_is_json_ready_with_the_status_value() -> None:
    hypothesis = Hypothesis("h1", "x", status=HypothesisStatus.SUPPORTED, dependencies=["h0"])
    data = hypothesis.to_dict()
    assert data["status"] == "supported"
    assert data["dependencies"] == ["h0"]
    assert json.loads(json.dumps(data)) == data


def test_hypothesis_round_trips_through_a_dict() -> None:
    hypothesis = Hypothesis("h1", "x", estimated_test_time=12.5, status=HypothesisStatus.TESTING)
    assert Hypothesis.from_dict(hypothesis.to_dict()) == hypothesis


def test_hypothesis_from_dict_refuses_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown hypothesis field"):
        Hypothesis.from_dict({"id": "h1", "description": "x", "probabilty": 0.9})


def test_result_takes_the_legacy_positional_and_keyword_fields() -> None:
    result = TestExecutionResult(
        "h1",
        TestResult.FAIL,
        1.5,
        stdout="out",
        stderr="err",
        exit_code=1,
        worktree_path="wt",
        error_message="",
        metrics={"confidence": 0.9, "extra": 1},
    )
    assert result.confidence == 0.9
    assert result.metrics["extra"] == 1


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (TestResult.PASS, HypothesisStatus.FALSIFIED),
        (TestResult.FAIL, HypothesisStatus.SUPPORTED),
        (TestResult.TIMEOUT, HypothesisStatus.INCONCLUSIVE),
    ],
)
def test_result_status_is_derived_from_the_outcome(
    outcome: TestResult, verdict: HypothesisStatus
) -> None:
    assert TestExecutionResult("h1", outcome, 0.1).status is verdict


def test_a_result_built_by_hand_has_empty_metrics_as_the_legacy_class_had() -> None:
    assert TestExecutionResult("h1", TestResult.PASS, 6.0).metrics == {}


def test_a_result_built_by_hand_still_scores_its_legacy_confidence() -> None:
    assert TestExecutionResult("h1", TestResult.PASS, 6.0).confidence == 0.85


def test_result_to_dict_has_the_legacy_keys_and_values() -> None:
    data = TestExecutionResult("h1", TestResult.TIMEOUT, 2.0, exit_code=124).to_dict()
    legacy = {
        "hypothesis_id": "h1",
        "result": "timeout",
        "duration": 2.0,
        "stdout": "",
        "stderr": "",
        "exit_code": 124,
        "worktree_path": "",
        "error_message": "",
        "metrics": {},
    }
    assert {k: data[k] for k in legacy} == legacy
    assert data["status"] == "inconclusive"
    assert json.loads(json.dumps(data)) == data


def test_config_accepts_every_legacy_keyword() -> None:
    config = FalsificationConfig(**LEGACY_CONFIG)
    assert {k: getattr(config, k) for k in LEGACY_CONFIG} == LEGACY_CONFIG


def test_config_defaults_are_the_legacy_ones() -> None:
    config = FalsificationConfig()
    assert (config.test_timeout, config.max_concurrent_tests, config.min_parallel_time) == (
        300,
        5,
        60,
    )


def test_config_from_dict_ignores_unknown_keys() -> None:
    config = FalsificationConfig.from_dict({**LEGACY_CONFIG, "retired_setting": True})
    assert config == FalsificationConfig(**LEGACY_CONFIG)


def test_config_round_trips_through_a_dict() -> None:
    config = FalsificationConfig(**LEGACY_CONFIG, kill_grace=0.5, max_output_bytes=4096)
    assert FalsificationConfig.from_dict(config.to_dict()) == config


def test_config_to_dict_holds_every_setting() -> None:
    data = FalsificationConfig(**LEGACY_CONFIG).to_dict()
    assert {k: data[k] for k in LEGACY_CONFIG} == LEGACY_CONFIG
    assert {"kill_grace", "max_output_bytes"} <= set(data)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("test_timeout", 0),
        ("test_timeout", -1),
        ("test_timeout", "abc"),
        ("test_timeout", True),
        ("test_timeout", float("nan")),
        ("test_timeout", float("inf")),
        ("repeat_budget", "5"),
        ("kill_grace", "1"),
        ("max_concurrent_tests", 0),
        ("max_concurrent_tests", 2.5),
        ("max_concurrent_tests", True),
        ("adaptive_concurrency", "no"),
        ("kill_grace", -0.1),
        ("max_output_bytes", 1),
        ("memory_limit", 0),
        ("memory_limit", 2**70),
        ("memory_free_floor", 2**63),
    ],
)
def test_config_refuses_impossible_values_with_a_sentence(setting: str, value: object) -> None:
    settings: Dict[str, Any] = {setting: value}
    with pytest.raises(ValueError, match=f"^{setting} must be"):
        FalsificationConfig(**settings)
