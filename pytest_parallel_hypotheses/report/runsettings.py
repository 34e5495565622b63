"""The settings that shape a run, listed once for every report that shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from ..core.config import FalsificationConfig
from ..core.sizes import format_size
from ..engine.admission import plan_adaptive
from ..engine.machine import open_files_ceiling
from ..engine.memory import MemoryGuard


@dataclass(frozen=True)
class RunSetting:
    """One setting: its key in the JSON report, its value, and its words in the terminal
    header (None where the header leaves it out because it has its usual value)."""

    key: str
    value: Any
    shown: Optional[str]


def run_settings(engine: FalsificationConfig, per_xdist_worker: bool = False) -> List[RunSetting]:
    """The engine's settings that change how a run goes, in the order they are shown;
    ``per_xdist_worker`` where pytest-xdist workers run the scripts, one at a time each."""
    return [
        *_concurrency(engine, per_xdist_worker),
        RunSetting("per_xdist_worker", per_xdist_worker, None),
        RunSetting("test_timeout", engine.test_timeout, f"timeout {engine.test_timeout:g}s"),
        RunSetting("kill_grace", engine.kill_grace, f"grace {engine.kill_grace:g}s"),
        RunSetting(
            "max_output_bytes",
            engine.max_output_bytes,
            f"max output {engine.max_output_bytes} bytes per stream",
        ),
        RunSetting(
            "repeats", engine.repeats, None if engine.repeats == 1 else f"repeat {engine.repeats}"
        ),
        *_auto_settings(engine),
        RunSetting(
            "stop_on",
            engine.stop_on,
            None if engine.stop_on is None else f"stop on {engine.stop_on}",
        ),
        RunSetting(
            "setup_command",
            engine.setup_command,
            None if engine.setup_command is None else f"setup {engine.setup_command!r}",
        ),
        RunSetting(
            "setup_timeout",
            engine.setup_timeout,
            None if engine.setup_command is None else f"setup timeout {engine.setup_timeout:g}s",
        ),
        _memory_limit(engine.memory_limit),
    ]


#: What the header says of a free-memory floor given where nothing reads it.
MEMFREE_UNUSED = "--hypotheses-memfree unused (it holds back auto alone, without xdist)"


def _concurrency(engine: FalsificationConfig, per_xdist_worker: bool) -> List[RunSetting]:
    """A fixed number of workers, or what ``auto`` chose on this machine and why (its
    ceiling there, not as a number of workers: no run under ``auto`` keeps that many). Under
    xdist a number stays the most at once across the workers, and ``auto`` does not apply:
    the number of xdist workers is the limit."""
    # a free-memory floor given holds back auto alone: say so where it does nothing
    unused = "" if engine.memory_free_floor is None else f", {MEMFREE_UNUSED}"
    if not engine.adaptive_concurrency:
        each = ", one script at a time per xdist worker" if per_xdist_worker else ""
        ceiling = open_files_ceiling()
        if not per_xdist_worker and engine.max_concurrent_tests > ceiling:
            each = f" (more than the {ceiling} the open-files limit holds: some may not start)"
        return [
            RunSetting(
                "max_concurrent_tests",
                engine.max_concurrent_tests,
                f"workers {engine.max_concurrent_tests}{each}{unused}",
            ),
            RunSetting("adaptive_concurrency", None, None),
        ]
    if per_xdist_worker:
        return [
            RunSetting(
                "max_concurrent_tests", None, f"workers: one script per xdist worker{unused}"
            ),
            RunSetting("adaptive_concurrency", None, None),
        ]
    plan = plan_adaptive(engine.max_concurrent_tests, engine.memory_free_floor)
    chosen = {
        "cpus": plan.cpus.count,
        "reason": plan.cpus.reason,
        "ceiling": plan.ceiling,
        "memory_free_floor": plan.memfree,
    }
    return [
        RunSetting("max_concurrent_tests", None, None),
        RunSetting("adaptive_concurrency", chosen, plan.describe()),
    ]


def _memory_limit(limit: Optional[int]) -> RunSetting:
    """The memory limit of each script's tree, and what enforces it here."""
    if limit is None:
        return RunSetting("memory_limit", None, None)
    guard = MemoryGuard.for_this_process(limits=True)
    return RunSetting(
        "memory_limit",
        {"bytes": limit, "enforcement": guard.kind},
        f"memory limit {format_size(limit)} per script tree, {guard.describe()}",
    )


def memory_enforcement() -> str:
    """What enforces a memory limit on this machine: ``enforced by the kernel (cgroup v2 ...)``
    or by a watchdog, and why."""
    return MemoryGuard.for_this_process(limits=True).describe()


def _auto_settings(engine: FalsificationConfig) -> List[RunSetting]:
    """What ``repeat=auto`` decides with; in the header only when it is on."""
    auto = engine.auto_repeat
    budget = engine.repeat_budget
    return [
        RunSetting("alpha", engine.alpha, f"alpha {engine.alpha:g}" if auto else None),
        RunSetting(
            "flake_tolerance",
            engine.flake_tolerance,
            f"flake tolerance {engine.flake_tolerance:g}" if auto else None,
        ),
        RunSetting(
            "max_repeats",
            engine.max_repeats,
            f"at most {engine.max_repeats} runs" if auto else None,
        ),
        RunSetting(
            "repeat_budget",
            budget,
            f"budget {budget:g}s per hypothesis" if auto and budget is not None else None,
        ),
    ]


def header_words(engine: FalsificationConfig, per_xdist_worker: bool = False) -> str:
    """The settings as the terminal header shows them."""
    settings = run_settings(engine, per_xdist_worker)
    return ", ".join(setting.shown for setting in settings if setting.shown)
