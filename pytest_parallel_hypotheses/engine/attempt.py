"""One attempt: the script of one hypothesis run once in its worktree, judged."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Optional

from ..core.config import FalsificationConfig
from ..core.models import TestExecutionResult
from ..core.results import oom_killed_result, script_result, unrunnable_result
from ..finding.layout import explain_spawn_error
from .events import TOLD_ELSEWHERE, LiveOutput, reporting_logger
from .machine import oom_kill_scope
from .memory import MemoryGuard
from .process import ProcessOutcome, run_script
from .runs import HypothesisRun
from .spill import OutputFiles
from .tree import Marker, ProcessTree
from .usage import ResourceSampler

logger = reporting_logger(__name__)


async def run_attempt(
    run: HypothesisRun,
    script: Path,
    *,
    number: int,
    config: FalsificationConfig,
    marker: Marker,
    base_env: Mapping[str, str],
    sampler: ResourceSampler,
    memory_guard: MemoryGuard,
    kind: Optional[str] = None,
    output_files: Optional[OutputFiles] = None,
    on_start: Optional[Callable[[LiveOutput], None]] = None,
) -> TestExecutionResult:
    """Run the script of ``run`` (the digest of its text: ``kind``) once; every process it
    starts carries ``marker``; ``on_start`` gets its output as it is printed, which goes to
    ``output_files`` when given (else it is kept in memory)."""
    hypothesis_id = run.hypothesis.id
    assert run.worktree is not None  # locate_script checked it
    assert marker.value is not None  # one script's marker names its run
    env = {
        **base_env,
        "HYPOTHESIS_ID": hypothesis_id,
        "HYPOTHESIS_WORKTREE": str(run.worktree),
        marker.name: marker.value,
    }
    timeout = run.timeout if run.timeout is not None else config.test_timeout
    logger.debug("starting %s (attempt %d) in %s", hypothesis_id, number, run.worktree)
    memory_limit = run.memory_limit if run.memory_limit is not None else config.memory_limit
    async with memory_guard.limited(memory_limit) as memory:
        outcome = await run_script(
            [str(script)],
            cwd=run.worktree,
            env=env,
            tree=ProcessTree(marker, enclosure=memory.enclosure),
            timeout=timeout,
            grace=config.kill_grace,
            max_output_bytes=config.max_output_bytes,
            sampler=sampler,
            demand_known=run.expected_cpus is not None,
            kind=kind,
            memory=memory,
            on_start=on_start,
            captures=None
            if output_files is None
            else output_files.captures(hypothesis_id, run.worktree_text, number),
        )
        oom_kills = memory.oom_kills_meanwhile() if _ended_by_itself(outcome) else 0
    outcome.close()
    if outcome.spawn_error is not None:
        problem = explain_spawn_error(script, outcome.spawn_error)
        logger.warning("%s: %s", hypothesis_id, problem, extra=TOLD_ELSEWHERE)
        return unrunnable_result(
            hypothesis_id,
            run.worktree_text,
            str(problem),
            exit_code=problem.exit_code,
            duration=outcome.duration,
        )
    result = script_result(
        hypothesis_id,
        run.worktree_text,
        exit_code=outcome.exit_code,
        timeout=timeout if outcome.timed_out else None,
        duration=outcome.duration,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        usage=outcome.usage,
        polarity=run.polarity,
        memory_stop=_memory_words(outcome),
        snapshot=outcome.snapshot,
    )
    if oom_kills:
        result = oom_killed_result(result, oom_kills, oom_kill_scope())
    logger.info(
        "%s (attempt %d): %s (exit %s, %.2fs)",
        hypothesis_id,
        number,
        result.result.value,
        result.exit_code,
        result.duration,
    )
    return result


def _memory_words(outcome: ProcessOutcome) -> Optional[str]:
    """What the script's memory did to it, for its error: the whole story, or a clause of
    the story of its deadline."""
    breach = outcome.memory_breach
    if breach is None:
        return None
    return breach.after_deadline() if outcome.timed_out else breach.describe()


def _ended_by_itself(outcome: ProcessOutcome) -> bool:
    """The script ran and ended with no deadline or limit of ours stopping it: an outcome
    that the kernel's OOM killer can have made (a test runner's killed worker fails a run,
    and ``! cmd`` passes when ``cmd`` is killed)."""
    return (
        outcome.exit_code is not None
        and not outcome.timed_out
        and outcome.memory_breach is None
        and outcome.spawn_error is None
    )
