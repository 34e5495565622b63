"""The settings of a falsification run, as the legacy configuration named them."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .halting import StopOn
from .numbers import number_at_least, whole_number
from .sequential import (
    DEFAULT_ALPHA,
    DEFAULT_MAX_REPEATS,
    DEFAULT_TOLERANCE,
    check_alpha,
    check_tolerance,
    fewest_runs_to_decide,
)
from .setup import DEFAULT_SETUP_TIMEOUT, setup_problem
from .sizes import MAX_SIZE, MIN_LIMIT

#: The most runs of one hypothesis that one run may ask for.
MAX_REPEATS = 100
#: The verdict names ``stop_on`` accepts.
STOP_ON_VALUES = tuple(condition.value for condition in StopOn)
#: The ``repeats`` value that runs each hypothesis until its outcome is decided.
AUTO_REPEAT = "auto"


@dataclass
class FalsificationConfig:
    """Settings of a falsification run.

    Accepts every keyword of the legacy configuration (most of which only the legacy
    orchestrator read); the executor uses the test-execution group and the new settings below.
    """

    # Hypothesis management (legacy)
    max_hypotheses: int = 5
    min_hypotheses: int = 2
    require_falsifiability: bool = True
    # Ranking weights (legacy)
    probability_weight: float = 0.5
    impact_weight: float = 0.3
    complexity_weight: float = -0.2
    # Test execution
    test_timeout: float = 300
    min_parallel_time: float = 60
    test_command: str = "pytest"
    max_concurrent_tests: int = 5
    # Overhead timings in seconds (legacy; informative)
    worktree_creation_time: float = 8.0
    session_startup_time: float = 5.0
    environment_setup_time: float = 5.0
    cleanup_time: float = 3.0
    # Paths (legacy)
    project_root: str = ""
    output_dir: str = ""
    config_file: str = ""
    # Agent integration and session persistence (legacy; kept so old configs load)
    use_root_cause_analyst: bool = True
    use_sequential_thinking: bool = True
    use_quality_engineer: bool = True
    use_memory_mcp: bool = True
    session_prefix: str = "falsification"
    # New: how a run stops what overstays and how much output it keeps
    kill_grace: float = 2.0
    max_output_bytes: int = 1024 * 1024
    #: Write each script's kept output to a file once it is gone, and keep only an excerpt in
    #: its result (the plugin does; a library caller keeps all of it in memory by default).
    spill_output: bool = False
    #: The folder of those files (None or "": a temporary folder made at the first use).
    output_folder: Optional[str] = None
    # New: run each hypothesis several times; stop the run once a verdict is reached
    repeats: Union[int, str] = 1
    stop_on: Optional[str] = None
    # New: with repeats "auto", run until the pass rate is decided at error level ``alpha``
    alpha: float = DEFAULT_ALPHA
    flake_tolerance: float = DEFAULT_TOLERANCE
    max_repeats: int = DEFAULT_MAX_REPEATS
    #: Seconds after which no further attempt of one hypothesis starts (None: no budget).
    repeat_budget: Optional[float] = None
    # New: the run-wide setup step of each worktree (a hypothesis's metadata may set its own)
    setup_command: Optional[str] = None
    setup_timeout: float = DEFAULT_SETUP_TIMEOUT
    # New: fit the machine. Adaptive: max_concurrent_tests is a ceiling; start as many scripts
    # as usable CPUs, more while the CPUs hold them, none while free memory is below the floor
    # (bytes; None: a share of the machine's memory). A memory limit (bytes) per script tree.
    adaptive_concurrency: bool = False
    memory_free_floor: Optional[int] = None
    memory_limit: Optional[int] = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ``ValueError`` naming the first setting that is not valid: as it is built,
        and again before a run, since a legacy caller may set a field afterwards."""
        _require(
            number_at_least(self.test_timeout, 0, inclusive=False),
            f"test_timeout must be a number of seconds > 0, got {self.test_timeout!r}",
        )
        _require(
            whole_number(self.max_concurrent_tests, 1),
            f"max_concurrent_tests must be a whole number >= 1, got {self.max_concurrent_tests!r}",
        )
        _require(
            isinstance(self.adaptive_concurrency, bool),
            f"adaptive_concurrency must be True or False, got {self.adaptive_concurrency!r}",
        )
        _require(
            number_at_least(self.kill_grace, 0),
            f"kill_grace must be a number of seconds >= 0, got {self.kill_grace!r}",
        )
        _require(
            isinstance(self.max_output_bytes, int) and self.max_output_bytes >= 2,
            f"max_output_bytes must be a whole number >= 2, got {self.max_output_bytes!r}",
        )
        _require(
            self.repeats == AUTO_REPEAT or whole_number(self.repeats, 1, MAX_REPEATS),
            f"repeats must be a whole number from 1 to {MAX_REPEATS} or {AUTO_REPEAT!r}, "
            f"got {self.repeats!r}",
        )
        self._check_auto()
        _require(
            self.stop_on is None or self.stop_on in STOP_ON_VALUES,
            f"stop_on must be None or one of {', '.join(STOP_ON_VALUES)}, got {self.stop_on!r}",
        )
        names = ("setup_command", "setup_timeout")
        problem = setup_problem(self.setup_command, self.setup_timeout, names)
        _require(problem is None, f"{problem}")

        for name, least in (("memory_free_floor", 1), ("memory_limit", MIN_LIMIT)):
            value = getattr(self, name)
            _require(
                value is None or (whole_number(value, least, MAX_SIZE)),
                f"{name} must be None or a whole number of bytes from {least} to {MAX_SIZE}, "
                f"got {value!r}",
            )

    @property
    def auto_repeat(self) -> bool:
        """True when each hypothesis runs until its outcome is decided."""
        return self.repeats == AUTO_REPEAT

    def _check_auto(self) -> None:
        check_alpha(self.alpha)
        check_tolerance(self.flake_tolerance)
        _require(
            whole_number(self.max_repeats, 1, MAX_REPEATS),
            f"max_repeats must be a whole number from 1 to {MAX_REPEATS}, got {self.max_repeats!r}",
        )
        _require(
            self.repeat_budget is None or number_at_least(self.repeat_budget, 0, inclusive=False),
            f"repeat_budget must be None or a number of seconds > 0, got {self.repeat_budget!r}",
        )
        if not self.auto_repeat:
            return
        fewest = fewest_runs_to_decide(self.alpha, self.flake_tolerance)
        levels = f"alpha {self.alpha:g} and flake tolerance {self.flake_tolerance:g}"
        if fewest > MAX_REPEATS:
            raise ConflictingSettings(
                ("alpha", "flake_tolerance"),
                f"{levels} need at least {fewest} runs to decide, more than the {MAX_REPEATS} "
                "allowed: expected a larger alpha or flake tolerance",
            )
        if self.max_repeats < fewest:
            raise ConflictingSettings(
                ("max_repeats",),
                f"max_repeats {self.max_repeats} can never decide at {levels}: at least "
                f"{fewest} runs are needed",
            )

    @classmethod
    def from_dict(cls, config_dict: Mapping[str, Any]) -> FalsificationConfig:
        """Build from a mapping, ignoring keys this version does not know (as the legacy did)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in config_dict.items() if k in known})

    def to_dict(self) -> Dict[str, Any]:
        """Every setting as a plain dictionary."""
        return asdict(self)


class ConflictingSettings(ValueError):
    """Settings that are each valid but cannot hold together; ``fields`` names the ones to
    change."""

    def __init__(self, fields: Tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.fields = fields


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
