"""Every way a :class:`~.models.TestExecutionResult` comes to be, in one place.

A hypothesis gets exactly one result whatever happens to it: its script ran (and maybe hit our
deadline), it could not be run, a stop condition ended the run first, or the runner itself
failed. Each case has its constructor here, so its wording and exit status are decided once.
"""

from __future__ import annotations

import dataclasses
import signal
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence

from .classification import (
    CANNOT_EXECUTE_EXIT,
    TIMEOUT_EXIT_CODE,
    HypothesisStatus,
    Polarity,
    TestResult,
    classify_exit,
    confidence_for,
    describe_exit,
    verdict_for,
)
from .diagnosis import describe_snapshot
from .models import TestExecutionResult
from .sequential import Decision, Evidence
from .tested import OWN_VENV_ADVICE, NoTestRun, NoTestsBecause, older_than

#: Exit status reported for a hypothesis that a stop condition stopped or never started: what
#: a script interrupted as at a terminal says (its group gets SIGINT first).
STOPPED_EXIT_CODE = -signal.SIGINT
#: Exit status reported when the runner, not the script, failed (an internal error, a crashed
#: pytest-xdist worker): ``EX_SOFTWARE`` of ``sysexits.h``, never a shell's "cannot execute".
RUNNER_ERROR_EXIT = 70
#: Exit status reported for a script whose own status the system discarded (it reaped the
#: script itself, SIGCHLD being ignored): ``EX_OSERR`` of ``sysexits.h``.
STATUS_LOST_EXIT = 71


class KeptOutput(Protocol):
    """What the runner kept of one output stream."""

    total: int

    @property
    def file(self) -> Optional[str]:
        """The file holding all the kept bytes, None when :meth:`text` is all of them."""

    @property
    def truncated(self) -> bool: ...

    def text(self) -> str: ...


def script_result(
    hypothesis_id: str,
    worktree_path: str,
    *,
    exit_code: Optional[int],
    timeout: Optional[float],
    duration: float,
    stdout: KeptOutput,
    stderr: KeptOutput,
    usage: Mapping[str, Any],
    polarity: Polarity = Polarity.DISPROVE,
    memory_stop: Optional[str] = None,
    snapshot: Optional[Dict[str, Any]] = None,
) -> TestExecutionResult:
    """The result of a script that ran: ended on its own (``timeout`` None), stopped at the
    ``timeout`` deadline, or stopped for its memory (``memory_stop`` says how; an error, since
    a tree killed for its memory tells nothing about the hypothesis; at a deadline, a clause
    added to the timeout's error), scored with the legacy
    single-run confidence; its verdict follows from the outcome and the script's ``polarity``.
    A tree stopped by us comes with its ``snapshot`` taken just before."""
    timed_out = timeout is not None
    outcome = classify_exit(exit_code, timed_out=timed_out)
    if memory_stop is not None and not timed_out:
        outcome = TestResult.ERROR
        exit_code = -signal.SIGKILL if exit_code is None else exit_code  # killed, maybe unreaped
        message = f"script {memory_stop}"
    elif timed_out:
        exit_code = TIMEOUT_EXIT_CODE
        message = f"Test exceeded {timeout:g}s timeout; its process tree was stopped"
        if snapshot is not None:
            message += f"; {describe_snapshot(snapshot)}"
        if memory_stop is not None:  # a clause: its memory ended it too, or ran over
            message += f"; {memory_stop}"
    elif exit_code is None:  # classified as an error
        exit_code = STATUS_LOST_EXIT
        message = (
            "the script's exit status was lost: the system reaped it before the runner could "
            "(SIGCHLD is ignored in this process)"
        )
    else:
        genuine = outcome in (TestResult.PASS, TestResult.FAIL) and exit_code >= 0
        message = "" if genuine else f"script {describe_exit(exit_code)}"
    result = TestExecutionResult(
        hypothesis_id=hypothesis_id,
        result=outcome,
        duration=duration,
        stdout=stdout.text(),
        stderr=stderr.text(),
        exit_code=exit_code,
        worktree_path=worktree_path,
        error_message=message,
        stdout_bytes=stdout.total,
        stderr_bytes=stderr.total,
        stdout_truncated=stdout.truncated,
        stderr_truncated=stderr.truncated,
        metrics=dict(usage),
        timed_out_after=timeout,
        polarity=polarity,
        timeout_snapshot=snapshot,
        stdout_file=stdout.file,
        stderr_file=stderr.file,
    )
    result.metrics["confidence"] = result.scored_confidence()  # the single-run table
    return result


