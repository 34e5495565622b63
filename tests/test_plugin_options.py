"""The plugin's options: validation, ini twins, and precedence of the command line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Callable, Tuple

import pytest

from pytest_parallel_hypotheses.core.sizes import format_size, format_sizes, parse_size
from pytest_parallel_hypotheses.engine.machine import open_files_ceiling

RunPytest = Callable[..., pytest.RunResult]

WriteScript = Callable[..., Path]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--hypotheses-timeout=0", "a number of seconds greater than 0"),
        ("--hypotheses-timeout=soon", "a number of seconds greater than 0"),
        ("--hypotheses-timeout=inf", "a number of seconds greater than 0"),
        ("--hypotheses-workers=0", "a whole number of at least 1, or 'auto'"),
        ("--hypotheses-workers=many", "a whole number of at least 1, or 'auto'"),
        ("--hypotheses-grace=-1", "a number of seconds of at least 0"),
        ("--hypotheses-heartbeat=-1", "a number of seconds from 0 to 86400"),
        ("--hypotheses-heartbeat=1e10", "a number of seconds from 0 to 86400"),
        ("--hypotheses-max-output=1", "a whole number of bytes of at least 2"),
        ("--hypotheses-max-output=lots", "a whole number of bytes of at least 2"),
        ("--hypotheses-setup-timeout=0", "a number of seconds greater than 0"),
        ("--hypotheses-setup-timeout=soon", "a number of seconds greater than 0"),
        ("--hypotheses-setup=  ", "a non-empty string (a shell command)"),
        ("--hypotheses-timeout=", "a number of seconds greater than 0"),
        ("--hypotheses-workers=", "a whole number of at least 1, or 'auto'"),
        ("--hypotheses-memory=0", "a size of at least 1M"),
        ("--hypotheses-memory=-1", "a size of at least 1M"),
        ("--hypotheses-memory=12XB", "a size of at least 1M"),
        ("--hypotheses-memory=8388608T", "a size of at least 1M"),
        ("--hypotheses-memory=0.5K", "a size of at least 1M (a shell alone takes about that)"),
        ("--hypotheses-memory=1024T", "a size of at least 1M*at most this machine's memory"),
        ("--hypotheses-memfree=0", "a size greater than 0 and at most this machine's memory"),
        ("--hypotheses-memfree=12XB", "a size greater than 0 and at most this machine's memory"),
        ("--hypotheses-memfree=1024T", "a size greater than 0 and at most this machine's memory"),
    ],
)
def test_an_invalid_value_is_a_usage_error_naming_option_value_and_range(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, option: str, expected: str
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", option)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    name, value = option.split("=")
    result.stderr.fnmatch_lines([f"*{name}={value} is not valid: expected {expected}*"])


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (1, "1 byte"),
        (2, "2 bytes"),
        (1536, "1.5 KiB"),
        (500 * 1024**2, "500 MiB"),
        (2**63 - 1, "8 EiB"),
    ],
)
def test_a_size_is_shown_as_people_read_it(count: int, shown: str) -> None:
    assert format_size(count) == shown


@pytest.mark.parametrize(
    ("first", "second", "shown"),
    [
        (500 * 1024**2 + 40_000, 500 * 1024**2, ("500.038 MiB", "500 MiB")),
        (int(500.08 * 1024**2), int(500.06 * 1024**2), ("500.08 MiB", "500.06 MiB")),
        (2**30 - 4096, 2**30, ("0.999996 GiB", "1 GiB")),
        (503 * 1024**2, 500 * 1024**2, ("503 MiB", "500 MiB")),
        (500 * 1024**2, 500 * 1024**2, ("500 MiB", "500 MiB")),
    ],
)
def test_two_sizes_side_by_side_share_a_unit_and_the_digits_that_tell_them_apart(
    first: int, second: int, shown: Tuple[str, str]
) -> None:
    assert format_sizes(first, second) == shown


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("1.5 KiB", 1536),
        ("500 MiB", 500 * 1024**2),
        ("1.5G", 3 * 1024**3 // 2),
        ("0.3K", 307),
        ("2GiB", 2 * 1024**3),
        ("4096", 4096),
    ],
)
def test_a_size_is_given_as_it_is_shown(text: str, count: int) -> None:
    assert parse_size(text) == count


@pytest.mark.parametrize("text", ["1.5", "1,5G", "1e3", "12XB", "1.5.2M", "G"])
def test_a_size_that_is_no_number_of_bytes_is_refused(text: str) -> None:
    assert parse_size(text) is None


def test_an_invalid_ini_value_is_a_usage_error_naming_the_ini_option(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")
    pytester.makeini("[pytest]\nhypotheses_workers = -3\n")

    result = run_pytest(f"--hypotheses={git_repo}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option hypotheses_workers = -3 is not valid*"])


def test_every_invalid_value_is_told_at_once(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")
    pytester.makeini("[pytest]\nhypotheses_memory = 0\nhypotheses_workers = 0\n")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-timeout=soon")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --hypotheses-timeout=soon is not valid*",
            "ERROR: ini option hypotheses_workers = 0 is not valid*",
            "ERROR: ini option hypotheses_memory = 0 is not valid*",
        ]
    )


def test_a_report_path_that_is_a_folder_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={tmp_path}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hypotheses-report=* is a directory*"])


@pytest.mark.parametrize(
    ("second", "names"),
    [
        ("--hypotheses-html", "--hypotheses-html"),
        ("--junitxml", "--junitxml"),
        ("--hypotheses-events", "--hypotheses-events"),
    ],
)
def test_two_reports_in_one_file_are_a_usage_error(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    second: str,
    names: str,
) -> None:
    write_script(git_repo, "cache", "exit 0")
    same = tmp_path / "same.out"

    result = run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-report={same}", f"{second}={same}"
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{names}* is not valid: expected a file of its own*"])


def test_a_report_path_under_a_file_is_a_usage_error_before_anything_runs(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    write_script(git_repo, "cache", f"touch {ran}")
    (tmp_path / "a-file").write_text("")

    result = run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-report={tmp_path / 'a-file' / 'r.json'}"
    )

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hypotheses-report=* cannot be written there*a-file*"])
    assert not ran.exists()


def test_options_without_hypotheses_leave_a_normal_run_alone(
    run_pytest: RunPytest, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")

    result = run_pytest("--hypotheses-timeout=nonsense")

    result.assert_outcomes(passed=1)


def test_the_ini_timeout_applies(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "slow", "sleep 30")
    pytester.makeini("[pytest]\nhypotheses_timeout = 0.3\n")

    result = run_pytest(f"--hypotheses={git_repo}")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*classification: timeout*"])


def test_the_command_line_wins_over_the_ini_file(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "brief", "sleep 0.5")
    pytester.makeini("[pytest]\nhypotheses_timeout = 0.1\n")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-timeout=60")

    result.assert_outcomes(passed=1)


def test_a_timeout_in_the_metadata_wins_over_the_option(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "slow", "sleep 30")
    (git_repo / ".falsification" / "config_slow.json").write_text('{"timeout": 0.3}')

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-timeout=60")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Test exceeded 0.3s timeout*"])


def test_one_worker_runs_one_script_at_a_time(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    lock = tmp_path / "lock"  # mkdir is atomic: a second script running at once fails on it
    for hypothesis_id in ("a", "b", "c"):
        write_script(git_repo, hypothesis_id, f"mkdir {lock} || exit 1\nsleep 0.2\nrmdir {lock}")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=1")

    result.assert_outcomes(passed=3)


def test_settings_reach_the_engine(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    report = tmp_path / "report.json"

    run_pytest(
        f"--hypotheses={git_repo}",
        f"--hypotheses-report={report}",
        "--hypotheses-timeout=12.5",
        "--hypotheses-workers=3",
        "--hypotheses-grace=0.25",
        "--hypotheses-max-output=2K",
        "--hypotheses-repeat=2",
        "--hypotheses-stop-on=falsified",
        "--hypotheses-setup=true",
        "--hypotheses-setup-timeout=30",
    )

    assert json.loads(report.read_text())["run"]["settings"] == {
        "test_timeout": 12.5,
        "max_concurrent_tests": 3,
        "kill_grace": 0.25,
        "max_output_bytes": 2048,
        "repeats": 2,
        "alpha": 0.05,
        "flake_tolerance": 0.25,
        "max_repeats": 40,
        "repeat_budget": None,
        "stop_on": "falsified",
        "setup_command": "true",
        "setup_timeout": 30,
        "adaptive_concurrency": None,
        "per_xdist_worker": False,
        "memory_limit": None,
    }


def test_the_output_cap_keeps_head_and_tail_of_a_long_output(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "chatty", "seq 1 5000; exit 1")
    report = tmp_path / "report.json"

    run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-report={report}", "--hypotheses-max-output=1K"
    )

    (record,) = json.loads(report.read_text())["hypotheses"]
    assert record["stdout_truncated"] is True
    assert record["stdout"].startswith("1\n2\n3\n")
    assert record["stdout"].endswith("4999\n5000\n")


def test_workers_auto_is_accepted(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-workers=auto")

    result.assert_outcomes(passed=1)


def test_the_header_says_what_auto_chose_and_why(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-memfree=256M")

    cpus = len(os.sched_getaffinity(0))
    result.stdout.fnmatch_lines(
        [
            f"hypotheses: *(workers auto: {cpus} (*CPU*), more while the CPUs hold them up to "
            f"{open_files_ceiling()} (the open-files limit), none while free memory is below "
            "256 MiB, timeout*"
        ]
    )


def test_the_header_says_a_free_memory_floor_is_unused_with_a_fixed_number_of_workers(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-workers=3", "--hypotheses-memfree=256M"
    )

    result.stdout.fnmatch_lines(
        ["hypotheses: *(workers 3, --hypotheses-memfree unused (it holds back auto alone, *"]
    )


def test_the_header_warns_of_more_workers_than_the_open_files_limit_holds(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (150, 150))

    options = ("--co", f"--hypotheses={git_repo}", "--hypotheses-workers=60")
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *options, "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=few_files,
        check=False,
    )

    pytest.LineMatcher(completed.stdout.splitlines()).fnmatch_lines(
        ["hypotheses: *(workers 60 (more than the 10 the open-files limit holds: some may not*"]
    )


def test_the_report_records_what_auto_chose(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    settings = json.loads(report.read_text())["run"]["settings"]
    chosen = settings["adaptive_concurrency"]
    assert chosen["cpus"] == len(os.sched_getaffinity(0))
    assert chosen["memory_free_floor"] > 0
    assert settings["max_concurrent_tests"] is None  # its ceiling is no number of workers


def test_the_header_says_how_the_memory_limit_is_enforced(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-memory=1G")

    result.stdout.fnmatch_lines(["hypotheses: *memory limit 1 GiB per script tree, enforced by *"])


def test_the_memory_limit_has_an_ini_twin(
    run_pytest: RunPytest,
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
) -> None:
    write_script(git_repo, "cache", "exit 0")
    pytester.makeini("[pytest]\nhypotheses_memory = 300M\nhypotheses_memfree = 1M\n")
    report = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}")

    settings = json.loads(report.read_text())["run"]["settings"]
    assert settings["memory_limit"]["bytes"] == 300 * 1024 * 1024
    assert settings["adaptive_concurrency"]["memory_free_floor"] == 1024 * 1024


def test_the_options_do_not_clash_with_the_hypothesis_library(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:asyncio", "--help")

    result.stdout.fnmatch_lines(["*--hypotheses-timeout=SECONDS*", "*--hypothesis-seed=*"])


def test_the_header_shows_repeats_and_the_stop_condition_when_set(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(
        f"--hypotheses={git_repo}", "--hypotheses-repeat=3", "--hypotheses-stop-on=first", "--co"
    )

    result.stdout.fnmatch_lines(["hypotheses: * bytes per stream, repeat 3, stop on first)"])


def test_the_timeouts_that_metadata_set_are_told_after_collection(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """The header shows the run's timeout, which a hypothesis's own replaces."""
    for hypothesis_id, timeout in (("cache", 30), ("race", 30), ("locale", 7.5), ("disk", None)):
        write_script(git_repo, hypothesis_id, "exit 0")
        if timeout is not None:
            config = git_repo / ".falsification" / f"config_{hypothesis_id}.json"
            config.write_text(json.dumps({"timeout": timeout}))

    result = run_pytest(f"--hypotheses={git_repo}", "--co")

    result.stdout.fnmatch_lines(["timeouts set by their metadata: 1 at 7.5s, 2 at 30s"])


def test_the_memory_limits_that_metadata_set_are_told_with_what_enforces_them(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    """Without ``--hypotheses-memory`` the header names no limit and no enforcement, and a
    hypothesis stopped at its own limit came as a surprise."""
    for hypothesis_id, memory in (("cache", "200M"), ("race", "1G"), ("disk", None)):
        write_script(git_repo, hypothesis_id, "exit 0")
        if memory is not None:
            config = git_repo / ".falsification" / f"config_{hypothesis_id}.json"
            config.write_text(json.dumps({"memory": memory}))

    result = run_pytest(f"--hypotheses={git_repo}", "--co")

    result.stdout.fnmatch_lines(
        ["memory limits set by their metadata: 1 at 200 MiB, 1 at 1 GiB, enforced by *"]
    )


def test_the_header_leaves_out_repeats_and_the_stop_condition_by_default(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", "--co")

    result.stdout.fnmatch_lines(["hypotheses: * bytes per stream)"])
    result.stdout.no_fnmatch_line("*repeat*")
    result.stdout.no_fnmatch_line("*stop on*")
