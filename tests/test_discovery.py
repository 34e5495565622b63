"""Discovery of hypotheses in real git repositories and worktrees."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, List

import pytest

from pytest_parallel_hypotheses.core.classification import HypothesisStatus
from pytest_parallel_hypotheses.finding.discovery import DiscoveryError, FoundHypothesis, discover
from pytest_parallel_hypotheses.finding.git import run_git

WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]


def write_metadata(worktree: Path, hypothesis_id: str, data: Any) -> Path:
    path = worktree / ".falsification" / f"config_{hypothesis_id}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def summary(found: List[FoundHypothesis]) -> List[tuple[str, str]]:
    return [(h.worktree.name, h.hypothesis_id) for h in found]


def test_a_repository_is_searched_in_every_worktree(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(git_repo, "main-idea", "exit 0")
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 1")

    found = discover(git_repo)

    assert sorted(summary(found)) == [("one", "cache"), ("repo", "main-idea"), ("two", "race")]


def test_any_worktree_of_the_repository_finds_all_of_them(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    one = make_worktree("one")
    write_script(one, "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 1")

    assert sorted(summary(discover(one))) == [("one", "cache"), ("two", "race")]


def test_a_folder_of_worktrees_searches_only_those_worktrees(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "in-main", "exit 0")
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "race", "exit 1")
    (tmp_path / "worktrees" / "not-a-worktree" / ".falsification").mkdir(parents=True)
    write_script(tmp_path / "worktrees" / "not-a-worktree", "ignored", "exit 0")

    assert summary(discover(tmp_path / "worktrees")) == [("one", "cache"), ("two", "race")]


def test_no_directory_means_the_repository_of_the_current_directory(
    git_repo: Path,
    make_worktree: MakeWorktree,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    monkeypatch.chdir(git_repo)

    assert summary(discover(None)) == [("one", "cache")]


def test_each_hypothesis_carries_its_worktree_branch_head_and_script(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    worktree = make_worktree("one")
    write_script(worktree, "cache", "exit 0")

    (found,) = discover(worktree)

    assert found.worktree == worktree.resolve()
    assert found.branch == "hyp-one"
    assert found.head is not None
    assert len(found.head) == 40
    assert found.script == worktree.resolve() / ".falsification" / "test_cache.sh"
    assert found.problem is None


def test_hypotheses_are_sorted_by_worktree_then_id(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    second = make_worktree("b")
    first = make_worktree("a")
    for worktree in (second, first):
        for hypothesis_id in ("zeta", "alpha", "mid"):
            write_script(worktree, hypothesis_id, "exit 0")

    assert summary(discover(git_repo)) == [
        ("a", "alpha"),
        ("a", "mid"),
        ("a", "zeta"),
        ("b", "alpha"),
        ("b", "mid"),
        ("b", "zeta"),
    ]


def test_the_same_id_in_two_worktrees_is_two_hypotheses(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("one"), "cache", "exit 0")
    write_script(make_worktree("two"), "cache", "exit 1")

    assert summary(discover(git_repo)) == [("one", "cache"), ("two", "cache")]


def test_a_worktree_without_scripts_contributes_nothing(
    git_repo: Path, make_worktree: MakeWorktree
) -> None:
    make_worktree("one")

    assert discover(git_repo) == []


def test_without_metadata_the_hypothesis_has_only_its_id(
    git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")

    (found,) = discover(git_repo)

    assert found.hypothesis is not None
    assert found.hypothesis.id == "cache"
    assert found.timeout is None


def test_metadata_gives_the_hypothesis_fields_and_timeout(
    git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "cache", "exit 0")
    write_metadata(
        git_repo,
        "cache",
        {
            "description": "stale cache entry",
            "probability": 0.8,
            "status": "testing",
            "dependencies": ["race"],
            "timeout": 12.5,
        },
    )

    (found,) = discover(git_repo)

    assert found.problem is None
    assert found.timeout == 12.5
    assert found.hypothesis is not None
    assert found.hypothesis.description == "stale cache entry"
    assert found.hypothesis.probability == 0.8
    assert found.hypothesis.status is HypothesisStatus.TESTING
    assert found.hypothesis.dependencies == ["race"]


@pytest.mark.parametrize(("memory", "limit"), [("500M", 500 * 1024**2), (4 * 1024**2, 4 * 1024**2)])
def test_metadata_gives_a_memory_limit_as_bytes_or_a_size(
    git_repo: Path, write_script: WriteScript, memory: object, limit: int
) -> None:
    write_script(git_repo, "cache", "exit 0")
    write_metadata(git_repo, "cache", {"memory": memory})

    (found,) = discover(git_repo)

    assert found.problem is None
    assert found.memory == limit


@pytest.mark.parametrize("key", ["timeout", "memory"])
def test_a_null_deadline_or_memory_limit_in_metadata_is_the_run_s(
    git_repo: Path, write_script: WriteScript, key: str
) -> None:
    write_script(git_repo, "cache", "exit 0")
    write_metadata(git_repo, "cache", {key: None})

    (found,) = discover(git_repo)

    assert found.problem is None
    assert (found.timeout, found.memory) == (None, None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"description": "x",', "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object, found list"),
        ({"probability": "high"}, "'probability' must be a number, got 'high'"),
        ({"colour": "red"}, "unknown hypothesis field(s): colour"),
        ({"status": "done"}, "'status' must be one of"),
        ({"timeout": 0}, "'timeout' must be a number of seconds > 0, got 0"),
        ({"timeout": True}, "'timeout' must be a number of seconds > 0, got True"),
        ({"id": "other"}, "'id' is 'other' but the file is for hypothesis 'cache'"),
        ({"memory": 0}, "'memory' must be a whole number of bytes >= 1048576"),
        (
            {"memory": "12XB"},
            "'memory' must be a whole number of bytes >= 1048576",
        ),
        (
            {"memory": 2**63},
            "'memory' must be a whole number of bytes >= 1048576",
        ),
        ({"memory": True}, "'memory' must be a whole number of bytes >= 1048576"),
        ({"memory": 1.5}, "'memory' must be a whole number of bytes >= 1048576"),
        ({"memory": 4096}, "'memory' must be a whole number of bytes >= 1048576"),
        ({"polarity": None}, "'polarity' must be one of"),
    ],
)
def test_broken_metadata_is_a_problem_naming_the_file(
    git_repo: Path, write_script: WriteScript, content: Any, expected: str
) -> None:
    write_script(git_repo, "cache", "exit 0")
    metadata = write_metadata(git_repo, "cache", content)

    (found,) = discover(git_repo)

    assert found.hypothesis is None
    assert found.problem is not None
    assert str(metadata) in found.problem
    assert expected in found.problem


def test_broken_metadata_leaves_the_other_hypotheses_alone(
    git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "broken", "exit 0")
    write_script(git_repo, "fine", "exit 0")
    write_metadata(git_repo, "broken", "{")

    broken, fine = discover(git_repo)

    assert broken.problem is not None
    assert fine.problem is None


def test_a_script_with_an_unsafe_id_is_listed_with_a_problem(
    git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "-dash", "exit 0")

    (found,) = discover(git_repo)

    assert found.hypothesis_id == "-dash"
    assert found.hypothesis is None
    assert found.problem is not None
    assert "not a safe file-name token" in found.problem


def test_ids_differing_only_in_case_in_one_worktree_are_a_problem(
    git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "Cache", "exit 0")
    write_script(git_repo, "cache", "exit 0")

    first, second = discover(git_repo)

    assert first.problem is None
    assert second.problem is not None
    assert "differs only in case from 'Cache'" in second.problem


def test_a_missing_directory_is_a_discovery_error(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match="does not exist"):
        discover(tmp_path / "missing")


def test_a_file_is_not_a_directory_to_search(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")

    with pytest.raises(DiscoveryError, match="is not a directory"):
        discover(tmp_path / "file")


def test_a_folder_outside_git_without_worktrees_is_a_discovery_error(tmp_path: Path) -> None:
    (tmp_path / "plain" / "sub").mkdir(parents=True)

    with pytest.raises(DiscoveryError, match="is not inside a git repository"):
        discover(tmp_path / "plain")


def test_a_current_directory_outside_git_is_a_discovery_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(DiscoveryError, match=r"current directory .* is not inside a git"):
        discover(None)


def test_git_missing_is_a_discovery_error(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")

    with pytest.raises(DiscoveryError, match="git is not installed"):
        discover(git_repo)


def test_a_bare_repository_is_searched_in_its_linked_worktrees(
    git_repo: Path, tmp_path: Path, write_script: WriteScript
) -> None:
    bare = tmp_path / "bare.git"
    run_git(["clone", "-q", "--bare", str(git_repo), str(bare)], tmp_path)
    linked = tmp_path / "linked"
    run_git(["worktree", "add", "-q", "-b", "hyp-linked", str(linked)], bare)
    write_script(linked, "cache", "exit 0")

    found = discover(bare)

    assert [(h.worktree, h.branch, h.hypothesis_id) for h in found] == [
        (linked.resolve(), "hyp-linked", "cache")
    ]


def test_a_worktree_whose_path_holds_a_newline_is_searched(
    git_repo: Path, tmp_path: Path, write_script: WriteScript
) -> None:
    odd = tmp_path / "odd\nname"
    run_git(["worktree", "add", "-q", "-b", "hyp-odd", str(odd)], git_repo)
    write_script(odd, "cache", "exit 0")

    found = discover(git_repo)

    assert [(h.worktree, h.branch) for h in found] == [(odd.resolve(), "hyp-odd")]


def test_a_worktree_whose_path_is_not_utf8_is_searched(
    git_repo: Path, tmp_path: Path, write_script: WriteScript
) -> None:
    odd = tmp_path / os.fsdecode(b"odd\xffname")
    run_git(["worktree", "add", "-q", "-b", "hyp-odd", str(odd)], git_repo)
    write_script(odd, "cache", "exit 0")

    found = discover(git_repo)

    assert [(h.worktree, h.branch) for h in found] == [(odd.resolve(), "hyp-odd")]


def test_a_worktree_whose_branch_was_deleted_says_so_and_has_no_head(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("orphan"), "cache", "exit 0")
    run_git(["update-ref", "-d", "refs/heads/hyp-orphan"], git_repo)

    (found,) = discover(git_repo)

    assert (found.branch, found.branch_gone, found.head) == ("hyp-orphan", True, None)
