"""What a finished hypothesis is told as: the verdict word, its headline and its failure text.

One place for the wording, so pytest's progress, failure sections, skip reasons and the
summary speak the same language.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Mapping

from ..core.classification import (
    CANNOT_TEST_EXIT,
    HypothesisStatus,
    TestResult,
    describe_exit,
    signal_meaning,
)
from ..core.models import TestExecutionResult
from ..finding.discovery import FoundHypothesis

#: Lines of each output stream shown under a failure.
TAIL_LINES = 20
#: Characters of each output stream shown at most, for very long lines.
TAIL_CHARS = 4000

_FIELD_WIDTH = 16
#: Bytes in a mebibyte, the unit memory is shown in.
MIB = 1024 * 1024


_COLOURS = {HypothesisStatus.FALSIFIED: "green", HypothesisStatus.SUPPORTED: "red"}


def verdict_word(status: HypothesisStatus) -> str:
    """FALSIFIED, SUPPORTED, INCONCLUSIVE, or NOT RUN for a hypothesis without a verdict."""
    return "NOT RUN" if status is HypothesisStatus.PENDING else status.value.upper()


def verdict_colour(status: HypothesisStatus) -> str:
    """The terminal colour of a verdict: green refuted, red supported, yellow undecided."""
    return _COLOURS.get(status, "yellow")


def headline(found: FoundHypothesis, result: TestExecutionResult) -> str:
    """One line: the hypothesis, its verdict and what the script did."""
    assert result.status is not None  # set when the result is built
    if result.status is HypothesisStatus.PENDING:
        return f"hypothesis {found.hypothesis_id} has no verdict: {what_happened(result)}"
    return (
        f"hypothesis {found.hypothesis_id} is {verdict_word(result.status)}: "
        f"{what_happened(result)}"
    )


def what_happened(result: TestExecutionResult) -> str:
    """The script's fate in a few words."""
    if result.flaky:
        counts = result.outcome_counts
        return (
            f"flaky: of {len(result.attempts)} attempts, {counts['pass']} passed and "
            f"{counts['fail']} failed"
        )
    if result.result is TestResult.PASS:
        return "the script passed (exit status 0)"
    if result.result is TestResult.FAIL:
        return f"the script failed ({describe_exit(result.exit_code)})"
    if result.result is TestResult.SKIP and result.exit_code == CANNOT_TEST_EXIT:
        return f"the script cannot test this here (exit status {CANNOT_TEST_EXIT})"
    if result.error_message:
        return result.error_message
    return f"{result.result.value} ({describe_exit(result.exit_code)})"


def failure_text(found: FoundHypothesis, result: TestExecutionResult) -> str:
    """The full story of a hypothesis for pytest's failure and error sections."""
    assert result.status is not None  # set when the result is built
    lines = [
        headline(found, result),
        _field("verdict", result.status.value),
        _field("classification", result.result.value),
        *_repeat_fields(result),
        _field("exit code", exit_code_text(result)),
        _field("duration", f"{result.duration:.2f}s"),
        _field("confidence", f"{result.confidence:.2f}"),
        _field("worktree", worktree_line(found)),
        _field("script", str(found.script)),
    ]
    if result.error_message and result.error_message != what_happened(result):
        lines.append(_field("message", result.error_message))
    lines += output_tail("stderr", result.stderr, result.stderr_bytes, result.stderr_truncated)
    lines += output_tail("stdout", result.stdout, result.stdout_bytes, result.stdout_truncated)
    return "\n".join(lines)


def exit_code_text(result: TestExecutionResult) -> str:
    """The exit code, with what the number alone does not say: that our deadline stopped the
    script, or the signal that ended it."""
    if result.timed_out_after is not None:
        return f"{result.exit_code} (stopped at the {result.timed_out_after:g}s deadline)"
    meaning = signal_meaning(result.exit_code)
    return str(result.exit_code) if meaning is None else f"{result.exit_code} ({meaning})"


def attempts_text(counts: Mapping[str, int]) -> str:
    """``2 pass, 1 fail``: how many attempts had each outcome that occurred."""
    return ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count)


def _repeat_fields(result: TestExecutionResult) -> List[str]:
    """For a script run several times: its attempts, and which one the details below are."""
    if len(result.attempts) <= 1:
        return []
    return [
        _field("attempts", f"{len(result.attempts)}: {attempts_text(result.outcome_counts)}"),
        _field("shown", f"the exit code and output of the last {result.result.value} attempt"),
    ]


def worktree_line(found: FoundHypothesis) -> str:
    """The worktree with its branch and abbreviated HEAD."""
    branch = f"branch {found.branch}" if found.branch else "detached HEAD"
    head = f", HEAD {found.head[:12]}" if found.head else ""
    return f"{found.worktree} ({branch}{head})"


def _field(name: str, value: str) -> str:
    return f"  {name + ':':<{_FIELD_WIDTH}}{value}"


def output_tail(name: str, text: str, total_bytes: int, truncated: bool) -> List[str]:
    """The last lines of one output stream under a heading that says how much they are."""
    if not text:
        return [f"---------- {name}: (empty) ----------"]
    lines = text.rstrip("\n").splitlines()
    shown = "\n".join(lines[-TAIL_LINES:])[-TAIL_CHARS:]
    scope = f"last {TAIL_LINES} of {len(lines)} lines" if len(lines) > TAIL_LINES else "all"
    if truncated:
        scope += f"; the middle of {total_bytes} bytes was not kept"
    return [f"---------- {name} ({scope}) ----------", shown]


def worktree_label(rootpath: Path, worktree: Path) -> str:
    """The worktree's path from the rootdir with ``/`` separators (``.`` for the rootdir)."""
    return Path(os.path.relpath(worktree, rootpath)).as_posix()
