"""The benchmark's output: one table of figures, ratios and target verdicts, and raw JSON.

Every ratio is computed from figures of the same run, so the table can be read on any
machine; the machine it came from is printed above it.
"""

from __future__ import annotations

import os
import platform
import statistics
from typing import Any, Dict, List, Optional, Sequence

from .suite import Figures, Target

BASELINES = ("threadpool", "xargs", "spawn")
_DIGITS = {"s": 3, "ms": 2, "MiB": 1, "procs": 0}


def machine() -> Dict[str, Any]:
    """What the figures depend on: cores, Python, kernel, and how busy the machine was."""
    return {
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": f"{platform.system()} {platform.release()}",
        "load average": [round(load, 2) for load in os.getloadavg()],
    }


def describe_machine(info: Dict[str, Any]) -> str:
    loads = " ".join(f"{load:.2f}" for load in info["load average"])
    return (
        f"machine: {info['cores']} cores, {info['python']}, {info['kernel']}, load average {loads}"
    )


def table(results: Sequence[Figures], unavailable: Dict[str, str]) -> str:
    """The figures of every workload as an aligned text table."""
    header = ["metric", "runner", "median", "min", "max"]
    header += [f"x{name}" for name in BASELINES] + ["xref", "target", "result"]
    lines: List[str] = []
    for figures in results:
        rows = [header, *_rows(figures)]
        lines.append("")
        lines.append(_title(figures))
        lines.extend(_align(rows))
    for key, reason in unavailable.items():
        lines.append("")
        lines.append(f"({key}) not measured: {reason}")
    return "\n".join(lines)


def as_json(results: Sequence[Figures], unavailable: Dict[str, str]) -> Dict[str, Any]:
    """Every raw value, summary and verdict, for machines and later comparison."""
    return {
        "machine": machine(),
        "workloads": [_workload_json(figures) for figures in results],
        "unavailable": unavailable,
    }


def _title(figures: Figures) -> str:
    workload = figures.workload
    references = ", ".join(f"{name} {value:.3g} s" for name, value in workload.references.items())
    text = f"({workload.key}) {workload.title}"
    if references:
        text += f"  [xref: {references}]"
    return text


def _rows(figures: Figures) -> List[List[str]]:
    workload = figures.workload
    rows = []
    for metric, unit in workload.metrics.items():
        for trial in workload.trials:
            values = figures.series(trial.runner, metric)
            if not values:
                continue
            cells = [f"{metric} ({unit})", trial.runner]
            cells += [_number(v, unit) for v in _summary(values)]
            cells += [_ratio(figures.ratio(trial.runner, metric, b)) for b in BASELINES]
            cells.append(_ratio(_reference_ratio(figures, trial.runner, metric)))
            targets = [
                t for t in workload.targets if (t.runner, t.metric) == (trial.runner, metric)
            ]
            verdict_cells = [_target_cells(figures, t, unit) for t in targets] or [["", ""]]
            rows.append(cells + verdict_cells[0])
            rows.extend([""] * len(cells) + extra for extra in verdict_cells[1:])
    return rows


def _reference_ratio(figures: Figures, runner: str, metric: str) -> Optional[float]:
    references = list(figures.workload.references)
    return figures.ratio(runner, metric, references[0]) if references else None


def _target_cells(figures: Figures, target: Target, unit: str) -> List[str]:
    figure = figures.judge(target)
    prefix = "worst " if target.statistic == "max" else ""
    if target.versus is None:
        goal = f"{prefix}<= {_number(target.limit, unit)} {unit}"
        shown = "-" if figure is None else f"{_number(figure, unit)} {unit}"
    else:
        goal = f"{prefix}<= {target.limit:.2f}x {target.versus}"
        shown = _ratio(figure)
    return [goal, f"{figures.verdict(target)} ({shown})"]


def _summary(values: Sequence[float]) -> List[float]:
    return [statistics.median(values), min(values), max(values)]


def _number(value: float, unit: str) -> str:
    return f"{value:.{_DIGITS.get(unit, 3)}f}"


def _ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _align(rows: List[List[str]]) -> List[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    left = {0, 1, len(widths) - 2, len(widths) - 1}
    return [
        "  ".join(
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def _workload_json(figures: Figures) -> Dict[str, Any]:
    workload = figures.workload
    metrics: Dict[str, Any] = {}
    for metric, unit in workload.metrics.items():
        runners = {}
        for trial in workload.trials:
            values = figures.series(trial.runner, metric)
            if not values:
                continue
            median, low, high = _summary(values)
            runners[trial.runner] = {
                "values": values,
                "median": median,
                "min": low,
                "max": high,
                "ratios": {
                    versus: figures.ratio(trial.runner, metric, versus)
                    for versus in (*BASELINES, *workload.references)
                },
            }
        metrics[metric] = {"unit": unit, "runners": runners}
    return {
        "key": workload.key,
        "title": workload.title,
        "references": workload.references,
        "metrics": metrics,
        "targets": [
            {
                "runner": t.runner,
                "metric": t.metric,
                "limit": t.limit,
                "versus": t.versus,
                "statistic": t.statistic,
                "floor": t.floor,
                "figure": figures.judge(t),
                "verdict": figures.verdict(t),
            }
            for t in workload.targets
        ],
    }