#: What to do after the kernel's OOM killer killed processes while scripts ran.
OOM_ADVICE = (
    "run fewer scripts at once (--hypotheses-workers, or a higher --hypotheses-memfree) or "
    "give each a memory limit (--hypotheses-memory), and run again"
)


def oom_killed_result(result: TestExecutionResult, kills: int, where: str) -> TestExecutionResult:
    """A script that passed, failed or was killed by SIGKILL while the kernel's OOM killer
    killed ``kills`` processes ``where`` it ran ("in the runner's cgroup"): one may have
    been its own (a test runner's worker fails the run, and ``! cmd`` passes when ``cmd`` is
    killed), and an outcome of the shortage says nothing about the hypothesis. Any other
    result stays as it is."""
    killed = f"{kills} process" if kills == 1 else f"{kills} processes"
    what = f"the kernel's OOM killer killed {killed} {where} while the script ran"
    if result.result in (TestResult.PASS, TestResult.FAIL):
        cause = f"{what}, maybe one of its own"
        said = f"{result.error_message}, and " if result.error_message else ""
        return _tells_nothing(result, said + cause, OOM_ADVICE)
    if result.result is TestResult.ERROR and result.exit_code in _SIGKILLED:
        return as_error(
            result,
            f"{result.error_message}, and {what}: it most likely ran out of memory; {OOM_ADVICE}",
        )
    return result


#: The exit statuses of a script killed by SIGKILL, or whose shell reports a child's death so.
_SIGKILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)


def missing_module_result(result: TestExecutionResult, module: str) -> TestExecutionResult:
    """A script that failed because its worktree lacks a generated module of the project."""
    return _tells_nothing(
        result,
        f"the script failed to import {module}, which its worktree does not have (it was "
        "generated in the installed checkout, and git ignores it)",
        OWN_VENV_ADVICE,
    )


def unreachable_package_result(result: TestExecutionResult, package: str) -> TestExecutionResult:
    """A script that failed to import its worktree's own package, which nothing installed
    points its Python at."""
    return _tells_nothing(
        result,
        f"the script failed to import {package}, which its worktree has in src/ but nothing "
        "installed points its Python at: it tested none of the worktree's code",
        "run pytest from the environment where the project is installed with pip install -e, "
        f"or {OWN_VENV_ADVICE}",
    )


def unfound_package_result(result: TestExecutionResult, package: str) -> TestExecutionResult:
    """A script that failed to import its worktree's own package, which its Python did not
    look for where the worktree has it."""
    return _tells_nothing(
        result,
        f"the script failed to import {package}, which its worktree has: its Python did not "
        "look for it there (a script file puts its own folder first on the path, not the "
        "worktree's root), so it tested none of the worktree's code",
        "run Python from the worktree's root with it on the path (python -m, or "
        f'PYTHONPATH=".:$PYTHONPATH"), or {OWN_VENV_ADVICE}',
    )


def missing_dependency_result(result: TestExecutionResult, package: str) -> TestExecutionResult:
    """A Node.js script that did not find a package its worktree requires, in a worktree
    with no ``node_modules``."""
    return _tells_nothing(
        result,
        f"the script did not find {package}, which the worktree's package.json requires, and "
        "the worktree has no node_modules: it tested nothing",
        "install the worktree's dependencies (npm ci, by hand or with a setup step) and run again",
    )


def missing_runner_result(result: TestExecutionResult, complaint: str) -> TestExecutionResult:
    """A script that failed because the Python it ran has no module it was asked to run
    (``complaint`` is Python's line)."""
    return _tells_nothing(
        result,
        f"the script could not run what it tested with ({complaint}): no test ran",
        "install it where the script runs (in the worktree's .venv when it has one) and run again",
    )


def no_tests_result(result: TestExecutionResult, said: NoTestRun) -> TestExecutionResult:
    """A script whose test runner ran no test."""
    return _tells_nothing(
        result,
        f"the script's test runner ran no test ({said.words}, exit status {result.exit_code})",
        _NO_TESTS_ADVICE[said.why],
    )


#: What to look at when a test runner ran no test, by why it ran none.
_NO_TESTS_ADVICE = {
    NoTestsBecause.SELECTION: (
        "check the test ids, paths and -k or -m expressions the script gives it: none selects "
        "a test in this worktree"
    ),
    NoTestsBecause.COLLECTION: (
        "read its output for the error that stopped the collection (an import or syntax "
        "error in a test module, a conftest.py or the code it imports; a module the tests "
        "need that the script's Python lacks; or a warning that the project's "
        "filterwarnings makes an error) and fix that first"
    ),
    NoTestsBecause.USAGE: (
        "check the options the script gives it, and that the Python the script runs is the "
        "one you meant, with the plugins those options need (pytest-xdist for -n): a runner's "
        "environment that is not activated leaves the script the python3 of PATH"
    ),
}


