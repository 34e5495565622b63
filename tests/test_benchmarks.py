"""The benchmarks still run: a ``--quick`` smoke run of ``python -m benchmarks``, end to end.

Speed is not judged here (the quick sizes are too small and CI machines too noisy); what is
checked is that every workload runs, every target gets a verdict and the figures are sane.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD_TITLES = {
    "a": "spawn-bound",
    "b": "overlap",
    "c": "bounded",
    "d": "skewed",
    "e": "timeout storm",
    "f": "output flood",
    "g": "plugin overhead",
    "h": "CPU-bound",
    "i": "I/O-bound",
    "j": "mixed",
    "k": "deadline under load",
    "l": "memory",
    "m": "plugin against its parts",
    "n": "watching overhead",
    "o": "output memory",
}


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


class QuickRun:
    def __init__(self, completed: subprocess.CompletedProcess[str], report: Dict[str, Any]):
        self.completed = completed
        self.report = report

    def workload(self, key: str) -> Dict[str, Any]:
        return next(w for w in self.report["workloads"] if w["key"] == key)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    report_path = tmp_path_factory.mktemp("benchmarks") / "figures.json"
    completed = run_benchmarks("--quick", "--json", str(report_path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return QuickRun(completed, json.loads(report_path.read_text()))


def test_quick_run_prints_a_section_for_every_workload(quick_run: QuickRun) -> None:
    for key, title in WORKLOAD_TITLES.items():
        measured = f"({key}) {title}" in quick_run.completed.stdout
        not_measured = f"({key}) not measured:" in quick_run.completed.stdout
        assert measured or not_measured, f"workload ({key}) is missing from the table"


def test_quick_run_gives_every_target_a_verdict(quick_run: QuickRun) -> None:
    targets = sum(len(w["targets"]) for w in quick_run.report["workloads"])
    verdicts = re.findall(r"\b(?:PASS|MISS|NOISY) \(", quick_run.completed.stdout)
    assert targets > 0
    assert len(verdicts) == targets


def test_quick_run_records_one_positive_figure_per_runner_and_measure(quick_run: QuickRun) -> None:
    for workload in quick_run.report["workloads"]:
        for metric, figures in workload["metrics"].items():
            if figures["unit"] not in ("s", "MiB") or "overhead" in metric:
                continue  # counts may be 0, and differences of two times may be negative
            for runner, series in figures["runners"].items():
                assert len(series["values"]) == 1, (workload["key"], metric, runner)
                assert series["values"][0] > 0, (workload["key"], metric, runner)


def test_timeout_storm_leaves_no_survivors_of_the_executor(quick_run: QuickRun) -> None:
    survivors = quick_run.workload("e")["metrics"]["survivors"]["runners"]
    assert survivors["executor"]["values"] == [0]


def test_skewed_workload_knows_its_optimal_makespan(quick_run: QuickRun) -> None:
    # quick scale: a quarter of the full durations, 1.4 s in all on 4 workers; the longest
    # script (0.4 s) bounds the optimum, and in input order it starts late and ends at 0.6 s
    references = quick_run.workload("d")["references"]
    assert references["optimum"] == pytest.approx(0.4)
    assert references["input order, ideal"] == pytest.approx(0.6)


def test_unknown_workload_is_refused_with_the_valid_keys() -> None:
    completed = run_benchmarks("--only", "z")
    assert completed.returncode == 2
    assert "unknown workload(s): z; choose from a, b, c, d, e, f, g, h, i, j, k, l, m, n" in (
        completed.stderr
    )
