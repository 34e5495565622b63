"""The settings that shape a run, listed once for every report that shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from ..core.config import FalsificationConfig


@dataclass(frozen=True)
class RunSetting:
    """One setting: its key in the JSON report, its value, and its words in the terminal
    header (None where the header leaves it out because it has its usual value)."""

    key: str
    value: Any
    shown: Optional[str]


def run_settings(engine: FalsificationConfig) -> List[RunSetting]:
    """The engine's settings that change how a run goes, in the order they are shown."""
    return [
        RunSetting(
            "max_concurrent_tests",
            engine.max_concurrent_tests,
            f"workers {engine.max_concurrent_tests}",
        ),
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
    ]


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


def header_words(engine: FalsificationConfig) -> str:
    """The settings as the terminal header shows them."""
    return ", ".join(setting.shown for setting in run_settings(engine) if setting.shown)


def _unless(usual: bool, words: str, value: object) -> Optional[str]:
    return None if usual else f"{words} {value}"