def unbuilt_extension_result(
    result: TestExecutionResult, modules: Sequence[str]
) -> TestExecutionResult:
    """A script that passed or failed after importing compiled extension ``modules`` that its
    worktree has no build of: the package ran a build from elsewhere or a pure-Python
    fallback, not the code the hypothesis is about when the bug or the fix is in them."""
    them = "them" if len(modules) > 1 else "it"
    return _tells_nothing(
        result,
        f"the script's Python looked for the compiled extension {', '.join(modules)}, which "
        "its worktree has no build of (git ignores builds, and another checkout or an "
        "installed copy has one): it got a build from elsewhere, a pure-Python fallback if "
        "the package has one, or nothing",
        f"build {them} in each worktree: give each its own .venv with the project installed "
        "(by hand or with a setup step such as --hypotheses-setup 'python -m venv .venv && "
        ".venv/bin/pip install -e . pytest')",
    )


def stale_extension_result(
    result: TestExecutionResult, modules: Sequence[str], source: str
) -> TestExecutionResult:
    """A script that passed or failed after importing compiled extension ``modules`` whose
    build in its worktree is older than ``source``: built, then the source changed, and the
    script ran the compiled code of before that change."""
    them = "them" if len(modules) > 1 else "it"
    return _tells_nothing(
        result,
        f"the script imported the compiled extension {', '.join(modules)}, whose build in "
        f"its worktree is {older_than(source)}: it ran compiled code of before that change",
        f"build {them} again in the worktree (pip install -e . in its .venv, say) and run it again",
    )


def unwatched_result(
    result: TestExecutionResult, line: str, modules: Sequence[str]
) -> TestExecutionResult:
    """A script that passed or failed while its own ``line`` hid the watch on compiled
    extension ``modules`` its worktree has no current build of (it replaced ``PYTHONPATH``):
    whether it ran another build of them, or a fallback, cannot be told."""
    return _tells_nothing(
        result,
        f"the script replaces PYTHONPATH ({line}), which hides the watch on the compiled "
        f"extension {', '.join(modules)} that its worktree has no current build of: whether "
        "it ran another build, or a pure-Python fallback, cannot be told",
        'add to PYTHONPATH instead (PYTHONPATH="lib:$PYTHONPATH"), or build the extension in '
        "the worktree, and run it again",
    )


def broken_script_result(result: TestExecutionResult, problem: str) -> TestExecutionResult:
    """A script that failed and that its interpreter cannot read (``problem`` says why, as
    ``has a syntax error (...)``)."""
    return _tells_nothing(result, f"the script {problem}", "fix the script and run it again")


def shell_error_result(result: TestExecutionResult, complaint: str) -> TestExecutionResult:
    """A script that passed after its shell said one of its lines failed (``complaint``)."""
    return _tells_nothing(
        result,
        f"the script's shell said one of its lines failed ({complaint})",
        "fix that line of the script and run it again",
    )


def _tells_nothing(result: TestExecutionResult, cause: str, remedy: str) -> TestExecutionResult:
    """A script whose pass or failure tells nothing about the hypothesis, for ``cause``: an
    error whatever its polarity, with what to do (``remedy``)."""
    outcome = "pass" if result.result is TestResult.PASS else "failure"
    return as_error(
        result, f"{cause}, so the {outcome} tells nothing about the hypothesis; {remedy}"
    )


def as_error(result: TestExecutionResult, message: str) -> TestExecutionResult:
    """``result`` as an error that concludes nothing, saying why in ``message``: its script
    ran, and its output and exit status stay. The status is given, not derived: repeated
    attempts would decide one."""
    metrics = {**result.metrics, "confidence": confidence_for(TestResult.ERROR, result.duration)}
    return dataclasses.replace(
        result,
        result=TestResult.ERROR,
        status=HypothesisStatus.INCONCLUSIVE,
        error_message=message,
        metrics=metrics,
    )


def unrunnable_result(
    hypothesis_id: str,
    worktree_path: str,
    message: str,
    *,
    exit_code: int = CANNOT_EXECUTE_EXIT,
    duration: float = 0.0,
) -> TestExecutionResult:
    """The error of a hypothesis whose script could not be run (a bad id, broken metadata, a
    missing interpreter); ``exit_code`` is what a shell would report (126 or 127)."""
    return _error(hypothesis_id, worktree_path, message, exit_code, duration)


