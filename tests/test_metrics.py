"""Resource metrics: peak memory, CPU time and processes of each script's whole tree."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    TestExecutionResult,
    TestExecutor,
)
from pytest_parallel_hypotheses.core.models import combined_usage

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]

MIB = 1024 * 1024
QUICK = FalsificationConfig(test_timeout=20, kill_grace=0.2)
#: This Python, which starts quicker than a ``python3`` behind a version manager's shim.
PYTHON = shlex.quote(sys.executable)
ALLOCATE = f'{PYTHON} -c "b = bytearray(200*1024*1024); import time; time.sleep(0.5)"'
#: Busy for half a second of CPU time in a child of the script.
BURN = (
    f'{PYTHON} -c "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"'
)


@pytest.fixture
def run_script(git_repo: Path, write_script: WriteScript) -> Callable[..., TestExecutionResult]:
    def run(body: str, config: FalsificationConfig = QUICK) -> TestExecutionResult:
        write_script(git_repo, "h1", body)
        return TestExecutor(config).execute_single(Hypothesis("h1", "x"), git_repo)

    return run


@pytest.mark.parametrize("pause", ["0.5", "0"])
def test_the_peak_memory_of_a_child_that_allocates_is_measured(
    run_script: Callable[..., TestExecutionResult], pause: str
) -> None:
    """Sampled while it holds the memory, or counted by the kernel when it ends too soon."""
    result = run_script(ALLOCATE.replace("0.5", pause))
    assert result.metrics["peak_rss_bytes"] > 150 * MIB


def test_the_cpu_time_of_a_busy_child_is_counted(
    run_script: Callable[..., TestExecutionResult],
) -> None:
    result = run_script(f"{BURN}\nsleep 0.3")
    assert result.metrics["cpu_seconds"] >= 0.3


def test_every_process_of_the_tree_is_counted(
    run_script: Callable[..., TestExecutionResult],
) -> None:
    result = run_script("sleep 0.4 & sleep 0.4 & sleep 0.4 & wait")
    assert result.metrics["processes"] >= 4


def test_a_script_too_quick_to_sample_still_counts_itself(
    run_script: Callable[..., TestExecutionResult],
) -> None:
    metrics = run_script("exit 0").metrics
    assert metrics["processes"] >= 1
    assert metrics["peak_rss_bytes"] >= 0
    assert metrics["cpu_seconds"] >= 0


#: A runner as large as a big pytest session, running one script and printing its metrics.
LARGE_RUNNER = """
import json, sys
from pathlib import Path
from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor
runner = b"\\1" * (300 * 1024 * 1024)
result = TestExecutor(FalsificationConfig(test_timeout=20)).execute_single(
    Hypothesis("h1", "x"), Path(sys.argv[1])
)
print(json.dumps(result.metrics))
"""


@pytest.mark.parametrize("body", ["exit 0", "sleep 0.5"])
def test_the_peak_memory_of_a_small_script_is_its_own_not_the_runners(
    git_repo: Path, write_script: WriteScript, body: str
) -> None:
    """At ``exec`` the kernel counts in the child's peak the memory it shared with the
    runner: ``wait4`` gave every script at least the runner's size. The runner is a process
    of its own, so that its size stays out of the other tests."""
    write_script(git_repo, "h1", body)

    completed = subprocess.run(
        [sys.executable, "-c", LARGE_RUNNER, str(git_repo)],
        capture_output=True,
        text=True,
        check=True,
    )

    metrics = json.loads(completed.stdout)
    assert metrics["peak_rss_bytes"] < 100 * MIB, metrics


def test_a_peak_between_two_samples_is_seen_while_its_process_lives(
    git_repo: Path, write_script: WriteScript
) -> None:
    """Under a runner larger than the script, the kernel's count at its end says nothing;
    a spike freed before the next sample is still in the process's own high-water mark."""
    spike = "b = b'x' * (200 * 1024 * 1024); del b; import time; time.sleep(0.6)"
    write_script(git_repo, "h1", f'exec {PYTHON} -c "{spike}"')

    completed = subprocess.run(
        [sys.executable, "-c", LARGE_RUNNER, str(git_repo)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(completed.stdout)["peak_rss_bytes"] > 150 * MIB


def test_a_timed_out_tree_is_measured_before_it_is_stopped(
    run_script: Callable[..., TestExecutionResult],
) -> None:
    config = FalsificationConfig(test_timeout=2.0, kill_grace=0.2)
    result = run_script(f"{ALLOCATE.replace('0.5', '30')}", config)
    assert result.metrics["peak_rss_bytes"] > 150 * MIB


def test_repeated_attempts_combine_peak_cpu_and_processes(
    run_script: Callable[..., TestExecutionResult],
) -> None:
    result = run_script("sleep 0.2", FalsificationConfig(test_timeout=20, repeats=2))
    attempts = [attempt.metrics for attempt in result.attempts]
    assert result.metrics["peak_rss_bytes"] == max(m["peak_rss_bytes"] for m in attempts)
    assert result.metrics["processes"] == sum(m["processes"] for m in attempts)


def test_combined_usage_takes_the_highest_peak_and_the_sums() -> None:
    combined = combined_usage(
        [
            {"peak_rss_bytes": 10, "cpu_seconds": 0.5, "processes": 2, "confidence": 0.6},
            {"peak_rss_bytes": 30, "cpu_seconds": 0.25, "processes": 3, "confidence": 0.6},
        ]
    )
    assert combined == {"peak_rss_bytes": 30, "cpu_seconds": 0.75, "processes": 5}


def test_a_metric_missing_from_an_attempt_is_left_out() -> None:
    assert combined_usage([{"peak_rss_bytes": 10}, {"confidence": 0.2}]) == {}


# Under pytest


def test_the_json_report_has_the_metrics(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "memory", ALLOCATE)
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["metrics"]["peak_rss_bytes"] > 150 * MIB
    assert record["metrics"]["processes"] >= 2
    assert record["metrics"]["cpu_seconds"] >= 0


def test_the_verbose_summary_shows_the_metrics(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "memory", ALLOCATE)

    result = run_pytest(f"--hypotheses={git_repo}", "-v")

    result.stdout.fnmatch_lines(
        [
            "id *verdict *result *exit *duration *peak RSS *CPU *procs *confidence",
            "memory *FALSIFIED *pass *0 *s *[12][0-9][0-9].[0-9] MiB *s *[0-9]* *0.60",
        ]
    )


def test_the_summary_leaves_the_metrics_out_without_verbose(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "quick", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.stdout.fnmatch_lines(["id *verdict *result *exit *duration *confidence"])
    result.stdout.no_fnmatch_line("*peak RSS*")
