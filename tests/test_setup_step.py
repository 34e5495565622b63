"""A worktree's setup step, run by the engine with real commands in real git worktrees: where
it runs, when it runs again, what its failures become, and that it leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from pytest_parallel_hypotheses import (
    AsyncTestExecutor,
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    HypothesisStatus,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)
from pytest_parallel_hypotheses.engine.setup import SetupStamp, _remove_new_folders

QUICK = FalsificationConfig(test_timeout=30, kill_grace=0.2)

MakeWorktree = Callable[[str], Path]
WriteScript = Callable[..., Path]


@pytest.fixture
def worktree(make_worktree: MakeWorktree, write_script: WriteScript) -> Path:
    """A worktree with a hypothesis ``h1`` whose script prints the file the setup makes."""
    path = make_worktree("setup")
    write_script(path, "h1", "cat made-by-setup")
    return path


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    """A file outside every worktree to which each setup run appends a line."""
    return tmp_path / "setup-runs"


def counting(counter: Path, then: str = "true") -> str:
    """A setup command that records each of its runs, then makes the file the script reads."""
    return f"echo ran >> '{counter}' && echo built > made-by-setup && {then}"


def runs_of(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def run(
    worktree: Path,
    setup: Optional[str],
    *,
    config: FalsificationConfig = QUICK,
    setup_timeout: Optional[float] = None,
    hypothesis_id: str = "h1",
) -> TestExecutionResult:
    hypothesis = HypothesisRun(
        Hypothesis(hypothesis_id, "a hypothesis"),
        worktree,
        setup=setup,
        setup_timeout=setup_timeout,
    )
    (result,) = TestExecutor(config).execute_parallel([hypothesis])
    return result


def test_the_setup_runs_at_the_worktree_root_before_the_script(
    worktree: Path, counter: Path
) -> None:
    result = run(worktree, counting(counter))

    assert result.result is TestResult.PASS
    assert result.stdout == "built\n"
    assert (worktree / "made-by-setup").is_file()


def test_the_setup_output_is_kept_with_the_result(worktree: Path, counter: Path) -> None:
    result = run(worktree, counting(counter, then="echo installing; echo warning >&2"))

    assert result.setup is not None
    assert result.setup["outcome"] == "ran"
    assert result.setup["stdout"] == "installing\n"
    assert result.setup["stderr"] == "warning\n"


def test_an_unchanged_worktree_reuses_the_last_successful_setup(
    worktree: Path, counter: Path
) -> None:
    run(worktree, counting(counter))
    second = run(worktree, counting(counter))

    assert runs_of(counter) == 1
    assert second.setup is not None
    assert second.setup["outcome"] == "reused"
    assert second.stdout == "built\n"


def test_a_new_commit_runs_the_setup_again(
    worktree: Path, counter: Path, git_command: Callable[..., str]
) -> None:
    run(worktree, counting(counter))
    (worktree / "fix.py").write_text("FIXED = True\n")
    git_command(worktree, "add", "fix.py")
    git_command(worktree, "commit", "-q", "-m", "a fix")

    run(worktree, counting(counter))

    assert runs_of(counter) == 2


def test_an_uncommitted_edit_runs_the_setup_again(worktree: Path, counter: Path) -> None:
    run(worktree, counting(counter))
    (worktree / "README").write_text("edited, not committed\n")

    run(worktree, counting(counter))

    assert runs_of(counter) == 2


def test_an_ignored_file_does_not_run_the_setup_again(worktree: Path, counter: Path) -> None:
    (worktree / ".gitignore").write_text("build/\n")
    run(worktree, counting(counter))
    (worktree / "build").mkdir()
    (worktree / "build" / "lib.so").write_text("built\n")

    run(worktree, counting(counter))

    assert runs_of(counter) == 1


#: What a setup step makes that git ignores, and the command that makes it.
MADE_BY_SETUP = {
    ".venv": f"{sys.executable} -m venv --without-pip .venv",
    "node_modules": "mkdir -p node_modules/balanced-match",
}


def test_an_ignored_file_that_goes_does_not_run_the_setup_again(
    worktree: Path, counter: Path
) -> None:
    """Logs and coverage data come and go as scripts run: only folders are kept to."""
    (worktree / ".gitignore").write_text("*.log\n")
    run(worktree, counting(counter, then="echo started > setup.log"))
    (worktree / "setup.log").unlink()

    run(worktree, counting(counter, then="echo started > setup.log"))

    assert runs_of(counter) == 1


@pytest.mark.parametrize("made", sorted(MADE_BY_SETUP))
def test_removing_what_the_setup_made_runs_it_again(
    worktree: Path, counter: Path, made: str
) -> None:
    """git ignores it, but the scripts need it: without it they test nothing, or other code."""
    (worktree / ".gitignore").write_text(f"{made}/\n")
    run(worktree, counting(counter, then=MADE_BY_SETUP[made]))
    shutil.rmtree(worktree / made)

    second = run(worktree, counting(counter, then=MADE_BY_SETUP[made]))

    assert runs_of(counter) == 2
    assert second.setup is not None
    assert second.setup["outcome"] == "ran"
    assert (worktree / made).is_dir()


def test_an_edit_of_a_hypothesis_s_own_files_does_not_run_the_setup_again(
    worktree: Path, counter: Path, write_script: WriteScript
) -> None:
    """A new-user trial's every edit of a script ran its worktree's step again (with a
    ``.venv`` made by the step, minutes each time): a script or its metadata is not what the
    step builds from."""
    run(worktree, counting(counter))
    write_script(worktree, "h1", "cat made-by-setup\n# checked by hand too")
    (worktree / ".falsification" / "config_h1.json").write_text('{"timeout": 20}')

    second = run(worktree, counting(counter))

    assert runs_of(counter) == 1
    assert second.setup is not None
    assert second.setup["outcome"] == "reused"


def test_a_stamp_of_an_earlier_format_is_not_trusted(worktree: Path, counter: Path) -> None:
    """Stamps made before they listed the builds a step left do not say that one is gone."""
    run(worktree, counting(counter))
    stamp = SetupStamp.of(worktree, counting(counter)).path
    record = json.loads(stamp.read_text())
    del record["format"]
    stamp.write_text(json.dumps(record))

    run(worktree, counting(counter))

    assert runs_of(counter) == 2


def test_another_command_runs_the_setup_again(worktree: Path, counter: Path) -> None:
    run(worktree, counting(counter))
    run(worktree, counting(counter, then="echo other"))

    assert runs_of(counter) == 2


def test_the_hypotheses_of_one_worktree_share_one_setup_run(
    worktree: Path, counter: Path, write_script: WriteScript
) -> None:
    for hypothesis_id in ("h2", "h3", "h4"):
        write_script(worktree, hypothesis_id, "cat made-by-setup")
    runs = [
        HypothesisRun(Hypothesis(i, "a hypothesis"), worktree, setup=counting(counter))
        for i in ("h1", "h2", "h3", "h4")
    ]

    results = TestExecutor(QUICK).execute_parallel(runs)

    assert runs_of(counter) == 1
    assert [r.stdout for r in results] == ["built\n"] * 4


def test_a_hypothesis_without_a_setup_waits_for_the_step_another_of_its_worktree_declares(
    worktree: Path, counter: Path, write_script: WriteScript
) -> None:
    """The step changes what the script tests: run beside it, the verdict is a race."""
    write_script(worktree, "plain", "cat made-by-setup")
    slow = f"sleep 0.3 && {counting(counter)}"
    runs = [
        HypothesisRun(Hypothesis("plain", "no setup of its own"), worktree),
        HypothesisRun(Hypothesis("h1", "a hypothesis"), worktree, setup=slow),
    ]

    plain, declaring = TestExecutor(QUICK).execute_parallel(runs)

    assert (plain.stdout, plain.setup) == ("built\n", None)
    assert declaring.setup is not None
    assert declaring.setup["outcome"] == "ran"
    assert runs_of(counter) == 1


def test_the_steps_a_run_is_told_of_run_before_its_script(worktree: Path, counter: Path) -> None:
    """As a pytest-xdist worker hands the engine one run, with its worktree's other steps."""
    told = HypothesisRun(
        Hypothesis("h1", "a hypothesis"), worktree, worktree_steps=((counting(counter), None),)
    )

    (result,) = TestExecutor(QUICK).execute_parallel([told])

    assert (result.stdout, result.setup) == ("built\n", None)