def setup_failed_result(
    hypothesis_id: str,
    worktree_path: str,
    reason: str,
    *,
    setup: Mapping[str, Any],
    polarity: Polarity = Polarity.DISPROVE,
) -> TestExecutionResult:
    """The error of a hypothesis whose worktree's setup step failed, timed out or could not
    start: inconclusive, never a verdict, since its script did not run. ``setup`` tells what
    the step did, its output included."""
    message = f"setup failed: {reason}; the script did not run"
    result = _error(hypothesis_id, worktree_path, message, CANNOT_EXECUTE_EXIT, 0.0)
    result.polarity = polarity
    result.setup = dict(setup)
    return result


def runner_error_result(
    hypothesis_id: str,
    worktree_path: str,
    message: str,
    *,
    duration: float = 0.0,
    stdout: Optional[KeptOutput] = None,
    stderr: Optional[KeptOutput] = None,
) -> TestExecutionResult:
    """The error of a hypothesis that the runner failed, not its script: a bug of ours, or a
    pytest-xdist worker that died while running it, whose script had run for ``duration``
    and printed ``stdout`` and ``stderr`` as far as they were kept."""
    error = _error(hypothesis_id, worktree_path, message, RUNNER_ERROR_EXIT, duration)
    return dataclasses.replace(error, **_kept("stdout", stdout), **_kept("stderr", stderr))


def stopped_result(
    hypothesis_id: str,
    worktree_path: str,
    reason: str,
    *,
    started: bool,
    duration: float = 0.0,
    stdout: Optional[KeptOutput] = None,
    stderr: Optional[KeptOutput] = None,
) -> TestExecutionResult:
    """The skipped result of a hypothesis that a stop condition or an interruption stopped
    (``started``) or never started; ``reason`` says why. Its status stays pending: no verdict
    was reached, so it must not count as an inconclusive one. A started script keeps what it
    had printed (``stdout``, ``stderr``)."""
    return TestExecutionResult(
        **_kept("stdout", stdout),
        **_kept("stderr", stderr),
        hypothesis_id=hypothesis_id,
        result=TestResult.SKIP,
        status=HypothesisStatus.PENDING,
        duration=duration,
        exit_code=STOPPED_EXIT_CODE,
        worktree_path=worktree_path,
        error_message=f"{'stopped' if started else 'not started'} because {reason}",
        metrics={"confidence": confidence_for(TestResult.SKIP, duration)},
    )


#: The outcome that a decision about the pass rate stands for; flaky and undecided stand for
#: none, and their verdict is inconclusive.
DECISION_OUTCOMES = {Decision.PASSES: TestResult.PASS, Decision.FAILS: TestResult.FAIL}


def decision_verdict(decision: Decision, polarity: Polarity) -> HypothesisStatus:
    """The verdict of a decision: that of the outcome it stands for, in the script's
    polarity (consistently passing falsifies a disproving script, supports a confirming one)."""
    outcome = DECISION_OUTCOMES.get(decision)
    return HypothesisStatus.INCONCLUSIVE if outcome is None else verdict_for(outcome, polarity)


def repeated_result(
    attempts: Sequence[TestExecutionResult], evidence: Optional[Evidence]
) -> TestExecutionResult:
    """The result of a fixed number of attempts: verdict and confidence of the agreement
    rules (one attempt: exactly its own), and ``evidence`` alongside when there are several."""
    combined = TestExecutionResult.from_attempts(attempts)
    if len(attempts) > 1:
        combined.evidence = evidence
    return combined


def decided_result(
    attempts: Sequence[TestExecutionResult], evidence: Evidence
) -> TestExecutionResult:
    """The result of attempts run until decided: the verdict of the decision, and the
    confidence of the evidence (see :mod:`.sequential`)."""
    combined = TestExecutionResult.from_attempts(attempts)
    return dataclasses.replace(
        combined,
        status=decision_verdict(evidence.decision, combined.polarity),
        evidence=evidence,
        metrics={**combined.metrics, "confidence": evidence.confidence},
    )


def _error(
    hypothesis_id: str, worktree_path: str, message: str, exit_code: int, duration: float
) -> TestExecutionResult:
    return TestExecutionResult(
        hypothesis_id=hypothesis_id,
        result=TestResult.ERROR,
        duration=duration,
        exit_code=exit_code,
        worktree_path=worktree_path,
        error_message=message,
        metrics={"confidence": confidence_for(TestResult.ERROR, duration)},
    )


def _kept(name: str, output: Optional[KeptOutput]) -> Dict[str, Any]:
    """The fields of one output stream as kept so far (none when nothing was kept)."""
    if output is None:
        return {}
    return {
        name: output.text(),
        f"{name}_bytes": output.total,
        f"{name}_truncated": output.truncated,
        f"{name}_file": output.file,
    }
