"""``--hypotheses-shard=K/N``: every hypothesis in exactly one shard, balanced, stable."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_parallel_hypotheses.core.shards import Shard, partition

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]

Entry = Tuple[str, Optional[float]]

#: Hypotheses as the partition sees them: unique node ids, each with an estimate or none.
entries_strategy = st.dictionaries(
    st.text("abcdefgh:/.", min_size=1, max_size=8),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1000)),
    max_size=30,
).map(lambda found: sorted(found.items()))


@given(entries_strategy, st.integers(min_value=1, max_value=8))
def test_the_shards_hold_every_hypothesis_exactly_once(entries: List[Entry], count: int) -> None:
    shards = partition(entries, count)

    placed = [nodeid for shard in shards for nodeid in shard]
    assert sorted(placed) == sorted(nodeid for nodeid, _ in entries)
    assert len(shards) == count


@given(entries_strategy, st.integers(min_value=1, max_value=8))
def test_no_shard_is_empty_when_there_are_enough_hypotheses(
    entries: List[Entry], count: int
) -> None:
    shards = partition(entries, count)

    if len(entries) >= count:
        assert all(shards)


@given(entries_strategy, st.integers(min_value=1, max_value=8), st.randoms())
def test_the_split_does_not_depend_on_the_order_hypotheses_come_in(
    entries: List[Entry], count: int, shuffler: random.Random
) -> None:
    shuffled = list(entries)
    shuffler.shuffle(shuffled)

    assert [set(shard) for shard in partition(shuffled, count)] == [
        set(shard) for shard in partition(entries, count)
    ]


def test_a_long_hypothesis_gets_a_shard_to_itself() -> None:
    entries: List[Entry] = [("long", 9.0), ("a", 3.0), ("b", 3.0), ("c", 3.0)]

    assert sorted(partition(entries, 2)) == [["a", "b", "c"], ["long"]]


def test_a_hypothesis_without_an_estimate_counts_as_the_average_of_the_others() -> None:
    entries: List[Entry] = [("a", 10.0), ("b", None), ("c", None)]

    assert partition(entries, 2) == [["a", "c"], ["b"]]


@pytest.mark.parametrize(
    ("text", "expected"), [("2/3", Shard(2, 3)), (" 1 / 1 ", Shard(1, 1)), ("3/3", Shard(3, 3))]
)
def test_a_shard_is_k_of_n(text: str, expected: Shard) -> None:
    assert Shard.parse(text) == expected


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_anything_but_k_of_n_is_no_shard(text: str) -> None:
    assert Shard.parse(text) is None


def write_logging_scripts(write_script: WriteScript, worktree: Path, count: int, log: Path) -> None:
    """``count`` hypotheses that append their id to ``log`` when they run."""
    for index in range(count):
        write_script(worktree, f"h{index}", f'echo "$HYPOTHESIS_ID" >> {log}')


def ran(log: Path) -> List[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("count", [1, 2, 4])
def test_every_hypothesis_runs_in_exactly_one_of_the_shards(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path, count: int
) -> None:
    log = tmp_path / "ran.log"
    write_logging_scripts(write_script, git_repo, 7, log)

    for index in range(1, count + 1):
        run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-shard={index}/{count}")

    assert sorted(ran(log)) == [f"h{index}" for index in range(7)]


def test_the_other_shards_hypotheses_are_reported_as_deselected(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_logging_scripts(write_script, git_repo, 4, tmp_path / "ran.log")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-shard=1/2")

    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(["hypotheses shard 1/2: 2 of 4 hypotheses"])


def test_a_shard_the_split_left_empty_ends_as_a_run_that_passed(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """A matrix of three jobs over two hypotheses: the third job has none, and exit status 5
    (no hypothesis found) turned it red."""
    write_logging_scripts(write_script, git_repo, 2, tmp_path / "ran.log")
    path, events = tmp_path / "shard-3.json", tmp_path / "events.jsonl"

    result = run_pytest(
        f"--hypotheses={git_repo}",
        "--hypotheses-shard=3/3",
        f"--hypotheses-report={path}",
        f"--hypotheses-events={events}",
    )

    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["hypotheses shard 3/3: 0 of 2 hypotheses"])
    run = json.loads(path.read_text())["run"]
    assert (run["exit_status"], run["shard"]["size"]) == (0, 0)
    finished = json.loads(events.read_text().splitlines()[-1])
    assert (finished["type"], finished["exit_status"]) == ("run_finished", 0)


def test_a_selection_that_leaves_a_shard_nothing_is_still_no_hypothesis(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_logging_scripts(write_script, git_repo, 4, tmp_path / "ran.log")

    result = run_pytest(f"--hypotheses={git_repo}", "--hypotheses-shard=1/2", "-k", "nothing")

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_a_shard_selects_the_same_hypotheses_in_every_run(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    for index in range(6):
        write_script(git_repo, f"h{index}", f"exit {index % 2}")
    args = (f"--rootdir={tmp_path}", "-p", "no:hypothesispytest", "-p", "no:asyncio")
    first = pytester.inline_run(*args, f"--hypotheses={git_repo}", "--hypotheses-shard=2/3")
    pytester.inline_run(*args, f"--hypotheses={git_repo}")

    again = pytester.inline_run(*args, f"--hypotheses={git_repo}", "--hypotheses-shard=2/3")

    assert _called(again) == _called(first)
    assert len(_called(first)) == 2


def _called(reprec: pytest.HookRecorder) -> List[str]:
    return sorted(call.item.nodeid for call in reprec.getcalls("pytest_runtest_setup"))


def test_k_selects_within_each_shard_so_the_shards_still_cover_the_selection_once(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "ran.log"
    write_logging_scripts(write_script, git_repo, 6, log)
    selection = "h0 or h1 or h2"

    for index in (1, 2, 3):
        run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-shard={index}/3", "-k", selection)

    assert sorted(ran(log)) == ["h0", "h1", "h2"]


def test_the_estimated_test_time_of_the_metadata_balances_the_shards(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    log = tmp_path / "ran.log"
    write_logging_scripts(write_script, git_repo, 4, log)
    for index, seconds in enumerate([5, 5, 5, 600]):
        metadata = git_repo / ".falsification" / f"config_h{index}.json"
        metadata.write_text(json.dumps({"estimated_test_time": seconds}))

    shards = []
    for index in (1, 2):
        run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-shard={index}/2")
        shards.append(sorted(ran(log)))
        log.unlink()

    assert sorted(shards) == [["h0", "h1", "h2"], ["h3"]]


@pytest.mark.parametrize("value", ["0/2", "3/2", "2", "half", "1/0"])
def test_an_invalid_shard_is_a_usage_error(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, value: str
) -> None:
    write_script(git_repo, "cache", "exit 0")

    result = run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-shard={value}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--hypotheses-shard={value} is not valid: expected K/N, two whole numbers*"]
    )


def test_the_ini_shard_applies(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    for index in range(3):
        write_script(git_repo, f"h{index}", "exit 0")
    pytester.makeini("[pytest]\nhypotheses_shard = 3/3\n")

    run_pytest(f"--hypotheses={git_repo}").assert_outcomes(passed=1, deselected=2)


def test_an_invalid_ini_shard_is_a_usage_error_naming_the_ini_option(
    run_pytest: RunPytest, pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")
    pytester.makeini("[pytest]\nhypotheses_shard = 4/3\n")

    result = run_pytest(f"--hypotheses={git_repo}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option hypotheses_shard = 4/3 is not valid*"])


def shard_report(run_pytest: RunPytest, repo: Path, tmp_path: Path, shard: str) -> Dict[str, Any]:
    path = tmp_path / f"shard-{shard.replace('/', '-')}.json"
    run_pytest(f"--hypotheses={repo}", f"--hypotheses-shard={shard}", f"--hypotheses-report={path}")
    report: Dict[str, Any] = json.loads(path.read_text())
    return report


def test_each_shard_report_says_which_shard_of_which_split_it_holds(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    for index in range(5):
        write_script(git_repo, f"h{index}", "exit 0")

    shards = [
        shard_report(run_pytest, git_repo, tmp_path, f"{k}/2")["run"]["shard"] for k in (1, 2)
    ]

    assert [(s["index"], s["count"], s["size"], s["total"]) for s in shards] == [
        (1, 2, 3, 5),
        (2, 2, 2, 5),
    ]
    assert shards[0]["fingerprint"] == shards[1]["fingerprint"]


def test_an_unsharded_report_has_no_shard(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "cache", "exit 0")
    path = tmp_path / "report.json"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={path}")

    assert json.loads(path.read_text())["run"]["shard"] is None