def test_a_failed_step_of_another_hypothesis_makes_the_script_inconclusive(
    worktree: Path, counter: Path, write_script: WriteScript
) -> None:
    """The worktree is half made: no verdict comes from it, and the error says whose step."""
    write_script(worktree, "plain", "exit 0")
    runs = [
        HypothesisRun(Hypothesis("plain", "no setup of its own"), worktree),
        HypothesisRun(Hypothesis("h1", "a hypothesis"), worktree, setup="touch half; exit 3"),
    ]

    plain, declaring = TestExecutor(QUICK).execute_parallel(runs)

    assert (plain.result, declaring.result) == (TestResult.ERROR, TestResult.ERROR)
    assert "exited with status 3 (a step of another hypothesis" in plain.error_message
    assert "another hypothesis" not in declaring.error_message
    assert plain.setup == declaring.setup  # the step's own words


def test_a_command_declared_with_two_timeouts_has_the_longer(
    worktree: Path, write_script: WriteScript
) -> None:
    """No hypothesis's step gets less time than it asked for, whichever starts first."""
    write_script(worktree, "h2", "cat made-by-setup")
    step = "sleep 1 && echo built > made-by-setup"
    runs = [
        HypothesisRun(Hypothesis(i, "x"), worktree, setup=step, setup_timeout=timeout)
        for i, timeout in (("h1", 0.3), ("h2", 30))
    ]

    results = TestExecutor(QUICK).execute_parallel(runs)

    assert [r.stdout for r in results] == ["built\n", "built\n"]


