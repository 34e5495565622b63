"""What a finished hypothesis is told as: the verdict word, its headline and its failure text.

One place for the wording, so pytest's progress, failure sections, skip reasons and the
summary speak the same language.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from ..core.classification import (
    CANNOT_TEST_EXIT,
    HypothesisStatus,
    Polarity,
    TestResult,
    describe_exit,
    signal_meaning,
)
from ..core.models import TestExecutionResult
from ..finding.discovery import FoundHypothesis
from .tested import code_summary, code_warnings

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


def verdict_colour(status: HypothesisStatus, polarity: Polarity = Polarity.DISPROVE) -> str:
    """The terminal colour of a verdict, that of its pytest outcome: for a script written to
    disprove, green refuted and red supported; for one written to confirm, the other way
    round; yellow undecided."""
    if polarity is Polarity.CONFIRM:
        status = _CONFIRMED_AS.get(status, status)
    return _COLOURS.get(status, "yellow")


_CONFIRMED_AS = {
    HypothesisStatus.SUPPORTED: HypothesisStatus.FALSIFIED,
    HypothesisStatus.FALSIFIED: HypothesisStatus.SUPPORTED,
}


#: How the reason a hypothesis was cut short ends when its worktree's setup step was running:
#: its script had not started, and keeps no output (the step's is not the script's).
DURING_SETUP = "while its worktree's setup step ran"


def is_cut_short(record: Mapping[str, Any]) -> bool:
    """A hypothesis whose script (or its worktree's setup step) started and was stopped
    before its end: no verdict, but what the script printed and how long it ran."""
    return _pending_because(record, "stopped because")


def is_started(record: Mapping[str, Any]) -> bool:
    """False for a hypothesis a stop kept from starting: it ran no attempt to draw."""
    return not _pending_because(record, "not started because")


def _pending_because(record: Mapping[str, Any], prefix: str) -> bool:
    """Whether ``record`` has no verdict, for the reason its message starts with ``prefix``."""
    message = record.get("error_message") or ""
    return record["status"] == HypothesisStatus.PENDING.value and message.startswith(prefix)


def record_verdict_word(record: Mapping[str, Any]) -> str:
    """The record's verdict word; CUT SHORT for a script stopped before its end."""
    return "CUT SHORT" if is_cut_short(record) else verdict_word(HypothesisStatus(record["status"]))


def record_polarity(record: Mapping[str, Any]) -> Polarity:
    """A record's polarity; a report written before polarities existed means disprove."""
    return Polarity(record.get("polarity") or Polarity.DISPROVE.value)


def record_colour(record: Mapping[str, Any]) -> str:
    """The colour of a record's verdict, as :func:`verdict_colour` gives it."""
    return verdict_colour(HypothesisStatus(record["status"]), record_polarity(record))


def headline(result: TestExecutionResult) -> str:
    """One line: the hypothesis, its verdict and what the script did."""
    assert result.status is not None  # set when the result is built
    if result.status is HypothesisStatus.PENDING:
        return f"hypothesis {result.hypothesis_id} has no verdict: {what_happened(result)}"
    return (
        f"hypothesis {result.hypothesis_id} is {verdict_word(result.status)}: "
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
    if result.evidence is not None and is_undecided(result):
        runs = result.evidence.runs
        return (
            f"the pass rate is undecided after {runs} run{'s' if runs != 1 else ''} "
            "(the cap or the time budget came first)"
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


def is_undecided(result: TestExecutionResult) -> bool:
    """An inconclusive verdict although the runs passed or failed: repeats that stopped
    (the cap, the budget) before the pass rate was decided."""
    genuine = result.result in (TestResult.PASS, TestResult.FAIL)
    return genuine and result.status is HypothesisStatus.INCONCLUSIVE


def failure_text(found: FoundHypothesis, result: TestExecutionResult) -> str:
    """The full story of a hypothesis for pytest's failure and error sections."""
    assert result.status is not None  # set when the result is built
    lines = [
        headline(result),
        _field("verdict", result.status.value),
        _field("classification", result.result.value),
        _field("polarity", polarity_text(result.polarity)),
        *_repeat_fields(result),
        _field("exit code", exit_code_text(result)),
        _field("duration", f"{result.duration:.2f}s"),
        _field("confidence", f"{result.confidence:.2f}"),
        *_evidence_fields(result),
        _field("worktree", worktree_line(found)),
        _field("script", str(found.script)),
        *_setup_fields(result.setup),
        *_code_fields(result),
    ]
    if result.error_message and result.error_message != what_happened(result):
        lines.append(_field("message", result.error_message))
    return "\n".join(lines + _output_lines(result))


def crash_text(result: TestExecutionResult) -> str:
    """The error text of a hypothesis whose runner died under it: why, how long its script
    had run, and what it had printed."""
    lines = [result.error_message, _field("duration", f"{result.duration:.2f}s")]
    return "\n".join(lines + _output_lines(result))


def _output_lines(result: TestExecutionResult) -> List[str]:
    """The last lines of stderr and of stdout, each with the file that keeps all of it (none
    for a silent stream, whose file beside a report, or under xdist, is empty)."""
    lines = output_tail("stderr", result.stderr, result.stderr_bytes, result.stderr_truncated)
    lines += kept_file_line("stderr", result.stderr_file if result.stderr_bytes else None)
    lines += output_tail("stdout", result.stdout, result.stdout_bytes, result.stdout_truncated)
    return lines + kept_file_line("stdout", result.stdout_file if result.stdout_bytes else None)


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


#: What a single run cannot tell, said wherever its result is shown.
ONE_RUN_NOTE = "one run says nothing about flakiness"


def evidence_words(evidence: Optional[Mapping[str, Any]], runs: int) -> str:
    """``passes: 15 runs (15 pass, 0 fail), pass rate 0.75-1.00 at 95%``; for a single run
    without evidence, ``1 run``."""
    if evidence is None:
        return f"{runs} run" if runs <= 1 else f"{runs} runs"
    if not evidence["runs"]:  # timeouts and errors tell nothing of a pass rate
        return f"{evidence['decision']}: no run passed or failed"
    low, high = evidence["interval"]
    return (
        f"{evidence['decision']}: {evidence['runs']} runs ({evidence['passes']} pass, "
        f"{evidence['fails']} fail), pass rate {low:.2f}-{high:.2f} at "
        f"{1 - evidence['alpha']:.0%}"
    )


def not_counted_words(outcomes: Sequence[str]) -> str:
    """How the attempts that did not count are told: ``1 more not counted (fail, short of
    CPUs)``; empty when there are none. A pass after a failure that did not count may be the
    slowdown's failure, or a flaky script's."""
    if not outcomes:
        return ""
    return f"{len(outcomes)} more not counted ({', '.join(outcomes)}, short of CPUs)"


def record_not_counted_words(record: Mapping[str, Any]) -> str:
    """:func:`not_counted_words` of a record's attempts that did not count."""
    return not_counted_words([attempt["result"] for attempt in record.get("not_counted") or ()])


def cached_words(cached_at: str) -> str:
    """How a reused verdict is marked: ``cached (run 2026-12-01T21:40:00+00:00)``."""
    return f"cached (run {cached_at})"


def _evidence_fields(result: TestExecutionResult) -> List[str]:
    """The evidence of the runs, and whether the verdict was reused."""
    evidence = None if result.evidence is None else result.evidence.to_dict()
    words = evidence_words(evidence, max(1, len(result.attempts)))
    lines = [_field("evidence", words if evidence else f"{words}: {ONE_RUN_NOTE}")]
    uncounted = not_counted_words([attempt.result.value for attempt in result.not_counted])
    if uncounted:
        lines.append(_field("not counted", uncounted))
    if result.cached_at is not None:
        lines.append(_field("reused", cached_words(result.cached_at)))
    return lines


def _repeat_fields(result: TestExecutionResult) -> List[str]:
    """For a script run several times: its attempts, and which one the details below are."""
    if len(result.attempts) <= 1:
        return []
    return [
        _field("attempts", f"{len(result.attempts)}: {attempts_text(result.outcome_counts)}"),
        _field("shown", f"the exit code and output of the last {result.result.value} attempt"),
    ]


def polarity_text(polarity: Polarity) -> str:
    """What a polarity means, in a few words."""
    if polarity is Polarity.CONFIRM:
        return "confirm (exit 0 supports the hypothesis)"
    return "disprove (exit 0 falsifies the hypothesis)"


def setup_text(setup: Mapping[str, Any]) -> str:
    """What a setup step did: ``ran in 2.10s``, ``reused`` or ``failed: ...``."""
    if setup["outcome"] == "reused":
        return "reused (the worktree and the command are as at its last success)"
    if setup["problem"] is not None:
        return f"failed: {setup['problem']}"
    return f"ran in {setup['duration']:.2f}s"


def _setup_fields(setup: Optional[Mapping[str, Any]]) -> List[str]:
    if setup is None:
        return []
    return [_field("setup", f"`{setup['command']}`"), _field("setup outcome", setup_text(setup))]


def _code_fields(result: TestExecutionResult) -> List[str]:
    """Which code the script tested, and what could not be pointed at its worktree."""
    code = None if result.code_under_test is None else result.code_under_test.to_dict()
    lines = [_field("code tested", code_summary(code))]
    return lines + [_field("warning", warning) for warning in code_warnings(code)]


def worktree_line(found: FoundHypothesis) -> str:
    """The worktree with its branch and abbreviated HEAD, or the plain word that its branch
    was deleted."""
    if found.branch_gone:
        return f"{found.worktree} (branch {found.branch} gone, no commit)"
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
    tail = "\n".join(lines[-TAIL_LINES:])
    shown = tail[-TAIL_CHARS:]
    if len(shown) < len(tail):  # one long line: "all" or "20 lines" would be untrue
        scope = f"last {len(shown)} characters"
    elif len(lines) > TAIL_LINES:
        scope = f"last {TAIL_LINES} of {len(lines)} lines"
    else:
        scope = "all kept" if truncated else "all"
    if truncated:
        scope += f"; the middle of {total_bytes} bytes was not kept"
    return [f"---------- {name} ({scope}) ----------", shown]


def kept_file_line(name: str, file: Optional[str]) -> List[str]:
    """Where all the kept bytes of a stream are, when they were written to a file."""
    return [] if file is None else [f"(all kept {name}: {file})"]


@functools.lru_cache(maxsize=4096)  # asked per report of every hypothesis of a worktree
def worktree_label(rootpath: Path, worktree: Path) -> str:
    """The worktree's path from the rootdir with ``/`` separators (``.`` for the rootdir)."""
    return Path(os.path.relpath(worktree, rootpath)).as_posix()


def located(rootpath: Path, nodeid: str) -> Tuple[str, str]:
    """The worktree, as results name it, and the id of the hypothesis of a node id
    (``<worktree label>::<id>``): what another process of the run knows from the id alone."""
    label, _, hypothesis_id = nodeid.rpartition("::")
    return os.path.normpath(rootpath / label), hypothesis_id
