"""The evidence benchmark's own arithmetic: the fixed N it compares with, and its simulation
(the full run is ``python -m benchmarks.evidence``; its figures are in docs/performance.md)."""

from __future__ import annotations

import random

from benchmarks.evidence import fixed_n, simulate


def test_a_fixed_n_for_a_deterministic_script_is_what_clopper_pearson_needs() -> None:
    # 0.025 ** (1 / 13) >= 0.75 > 0.025 ** (1 / 12): the two-sided 95% bound of all passes
    assert (fixed_n(1.0), fixed_n(0.0)) == ("13", "13")


def test_a_rate_on_the_tolerance_never_decides_within_the_limit() -> None:
    assert fixed_n(0.25) == ">1000"


def test_the_simulation_counts_the_runs_to_a_decision() -> None:
    used, decisions = simulate(1.0, 3, random.Random(0))
    assert (used, decisions) == ([15, 15, 15], {"passes": 3})
