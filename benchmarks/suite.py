"""What a workload is, how it is measured (interleaved repeats) and how its targets are judged.

Runners of one workload are run in turn within each repeat, alternating the order between
repeats (A B C, C B A, ...), so slow drift of a busy machine hits every runner alike. A ratio
between two runners is the median of their per-repeat ratios, which cancels that drift again.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

#: One repeat of one runner: metric name -> value.
Measurement = Dict[str, float]


class Unavailable(Exception):
    """A workload that cannot run here (e.g. the plugin it measures is not installed yet)."""


@dataclass(frozen=True)
class Trial:
    """One runner on one workload; each call of ``run`` is one repeat.

    ``repeats`` caps the repeats of a costly runner whose figure does not vary (e.g. a
    baseline that buffers a whole gigabyte); ratios pair it with the first repeats of others.
    """

    runner: str
    run: Callable[[], Measurement]
    repeats: Optional[int] = None


@dataclass(frozen=True)
class Target:
    """``runner``'s ``metric`` must be <= ``limit``, either as a ratio to ``versus`` (a baseline
    runner or a reference value of the workload) or, when ``versus`` is None, as is.

    ``statistic`` says which repeat counts: the median, or the worst for a guarantee that
    must hold every time. ``floor`` is a value the true figure cannot go below (a cost is not
    negative): a repeat below it shows that noise swamped the measurement.
    """

    runner: str
    metric: str
    limit: float
    versus: Optional[str] = None
    statistic: str = "median"
    floor: Optional[float] = None


@dataclass
class Workload:
    """A benchmark: how to run it and what it should achieve.

    ``metrics`` maps each metric name to its unit, in display order, the primary metric
    first; ``references`` holds ideal values of the primary metric (ideal time, optimal
    makespan, a deadline) that its figures are compared with.
    """

    key: str
    title: str
    trials: List[Trial]
    metrics: Dict[str, str]
    references: Dict[str, float] = field(default_factory=dict)
    targets: List[Target] = field(default_factory=list)
    repeats: int = 3

    @property
    def primary_metric(self) -> str:
        return next(iter(self.metrics))


@dataclass
class Figures:
    """Every value measured for one workload: ``values[runner][metric]`` in repeat order."""

    workload: Workload
    values: Dict[str, Dict[str, List[float]]]

    def series(self, runner: str, metric: str) -> List[float]:
        return self.values.get(runner, {}).get(metric, [])

    def ratio(
        self, runner: str, metric: str, versus: str, statistic: str = "median"
    ) -> Optional[float]:
        """``runner`` over ``versus``: per repeat, then summarised by ``statistic``.

        ``versus`` is a baseline runner (paired with the same repeat) or a reference value;
        None when there is nothing to divide by.
        """
        mine = self.series(runner, metric)
        if versus in self.workload.references:
            if metric != self.workload.primary_metric:
                return None  # references are values of the primary metric only
            theirs = [self.workload.references[versus]] * len(mine)
        else:
            theirs = self.series(versus, metric)
        pairs = list(zip(mine, theirs))
        if not pairs or not all(b for _, b in pairs):
            return None
        return _summarise([a / b for a, b in pairs], statistic)

    def judge(self, target: Target) -> Optional[float]:
        """The figure a target is judged on: a ratio, or the metric itself."""
        if target.versus is not None:
            return self.ratio(target.runner, target.metric, target.versus, target.statistic)
        values = self.series(target.runner, target.metric)
        return _summarise(values, target.statistic) if values else None

    def verdict(self, target: Target) -> str:
        """PASS or MISS; NOISY when a repeat fell below the target's floor."""
        figure = self.judge(target)
        values = self.series(target.runner, target.metric)
        if target.floor is not None and any(value < target.floor for value in values):
            return "NOISY"
        return "PASS" if figure is not None and figure <= target.limit + 1e-12 else "MISS"


def _summarise(values: Sequence[float], statistic: str) -> float:
    return max(values) if statistic == "max" else statistics.median(values)


def measure(
    workload: Workload, repeats: int, progress: Callable[[str], None] = lambda _: None
) -> Figures:
    """Run every trial ``repeats`` times, interleaved, and collect the values."""
    values: Dict[str, Dict[str, List[float]]] = {t.runner: {} for t in workload.trials}
    for repeat in range(repeats):
        order: Sequence[Trial] = workload.trials
        if repeat % 2:
            order = list(reversed(workload.trials))
        for trial in order:
            if trial.repeats is not None and repeat >= trial.repeats:
                continue
            progress(f"({workload.key}) repeat {repeat + 1}/{repeats}: {trial.runner}")
            for metric, value in trial.run().items():
                values[trial.runner].setdefault(metric, []).append(value)
    return Figures(workload, values)
