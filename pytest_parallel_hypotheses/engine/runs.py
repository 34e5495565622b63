"""What one run is asked to test: a hypothesis in a worktree, with its deadline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Set, Tuple, Union

from ..core.classification import Polarity
from ..core.models import Hypothesis
from ..core.numbers import number_at_least, whole_number
from ..core.sequential import Evidence
from ..core.setup import setup_problem
from ..core.sizes import MAX_SIZE, MIN_LIMIT
from ..finding.layout import PathLike, config_path, is_valid_id
from ..finding.metadata import MetadataError, read_metadata

#: Setup steps as (command, or None for the config's; timeout in seconds, or None for the
#: config's).
SetupSteps = Tuple[Tuple[Optional[str], Optional[float]], ...]


@dataclass(frozen=True)
class HypothesisRun:
    """One hypothesis to test in one worktree, with its own deadline if it has one.

    The legacy ``(hypotheses, worktrees)`` form maps each id to one worktree; runs let the same
    id be tested in several worktrees, as the pytest plugin does. ``expected_duration`` (for
    example measured by an earlier run) decides the start order when not every script can
    start at once; without it the hypothesis's ``estimated_test_time`` does, if set.
    ``expected_cpus`` (also measured by an earlier run) keeps a script that keeps CPUs busy
    from starting under ``auto`` until the CPUs hold what it wants, lets one known to be idle
    pass those waiting for the CPUs, and keeps the script's demand out of what the scripts
    not known are expected to want. ``setup`` (else the config's ``setup_command``) runs at the
    worktree's root before the first attempt, within ``setup_timeout`` (else the config's);
    ``polarity`` says whether the script is written to disprove the hypothesis (the default)
    or to confirm it.
    """

    hypothesis: Hypothesis
    worktree: Optional[Path]
    timeout: Optional[float] = None
    expected_duration: Optional[float] = None
    #: Runs of an earlier session on the same inputs, which new runs add to under
    #: ``repeats="auto"`` (from the verdict cache).
    prior: Optional[Evidence] = None
    setup: Optional[str] = None
    setup_timeout: Optional[float] = None
    polarity: Polarity = Polarity.DISPROVE
    #: The most resident memory, in bytes, the script's whole tree may use (None: the run's).
    memory_limit: Optional[int] = None
    #: The setup steps of the hypotheses of the same worktree, this one's included, beyond
    #: those of the runs handed to the engine with this one (a pytest-xdist worker is handed
    #: one run at a time). They change the worktree this script tests, so they all run
    #: before it; its result carries its own step, or the one that failed.
    worktree_steps: SetupSteps = ()
    #: How many CPUs the script kept busy in an earlier run (with what it waited for them):
    #: under ``auto``, a script known to want several starts only when the CPUs hold it, and
    #: one known to be idle whenever they are not beyond their count.
    expected_cpus: Optional[float] = None

    def __post_init__(self) -> None:
        if self.timeout is not None and not number_at_least(self.timeout, 0, inclusive=False):
            raise ValueError(
                f"timeout of hypothesis {self.hypothesis.id!r} must be a number of seconds "
                f"> 0, got {self.timeout!r}"
            )
        if self.memory_limit is not None and not whole_number(
            self.memory_limit, MIN_LIMIT, MAX_SIZE
        ):
            raise ValueError(
                f"memory limit of hypothesis {self.hypothesis.id!r} must be a whole number of "
                f"bytes from {MIN_LIMIT} (1 MiB) to {MAX_SIZE}, got {self.memory_limit!r}"
            )
        if self.expected_cpus is not None and not number_at_least(self.expected_cpus, 0):
            raise ValueError(
                f"expected CPUs of hypothesis {self.hypothesis.id!r} must be a number >= 0, "
                f"got {self.expected_cpus!r}"
            )
        if self.expected_duration is not None and not number_at_least(self.expected_duration, 0):
            raise ValueError(
                f"expected duration of hypothesis {self.hypothesis.id!r} must be a number of "
                f"seconds >= 0, got {self.expected_duration!r}"
            )
        problem = setup_problem(self.setup, self.setup_timeout)
        if problem is not None:
            raise ValueError(f"{problem} for hypothesis {self.hypothesis.id!r}")
        if not isinstance(self.polarity, Polarity):
            raise ValueError(
                f"polarity of hypothesis {self.hypothesis.id!r} must be a Polarity, "
                f"got {self.polarity!r}"
            )

    @property
    def planned_duration(self) -> Optional[float]:
        """The duration to plan the start order with, or None when nothing is known."""
        if self.expected_duration is not None:
            return self.expected_duration
        estimate = self.hypothesis.estimated_test_time
        return estimate if estimate > 0 else None

    @property
    def worktree_text(self) -> str:
        """The worktree as results name it (empty when there is none)."""
        return "" if self.worktree is None else str(self.worktree)

    @property
    def key(self) -> Tuple[str, str]:
        """How results name this run: (worktree, hypothesis id)."""
        return (self.worktree_text, self.hypothesis.id)


RunInput = Union[Hypothesis, HypothesisRun]


def plan(hypotheses: Iterable[RunInput], worktrees: Mapping[str, PathLike]) -> List[HypothesisRun]:
    """Turn the caller's input into runs, as their worktrees' metadata files ask (see
    :func:`run_in`), refusing duplicates before anything starts."""
    runs = [
        item if isinstance(item, HypothesisRun) else run_in(item, worktrees.get(item.id))
        for item in hypotheses
    ]
    seen: Set[Tuple[str, str]] = set()
    for run in runs:
        key = (str(run.worktree), str(run.hypothesis.id).casefold())
        if key in seen:
            raise ValueError(
                f"hypothesis id {run.hypothesis.id!r} is given twice for the same worktree "
                "(ids are compared ignoring case, as file names are on some systems)"
            )
        seen.add(key)
    return runs


def run_in(hypothesis: Hypothesis, worktree: Optional[PathLike]) -> HypothesisRun:
    """The run of ``hypothesis`` in ``worktree`` as its metadata file there asks for (its
    deadline, setup step, polarity and memory limit), as ``pytest --hypotheses`` runs it: a
    worktree made by ``pytest-hypotheses new`` says there that its script confirms a fix, and
    a caller that ignored it would read the fix's success as the hypothesis refuted. The
    hypothesis itself is the caller's. Raises ``ValueError`` naming the file when it cannot be
    used."""
    path = as_path(worktree)
    if path is None or not is_valid_id(hypothesis.id):
        return HypothesisRun(hypothesis, path)  # the run reports what is wrong with it
    try:
        metadata = read_metadata(config_path(path, hypothesis.id), hypothesis.id)
    except MetadataError as error:
        raise ValueError(str(error)) from None
    return HypothesisRun(
        hypothesis,
        path,
        timeout=metadata.timeout,
        setup=metadata.setup,
        setup_timeout=metadata.setup_timeout,
        polarity=metadata.polarity,
        memory_limit=metadata.memory,
    )


def as_path(worktree: Optional[PathLike]) -> Optional[Path]:
    return None if worktree is None else Path(worktree)