def test_the_run_wide_step_of_the_others_runs_before_a_hypothesis_with_its_own(
    worktree: Path, write_script: WriteScript
) -> None:
    """As a pytest-xdist worker hands the engine one run: the worktree's other hypotheses
    have no step of their own (None), so the run-wide one is theirs."""
    config = FalsificationConfig(test_timeout=30, kill_grace=0.2, setup_command="echo G > g")
    own = HypothesisRun(
        Hypothesis("h1", "x"), worktree, setup="echo X > x", worktree_steps=((None, None),)
    )
    write_script(worktree, "h1", "cat g x")

    (result,) = TestExecutor(config).execute_parallel([own])

    assert result.stdout == "G\nX\n"


def test_a_step_stopped_at_its_deadline_leaves_no_half_made_folder(
    worktree: Path,
) -> None:
    """A ``.venv`` cut short before its ``bin/pip`` came made the same step fail in every
    later run (a new-user trial on itsdangerous). A folder that was there before, and a file
    the step wrote, stay."""
    (worktree / "kept").mkdir()
    step = "mkdir -p .venv/lib kept/inner && echo log > step.log && sleep 30"

    result = run(worktree, step, setup_timeout=1)

    assert result.result is TestResult.ERROR
    assert "the folders it had begun to make (.venv) were removed" in result.error_message
    assert not (worktree / ".venv").exists()
    assert (worktree / "kept" / "inner").is_dir()
    assert (worktree / "step.log").is_file()


def test_nothing_is_taken_for_a_stopped_steps_folder_when_the_first_look_failed(
    worktree: Path,
) -> None:
    """A first look that failed (too many open files) would make every folder look new,
    ``.git`` included."""
    (worktree / "src").mkdir()

    assert _remove_new_folders(worktree, None) == []
    assert (worktree / "src").is_dir()


