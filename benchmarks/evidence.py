"""Evidence benchmarks: ``python -m benchmarks.evidence [--quick]``.

1. Runs used by ``repeat=auto`` for scripts of known pass rates, simulated (many seeded
   scripts) and real (shell scripts drawing from ``/dev/urandom``), against the fixed N that
   gives the same guarantee: the fewest runs after which a Clopper-Pearson interval at the
   same level decides the median script of that rate (valid only if nobody peeks before N).
2. Time to all verdicts after editing one of 10 hypotheses whose scripts take 2 s each, with
   and without ``--hypotheses-reuse`` (target: at most the edited script's time plus 10%).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, HypothesisRun, TestExecutor
from pytest_parallel_hypotheses.core.classification import TestResult
from pytest_parallel_hypotheses.core.sequential import (
    DEFAULT_ALPHA,
    DEFAULT_TOLERANCE,
    Decision,
    Evidence,
)

RATES = (1.0, 0.0, 0.1, 0.3, 0.5)
#: The cap of the simulation: high, to see how many runs a decision takes.
SIMULATION_CAP = 100
#: The largest fixed N looked at.
FIXED_LIMIT = 1000


def simulate(rate: float, scripts: int, rng: random.Random) -> Tuple[List[int], Dict[str, int]]:
    """Runs used and decisions reached by ``scripts`` simulated scripts of pass rate ``rate``."""
    used: List[int] = []
    decisions: Dict[str, int] = {}
    for _ in range(scripts):
        evidence = Evidence(0, 0)
        while evidence.decision is Decision.UNDECIDED and evidence.runs < SIMULATION_CAP:
            outcome = TestResult.PASS if rng.random() < rate else TestResult.FAIL
            evidence = evidence.add(outcome)
        used.append(evidence.runs)
        decisions[evidence.decision.value] = decisions.get(evidence.decision.value, 0) + 1
    return used, decisions


def fixed_n(rate: float, alpha: float = DEFAULT_ALPHA, tolerance: float = DEFAULT_TOLERANCE) -> str:
    """The fewest fixed runs whose Clopper-Pearson interval (level ``alpha``) decides the
    median script of this rate: a doubling search, then bisection (more runs only narrow
    the interval)."""
    if not _decides(FIXED_LIMIT, rate, alpha, tolerance):
        return f">{FIXED_LIMIT}"
    low, high = 0, 1
    while not _decides(high, rate, alpha, tolerance):
        low, high = high, min(2 * high, FIXED_LIMIT)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _decides(middle, rate, alpha, tolerance) else (middle, high)
    return str(high)


def _decides(n: int, rate: float, alpha: float, tolerance: float) -> bool:
    low, high = _clopper_pearson(round(rate * n), n, alpha)
    return low >= 1 - tolerance or high <= tolerance or tolerance < low <= high < 1 - tolerance


def _clopper_pearson(passes: int, n: int, alpha: float) -> Tuple[float, float]:
    low = 0.0 if passes == 0 else _root(lambda p: 1 - alpha / 2 - _at_most(passes - 1, n, p))
    high = 1.0 if passes == n else _root(lambda p: alpha / 2 - _at_most(passes, n, p))
    return low, high


def _at_most(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), summed in log space so large n does not underflow."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    return sum(
        math.exp(base - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        for i in range(k + 1)
    )


def _root(function: Callable[[float], float]) -> float:
    """Where ``function``, rising from negative to positive on [0, 1], crosses 0."""
    low, high = 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if function(middle) < 0 else (low, middle)
    return (low + high) / 2


SCRIPT = """#!/bin/sh
n=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
[ "$n" -lt {threshold} ] && exit 0
exit 1
"""


def real_runs(rate: float, scripts: int, folder: Path) -> List[int]:
    """Runs used by ``repeat=auto`` for real scripts that pass with probability ``rate``."""
    folder.mkdir(parents=True)
    script_dir = folder / ".falsification"
    script_dir.mkdir()
    runs = []
    for index in range(scripts):
        script = script_dir / f"test_h{index}.sh"
        script.write_text(SCRIPT.format(threshold=round(rate * 65536)))
        script.chmod(0o755)
        runs.append(HypothesisRun(Hypothesis(f"h{index}", "bench"), folder))
    config = FalsificationConfig(repeats="auto", max_repeats=SIMULATION_CAP, test_timeout=30)
    results = TestExecutor(config).execute_parallel(runs)
    return [len(result.attempts) for result in results]


def runs_table(scripts: int, real_scripts: int, scratch: Path) -> List[str]:
    rng = random.Random(16)
    lines = [
        f"runs used by repeat=auto (alpha {DEFAULT_ALPHA}, tolerance {DEFAULT_TOLERANCE}, "
        f"cap {SIMULATION_CAP}); simulated: {scripts} scripts per rate; real: {real_scripts}",
        f"{'pass rate':>9}  {'median':>6}  {'p90':>4}  {'max':>4}  {'real median':>11}  "
        f"{'fixed N':>7}  decisions (simulated)",
    ]
    for rate in RATES:
        used, decisions = simulate(rate, scripts, rng)
        real = real_runs(rate, real_scripts, scratch / f"rate-{rate}")
        p90 = sorted(used)[int(0.9 * (len(used) - 1))]
        spread = ", ".join(f"{name} {count}" for name, count in sorted(decisions.items()))
        lines.append(
            f"{rate:>9.2f}  {statistics.median(used):>6g}  {p90:>4}  {max(used):>4}  "
            f"{statistics.median(real):>11g}  {fixed_n(rate):>7}  {spread}"
        )
    return lines


def make_repository(folder: Path, hypotheses: int, seconds: float) -> Path:
    repo = folder / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("bench\n")
    (repo / ".falsification").mkdir()
    for index in range(hypotheses):
        _write(repo, f"h{index}", f"sleep {seconds}; exit 1")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "x")
    return repo


def _write(repo: Path, name: str, body: str) -> None:
    script = repo / ".falsification" / f"test_{name}.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


REUSE = "--hypotheses-reuse=yes"


def _pytest(repo: Path, *args: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--hypotheses={repo}",
            *list(args),
        ],
        cwd=repo.parent,
        capture_output=True,
        check=False,
    )
    return time.monotonic() - started


def reuse_table(hypotheses: int, seconds: float, repeats: int, scratch: Path) -> List[str]:
    """Time pytest after editing one script, with and without reuse, against a run where
    every verdict is reused: the difference is what the edit costs on top of pytest itself."""
    repo = make_repository(scratch / "reuse", hypotheses, seconds)
    times: Dict[Tuple[str, str], List[float]] = {}
    edits = 0
    for _ in range(repeats):
        for workers in ("auto", "1"):
            option = f"--hypotheses-workers={workers}"
            _pytest(repo, REUSE, option)  # every verdict stored
            times.setdefault((workers, "all reused"), []).append(_pytest(repo, REUSE, option))
            for reuse in ("yes", "no"):
                edits += 1
                _write(repo, "h0", f"sleep {seconds}; exit {edits % 2}")
                elapsed = _pytest(repo, f"--hypotheses-reuse={reuse}", option)
                times.setdefault((workers, f"edited, reuse {reuse}"), []).append(elapsed)
    lines = [
        f"time to all verdicts after editing 1 of {hypotheses} hypotheses of {seconds:g} s "
        f"each (median wall of {repeats}; target: edited with reuse <= all reused + "
        f"{1.1 * seconds:g} s)",
        f"{'workers':>7}  {'run':<18}  {'wall':>7}  {'- all reused':>12}",
    ]
    for workers in ("auto", "1"):
        base = statistics.median(times[(workers, "all reused")])
        for run in ("all reused", "edited, reuse yes", "edited, reuse no"):
            wall = statistics.median(times[(workers, run)])
            verdict = ""
            if run == "edited, reuse yes":
                verdict = "  met" if wall - base <= 1.1 * seconds else "  missed"
            lines.append(f"{workers:>7}  {run:<18}  {wall:>6.2f}s  {wall - base:>11.2f}s{verdict}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.evidence", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, once: seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pph-evidence-") as scratch:
        folder = Path(scratch)
        if args.quick:
            lines = runs_table(20, 1, folder) + reuse_table(3, 0.2, 1, folder)
        else:
            lines = runs_table(1000, 5, folder) + reuse_table(10, 2.0, 3, folder)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
