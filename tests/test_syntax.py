"""A script its interpreter cannot read is broken, not a test that failed: its hypothesis is
inconclusive whatever the exit status the syntax error gave."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    HypothesisStatus,
    Polarity,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.finding.layout import script_path
from pytest_parallel_hypotheses.finding.syntax import shell_error_in, syntax_error

MakeWorktree = Callable[[str], Path]


@pytest.fixture
def worktree(make_worktree: MakeWorktree) -> Path:
    return make_worktree("syntax")


def write(worktree: Path, hypothesis_id: str, text: str) -> Path:
    """The script ``text`` exactly, shebang included, made executable."""
    script = script_path(worktree, hypothesis_id)
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(text)
    script.chmod(0o755)
    return script


def run(
    worktree: Path, hypothesis_id: str, polarity: Polarity = Polarity.DISPROVE
) -> TestExecutionResult:
    hypothesis = HypothesisRun(Hypothesis(hypothesis_id, "x"), worktree, polarity=polarity)
    [result] = TestExecutor(FalsificationConfig(test_timeout=60)).execute_parallel([hypothesis])
    return result


def test_a_shell_script_with_a_syntax_error_is_inconclusive(worktree: Path) -> None:
    write(worktree, "broken", "#!/bin/sh\necho testing\nif then fi\n")

    result = run(worktree, "broken")

    assert result.result is TestResult.ERROR
    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert result.exit_code == 2  # what the shell said stays
    assert "the script has a syntax error (" in result.error_message
    assert "Syntax error" in result.error_message


def test_a_python_script_with_a_syntax_error_is_inconclusive(worktree: Path) -> None:
    write(worktree, "broken", f"#!{sys.executable}\nimport sys\nif True\n    sys.exit(0)\n")

    result = run(worktree, "broken")

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "(line 3: expected ':')" in result.error_message


def test_a_broken_script_never_falsifies_a_hypothesis_it_would_confirm(worktree: Path) -> None:
    write(worktree, "broken", "#!/bin/sh\nif then fi\n")

    result = run(worktree, "broken", Polarity.CONFIRM)

    assert result.status is HypothesisStatus.INCONCLUSIVE


def test_a_readable_script_that_fails_still_supports_its_hypothesis(worktree: Path) -> None:
    write(worktree, "genuine", "#!/usr/bin/env bash\nif [[ 1 == 2 ]]; then exit 0; fi\nexit 1\n")

    result = run(worktree, "genuine")

    assert result.status is HypothesisStatus.SUPPORTED
    assert result.error_message == ""


def test_a_bash_script_that_sets_extglob_and_fails_still_supports_its_hypothesis(
    worktree: Path,
) -> None:
    """``bash -n`` parses without running ``shopt``: the pattern would read as an error."""
    write(
        worktree,
        "globs",
        "#!/bin/bash\nshopt -s extglob\nfor f in !(nothing).txt; do :; done\n"
        "echo 'syntax error in the parser under test' >&2\nexit 1\n",
    )

    result = run(worktree, "globs")

    assert result.status is HypothesisStatus.SUPPORTED


def test_a_readable_script_that_reports_a_syntax_error_of_its_code_supports_its_hypothesis(
    worktree: Path,
) -> None:
    """The code under test may be what cannot be parsed: the script itself is sound."""
    write(worktree, "parser", f"#!/bin/sh\n{sys.executable} -c 'if True'\n")

    result = run(worktree, "parser")

    assert "SyntaxError" in result.stderr
    assert result.status is HypothesisStatus.SUPPORTED


def test_a_script_with_windows_line_endings_and_a_shebang_argument_is_inconclusive(
    worktree: Path,
) -> None:
    """The kernel hands bash ``-e\\r``, which it refuses: exit 2, as a failed test."""
    write(worktree, "crlf", "#!/bin/bash -e\r\nexit 0\r\n")

    result = run(worktree, "crlf")

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "Windows line endings" in result.error_message
    assert "'-e\\r'" in result.error_message


def test_the_check_leaves_out_the_shebangs_arguments(worktree: Path) -> None:
    """``-m pytest`` after the interpreter would take the check's ``-c`` for its own."""
    shebang = f"#!/usr/bin/env -S {sys.executable} -m pytest"
    broken = write(worktree, "broken", f"{shebang}\nif True\n    pass\n")
    sound = write(worktree, "sound", f"{shebang}\ndef test_it():\n    assert False\n")

    assert syntax_error(broken, os.environ) == "line 2: expected ':'"
    assert syntax_error(sound, os.environ) is None


@pytest.mark.skipif(not os.path.exists("/bin/dash"), reason="needs dash beside bash")
def test_the_check_asks_the_shell_the_shebang_names(worktree: Path) -> None:
    """``function`` is bash's: bash reads it, dash does not, as they would run it."""
    bash = write(worktree, "bash", "#!/usr/bin/env -S bash -e\nfunction f() { :; }\nf\n")
    dash = write(worktree, "dash", "#!/bin/dash -e\nfunction f() { :; }\nf\n")

    assert syntax_error(bash, os.environ) is None
    assert syntax_error(dash, os.environ) is not None


def test_an_interpreter_the_check_does_not_know_is_not_asked(worktree: Path) -> None:
    script = write(worktree, "awk", "#!/usr/bin/awk -f\nBEGIN { exit 1 \n")

    assert syntax_error(script, os.environ) is None


#: A broken test, then a pass: the ``[`` fails, so the ``if`` is false and the script goes on.
BROKEN_TEST = 'if [ -n "$HOME" ; then exit 1; fi\nexit 0\n'


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_pass_after_the_shell_said_a_line_failed_is_inconclusive(
    worktree: Path, shell: str
) -> None:
    """A new-user trial's script missed a ``]``: its shell said so, went on, and exited 0."""
    write(worktree, "broken", f"#!{shell}\n{BROKEN_TEST}")

    result = run(worktree, "broken")

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "the script's shell said one of its lines failed (" in result.error_message
    assert "missing" in result.error_message


def test_a_pass_after_a_command_it_ran_failed_still_falsifies(worktree: Path) -> None:
    write(worktree, "tolerant", "#!/bin/sh\nls /no/such/folder || true\nexit 0\n")

    result = run(worktree, "tolerant")

    assert result.status is HypothesisStatus.FALSIFIED
    assert "No such file" in result.stderr


@pytest.mark.parametrize("where", [": line 2", ": 2", ":2", "[2]"])
def test_every_shell_s_way_of_naming_a_line_of_the_script_is_heard(where: str) -> None:
    script = Path("/w/.falsification/test_h.sh")

    said = shell_error_in(script, f"noise\n{script}{where}: cd: src: No such file\n")

    assert said == f"{script}{where}: cd: src: No such file"


def test_a_line_of_another_script_is_not_the_script_s_own() -> None:
    script = Path("/w/.falsification/test_h.sh")

    assert shell_error_in(script, "/w/helper.sh: line 2: cd: src: No such file\n") is None