def test_a_step_cut_short_by_an_interruption_leaves_no_half_made_folder_and_says_so(
    worktree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def interrupted() -> None:
        hypothesis = HypothesisRun(Hypothesis("h1", "x"), worktree, setup="mkdir .venv && sleep 30")
        running = asyncio.ensure_future(
            AsyncTestExecutor(QUICK).execute_parallel_async([hypothesis])
        )
        while not (worktree / ".venv").exists():
            await asyncio.sleep(0.05)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(asyncio.wait_for(interrupted(), timeout=60))

    assert not (worktree / ".venv").exists()
    assert "the folders it had begun to make (.venv) were removed" in caplog.text


def test_concurrent_runs_of_one_worktree_set_it_up_once(worktree: Path, counter: Path) -> None:
    """Two runs at once (as two pytest-xdist workers are) wait for each other's setup."""
    slow = counting(counter, then="sleep 0.5")
    results: List[TestExecutionResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(run(worktree, slow))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert runs_of(counter) == 1
    assert sorted(r.setup["outcome"] for r in results if r.setup) == ["ran", "reused"]


def test_the_run_wide_setup_applies_unless_the_hypothesis_has_its_own(
    worktree: Path, counter: Path, tmp_path: Path
) -> None:
    config = FalsificationConfig(
        test_timeout=30, kill_grace=0.2, setup_command=f"echo wide >> '{tmp_path / 'wide'}'"
    )

    result = run(worktree, counting(counter), config=config)

    assert result.result is TestResult.PASS
    assert runs_of(counter) == 1
    assert not (tmp_path / "wide").exists()


def test_a_failing_setup_is_inconclusive_and_the_script_does_not_run(
    worktree: Path, write_script: WriteScript
) -> None:
    write_script(worktree, "h1", "touch script-ran")

    result = run(worktree, "echo cannot install >&2; exit 3")

    assert result.result is TestResult.ERROR
    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert result.error_message.startswith("setup failed: ")
    assert "exited with status 3" in result.error_message
    assert result.setup is not None
    assert result.setup["stderr"] == "cannot install\n"
    assert not (worktree / "script-ran").exists()


def test_a_failed_setup_runs_again_next_time(worktree: Path, counter: Path) -> None:
    run(worktree, counting(counter, then="false"))
    run(worktree, counting(counter, then="false"))

    assert runs_of(counter) == 2


def test_a_setup_that_failed_after_an_earlier_success_runs_again_next_time(
    worktree: Path, counter: Path
) -> None:
    """The failed step left the folder the earlier success had made, half made: the earlier
    success must not vouch for it, or the scripts test a broken environment."""
    (worktree / ".gitignore").write_text("built/\n")
    flag = counter.with_name("step-may-finish")
    step = counting(counter, then=f"mkdir -p built && test -f '{flag}'")
    flag.touch()
    run(worktree, step)
    shutil.rmtree(worktree / "built")
    flag.unlink()
    run(worktree, step)  # fails after making the folder again
    flag.touch()

    third = run(worktree, step)

    assert runs_of(counter) == 3
    assert third.setup is not None
    assert third.setup["outcome"] == "ran"


def test_a_setup_past_its_deadline_is_stopped_with_its_tree(
    worktree: Path,
    sleep_token: str,
    live_processes: Callable[[str], List[object]],
) -> None:
    result = run(worktree, f"sleep {sleep_token} & sleep {sleep_token}", setup_timeout=0.5)

    assert result.result is TestResult.ERROR
    assert result.error_message.startswith("setup failed: ")
    assert "exceeded its 0.5s setup timeout" in result.error_message
    assert live_processes(sleep_token) == []


def test_a_setup_never_runs_outside_the_root_of_a_worktree(
    worktree: Path, write_script: WriteScript
) -> None:
    inner = worktree / "sub"
    inner.mkdir()
    write_script(inner, "h1", "exit 0")

    result = run(inner, "touch setup-ran")

    assert result.result is TestResult.ERROR
    assert "is not the root of a git worktree" in result.error_message
    assert not (inner / "setup-ran").exists()
    assert not (worktree / "setup-ran").exists()


def test_the_success_is_stamped_under_the_git_common_dir(
    worktree: Path, counter: Path, git_repo: Path
) -> None:
    run(worktree, counting(counter))

    (stamp,) = (git_repo / ".git" / "pytest-hypotheses" / "setup").glob("*.json")
    assert json.loads(stamp.read_text())["command"] == counting(counter)
    assert not list(worktree.glob(".pytest-hypotheses*"))


def test_a_hypothesis_without_setup_has_none(worktree: Path) -> None:
    (worktree / "made-by-setup").write_text("by hand\n")

    assert run(worktree, None).setup is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"setup_command": ""}, "setup_command must be a non-empty string"),
        ({"setup_command": 3}, "setup_command must be a non-empty string"),
        ({"setup_timeout": 0}, "setup_timeout must be a number of seconds greater than 0"),
    ],
)
def test_a_bad_run_wide_setup_is_a_value_error_naming_the_field(
    fields: Dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        FalsificationConfig(**fields)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"setup": "  "}, "setup must be a non-empty string"),
        ({"setup_timeout": -1.0}, "setup_timeout must be a number of seconds greater than 0"),
        ({"polarity": "confirm"}, "polarity of hypothesis 'h1' must be a Polarity"),
    ],
)
def test_a_bad_run_of_one_hypothesis_is_a_value_error(
    worktree: Path, fields: Dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        HypothesisRun(Hypothesis("h1", "a hypothesis"), worktree, **fields)


def test_a_venv_made_by_the_setup_is_activated_for_the_scripts_of_the_same_run(
    make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    worktree = make_worktree("venv-setup")
    write_script(worktree, "h1", 'echo "$VIRTUAL_ENV"')
    make_venv = f"'{sys.executable}' -m venv --without-pip .venv"

    result = run(worktree, make_venv)

    assert result.result is TestResult.PASS
    assert result.stdout.strip() == str(worktree / ".venv")
    assert result.code_under_test is not None
    assert result.code_under_test.venv == str(worktree / ".venv")
