"""Creating and removing hypothesis worktrees in real repositories."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import venv
from pathlib import Path
from typing import Any, Callable, List

import pytest

from pytest_parallel_hypotheses.cli.scaffold import (
    FALLBACK_IDENTITY,
    Request,
    ScaffoldError,
    clean,
    create,
    registered,
)
from pytest_parallel_hypotheses.engine.setup import SetupStamp
from pytest_parallel_hypotheses.finding.discovery import discover
from pytest_parallel_hypotheses.finding.git import is_dirty, list_worktrees, run_git

TRICKY = 'it\'s "quoted", $(touch injected) `touch injected2` ; touch injected3 & $HOME'

MakeWorktree = Callable[[str], Path]
WriteScript = Callable[..., Path]


def commit_all(worktree: Path, message: str = "change") -> None:
    """Commit everything in ``worktree`` under a fixed identity."""
    run_git(["add", "-A"], worktree)
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    run_git([*identity, "commit", "-q", "-m", message], worktree)


def branches(repo: Path) -> List[str]:
    return run_git(["branch", "--format=%(refname:short)"], repo).splitlines()


def new(repo: Path, hypothesis_id: str, command: str = "exit 0", **fields: Any) -> Path:
    """Create a hypothesis from ``repo`` and return its worktree."""
    return create(repo, Request(hypothesis_id, command, **fields)).worktree


def test_worktree_is_on_a_branch_named_after_the_id_next_to_the_repository(
    git_repo: Path, tmp_path: Path
) -> None:
    created = create(git_repo, Request("slow-cache", "exit 0"))
    assert created.worktree == tmp_path / "worktrees" / "repo-hyp-slow-cache"
    assert created.branch == "hyp-slow-cache"
    entry = next(w for w in list_worktrees(git_repo) if w.path == created.worktree)
    assert entry.branch == "hyp-slow-cache"


def test_dir_chooses_the_worktree_folder(git_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere" / "h1"
    assert new(git_repo, "h1", folder=folder) == folder
    assert (folder / ".falsification" / "test_h1.sh").is_file()


def test_worktree_starts_clean_with_its_files_committed(git_repo: Path) -> None:
    worktree = new(git_repo, "h1")
    assert not is_dirty(worktree)
    committed = run_git(["ls-tree", "-r", "--name-only", "HEAD", ".falsification"], worktree)
    assert committed.splitlines() == [".falsification/config_h1.json", ".falsification/test_h1.sh"]


def test_main_worktree_is_left_unchanged(git_repo: Path) -> None:
    head = run_git(["rev-parse", "HEAD"], git_repo)
    new(git_repo, "h1")
    assert run_git(["rev-parse", "HEAD"], git_repo) == head
    assert not is_dirty(git_repo)


def test_script_runs_the_command_at_the_worktree_root(git_repo: Path, tmp_path: Path) -> None:
    worktree = new(git_repo, "h1", command="pwd; exit 3")
    script = worktree / ".falsification" / "test_h1.sh"
    completed = subprocess.run([str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 3
    assert Path(completed.stdout.strip()).resolve() == worktree.resolve()


def test_the_script_says_how_to_run_it_alone_as_the_run_does(
    git_repo: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By hand, a script imports what the environment points at, the main checkout for a
    development install: a new-user trial's fix, confirmed by the run, failed by hand."""
    worktree = new(git_repo, "fix-it", command="exit 1")
    new(git_repo, "fix-it-2")  # an id that a -k of the first would pick too
    script = (worktree / ".falsification" / "test_fix-it.sh").read_text()
    [hint] = re.findall(r"`(pytest --hypotheses[^`]*)`", script)
    monkeypatch.chdir(worktree)  # the script says: from this worktree's root

    result = pytester.runpytest(
        *shlex.split(hint)[1:], "-p", "no:hypothesispytest", "-p", "no:asyncio"
    )

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*fix-it*SUPPORTED*"])


def test_command_runs_verbatim_with_its_quotes(git_repo: Path) -> None:
    command = "printf '%s|' \"it's\" '$(not run)' \"$((1 + 2))\""
    worktree = new(git_repo, "h1", command=command)
    script = worktree / ".falsification" / "test_h1.sh"
    completed = subprocess.run([str(script)], capture_output=True, text=True, check=True)
    assert completed.stdout == "it's|$(not run)|3|"


def test_tricky_description_stays_inert_and_round_trips(git_repo: Path, tmp_path: Path) -> None:
    worktree = new(git_repo, "h1", description=TRICKY)
    subprocess.run([str(worktree / ".falsification" / "test_h1.sh")], cwd=tmp_path, check=True)
    assert not list(tmp_path.rglob("injected*"))
    assert not list(worktree.rglob("injected*"))
    data = json.loads((worktree / ".falsification" / "config_h1.json").read_text("utf-8"))
    assert data["description"] == TRICKY


def test_tricky_command_is_stored_as_given_in_the_metadata(git_repo: Path) -> None:
    worktree = new(git_repo, "h1", command=TRICKY)
    data = json.loads((worktree / ".falsification" / "config_h1.json").read_text("utf-8"))
    assert data["test_strategy"] == TRICKY
    assert TRICKY in (worktree / ".falsification" / "test_h1.sh").read_text("utf-8")


def test_metadata_is_what_discovery_reads(git_repo: Path) -> None:
    new(git_repo, "h1", description="the cache is stale", timeout=2.5)
    (found,) = discover(git_repo)
    assert found.problem is None
    assert found.hypothesis is not None
    assert found.hypothesis.description == "the cache is stale"
    assert found.timeout == 2.5
    assert found.branch == "hyp-h1"


@pytest.mark.parametrize("bad_id", ["../escape", "two words", "$(touch x)", "-dash", "a'b", ""])
def test_unsafe_id_is_refused_before_anything_is_made(
    git_repo: Path, tmp_path: Path, bad_id: str
) -> None:
    with pytest.raises(ScaffoldError, match="not a safe file-name token"):
        new(git_repo, bad_id)
    assert branches(git_repo) == ["main"]
    assert not (tmp_path / "worktrees").exists()


def test_empty_command_is_refused(git_repo: Path) -> None:
    with pytest.raises(ScaffoldError, match="command to run is empty"):
        new(git_repo, "h1", command="  \n")


def test_taken_id_is_refused(git_repo: Path) -> None:
    new(git_repo, "h1")
    with pytest.raises(ScaffoldError, match="hypothesis id 'h1' is already taken"):
        new(git_repo, "h1", folder=git_repo.parent / "other")


def test_taken_id_whose_worktree_was_deleted_says_to_clean(git_repo: Path) -> None:
    shutil.rmtree(new(git_repo, "h1"))
    with pytest.raises(ScaffoldError, match=r"which is gone .*pytest-hypotheses clean"):
        new(git_repo, "h1", folder=git_repo.parent / "other")


def test_id_differing_only_in_case_is_refused(git_repo: Path) -> None:
    new(git_repo, "cache")
    with pytest.raises(ScaffoldError, match=r"already taken \(as 'cache'"):
        new(git_repo, "Cache")


def test_id_scripted_in_a_handmade_worktree_is_refused(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    write_script(make_worktree("mine"), "h1", "exit 0")
    with pytest.raises(ScaffoldError, match=r"already taken by .*mine"):
        new(git_repo, "h1")


def test_existing_branch_is_refused(git_repo: Path) -> None:
    run_git(["branch", "hyp-h1"], git_repo)
    with pytest.raises(ScaffoldError, match="a branch named 'hyp-h1' already exists"):
        new(git_repo, "h1")


def test_existing_folder_is_refused(git_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "worktrees" / "repo-hyp-h1"
    folder.mkdir(parents=True)
    with pytest.raises(ScaffoldError, match=r"worktree folder .* already exists"):
        new(git_repo, "h1")
    assert branches(git_repo) == ["main"]


def test_folder_inside_the_repository_is_refused(git_repo: Path) -> None:
    with pytest.raises(ScaffoldError, match="is inside the worktree"):
        new(git_repo, "h1", folder=git_repo / "hyp")


def test_modified_file_makes_the_current_head_a_dirty_base(git_repo: Path) -> None:
    (git_repo / "README").write_text("changed\n")
    with pytest.raises(ScaffoldError, match="has uncommitted changes"):
        new(git_repo, "h1")
    assert branches(git_repo) == ["main"]


def test_untracked_file_makes_the_current_head_a_dirty_base(git_repo: Path) -> None:
    (git_repo / "notes.txt").write_text("new\n")
    with pytest.raises(ScaffoldError, match="has uncommitted changes"):
        new(git_repo, "h1")


def test_explicit_base_ignores_uncommitted_changes(git_repo: Path) -> None:
    (git_repo / "README").write_text("changed\n")
    worktree = new(git_repo, "h1", base="main")
    assert (worktree / "README").read_text() == "a project\n"


def test_base_chooses_the_commit_to_branch_from(git_repo: Path) -> None:
    first = run_git(["rev-parse", "HEAD"], git_repo)
    (git_repo / "README").write_text("second\n")
    commit_all(git_repo)
    worktree = new(git_repo, "h1", base=first[:10])
    assert (worktree / "README").read_text() == "a project\n"
    assert run_git(["rev-parse", "HEAD~1"], worktree) == first


@pytest.mark.parametrize("base", ["no-such-branch", "--orphan"])
def test_base_that_is_not_a_commit_is_refused(git_repo: Path, base: str) -> None:
    with pytest.raises(ScaffoldError, match=f"the base '{base}'"):
        new(git_repo, "h1", base=base)


def test_base_that_has_a_script_for_the_id_is_refused(git_repo: Path) -> None:
    new(git_repo, "h1")
    run_git(["branch", "old", "hyp-h1"], git_repo)
    clean(git_repo)
    with pytest.raises(ScaffoldError, match="base commit already has a test script"):
        new(git_repo, "h1", base="old")


def test_other_hypotheses_of_the_base_are_reported(git_repo: Path) -> None:
    new(git_repo, "h1")
    created = create(git_repo, Request("h2", "exit 0", base="hyp-h1"))
    assert created.inherited_ids == ("h1",)


def test_repository_without_commits_is_refused(tmp_path: Path) -> None:
    run_git(["init", "-q", str(tmp_path / "empty")], tmp_path)
    with pytest.raises(ScaffoldError, match="no commit yet"):
        new(tmp_path / "empty", "h1")


def test_outside_a_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="not inside a git repository"):
        new(tmp_path, "h1")


def test_works_without_a_configured_git_identity(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    worktree = new(git_repo, "h1")
    author = run_git(["log", "-1", "--format=%an <%ae>"], worktree)
    assert author == f"{FALLBACK_IDENTITY['user.name']} <{FALLBACK_IDENTITY['user.email']}>"


def test_failed_creation_leaves_nothing_behind(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / ".falsification").write_text("a file where the folder should be\n")
    commit_all(git_repo)
    with pytest.raises(ScaffoldError, match="could not write the files"):
        new(git_repo, "h1")
    assert branches(git_repo) == ["main"]
    assert len(list_worktrees(git_repo)) == 1
    assert not (tmp_path / "worktrees" / "repo-hyp-h1").exists()
    assert registered(git_repo) == []


def test_clean_removes_worktrees_branches_and_records(git_repo: Path) -> None:
    first, second = new(git_repo, "h1"), new(git_repo, "h2")
    report = clean(git_repo)
    assert [entry.hypothesis_id for entry in report.removed] == ["h1", "h2"]
    assert not first.exists()
    assert not second.exists()
    assert branches(git_repo) == ["main"]
    assert len(list_worktrees(git_repo)) == 1
    assert registered(git_repo) == []


def test_clean_forgets_the_setup_stamps_of_the_worktrees_it_removes(git_repo: Path) -> None:
    """A new-user trial found them in the repository's git folder after ``clean --force``."""
    removed, kept = new(git_repo, "h1"), new(git_repo, "h2")
    stamps = [SetupStamp.of(tree, "make setup") for tree in (removed, kept)]
    for stamp in stamps:
        stamp.path.parent.mkdir(parents=True, exist_ok=True)
        stamp.path.write_text("{}")
        stamp.lock_path.write_text("")
    (kept / "uncommitted").write_text("kept unless forced")

    report = clean(git_repo)

    assert [entry.hypothesis_id for entry in report.kept_dirty] == ["h2"]
    assert [stamp.path.exists() for stamp in stamps] == [False, True]
    assert [stamp.lock_path.exists() for stamp in stamps] == [False, True]


def test_clean_in_a_bare_repository_forgets_the_stamps_and_finishes(
    git_repo: Path, tmp_path: Path
) -> None:
    """Its stamps are in the bare folder, which is no worktree's root: looking for them
    there stopped ``clean`` after the worktree was removed, its branch left behind."""
    bare = tmp_path / "bare.git"
    run_git(["clone", "-q", "--bare", str(git_repo), str(bare)], tmp_path)
    linked = tmp_path / "linked"
    run_git(["worktree", "add", "-q", "-b", "work", str(linked)], bare)
    stamp = SetupStamp.of(new(linked, "h2"), "make setup")
    stamp.path.parent.mkdir(parents=True, exist_ok=True)
    stamp.path.write_text("{}")

    report = clean(bare)

    assert ([entry.hypothesis_id for entry in report.removed], report.failures) == (["h2"], [])
    assert not stamp.path.exists()
    assert "hyp-h2" not in run_git(["branch", "--list"], bare)


def test_clean_never_touches_a_handmade_worktree(
    git_repo: Path, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    mine = make_worktree("mine")
    write_script(mine, "mine", "exit 0")
    new(git_repo, "h1")
    clean(git_repo, force=True)
    assert (mine / ".falsification" / "test_mine.sh").exists()
    assert branches(git_repo) == ["hyp-mine", "main"]


def test_clean_keeps_a_worktree_with_uncommitted_changes(git_repo: Path) -> None:
    worktree = new(git_repo, "h1")
    (worktree / "fix.py").write_text("print('work in progress')\n")
    report = clean(git_repo)
    assert [entry.hypothesis_id for entry in report.kept_dirty] == ["h1"]
    assert report.removed == []
    assert (worktree / "fix.py").exists()
    assert "hyp-h1" in branches(git_repo)


def test_clean_removes_a_worktree_whose_only_untracked_folder_is_a_virtualenv(
    git_repo: Path,
) -> None:
    """A setup step's ``.venv`` is remade at will: it keeps neither the worktree nor asks for
    ``--force``, which would also drop a branch with real commits."""
    worktree = new(git_repo, "h1")
    (worktree / "fix.py").write_text("print('fixed')\n")
    commit_all(worktree, "the fix")
    venv.create(worktree / ".venv", with_pip=False)

    report = clean(git_repo)

    assert [entry.hypothesis_id for entry in report.removed] == ["h1"]
    assert not worktree.exists()
    assert [entry.branch for entry in report.kept_branches] == ["hyp-h1"]


@pytest.mark.parametrize("shown", ["all", "no"])
def test_clean_reads_untracked_files_whatever_git_is_set_to_show(
    git_repo: Path, shown: str
) -> None:
    """``all`` would list a .venv file by file, ``no`` would hide the user's notes."""
    run_git(["config", "status.showUntrackedFiles", shown], git_repo)
    venv_only, with_notes = new(git_repo, "h1"), new(git_repo, "h2")
    venv.create(venv_only / ".venv", with_pip=False)
    (with_notes / "notes.txt").write_text("work in progress\n")

    report = clean(git_repo)

    assert [entry.hypothesis_id for entry in report.removed] == ["h1"]
    assert [entry.hypothesis_id for entry in report.kept_dirty] == ["h2"]


def test_clean_keeps_a_worktree_with_an_untracked_folder_that_is_not_a_virtualenv(
    git_repo: Path,
) -> None:
    worktree = new(git_repo, "h1")
    (worktree / "venv-notes").mkdir()
    (worktree / "venv-notes" / "todo.txt").write_text("work in progress\n")

    report = clean(git_repo)

    assert list(report.changes.values()) == [["?? venv-notes/"]]
    assert (worktree / "venv-notes" / "todo.txt").exists()


def test_clean_with_force_removes_a_worktree_with_uncommitted_changes(git_repo: Path) -> None:
    worktree = new(git_repo, "h1")
    (worktree / "README").write_text("edited\n")
    report = clean(git_repo, force=True)
    assert [entry.hypothesis_id for entry in report.removed] == ["h1"]
    assert not worktree.exists()
    assert branches(git_repo) == ["main"]


def test_clean_keeps_a_branch_with_commits_made_after_new(git_repo: Path) -> None:
    worktree = new(git_repo, "h1")
    (worktree / "fix.py").write_text("print('fixed')\n")
    commit_all(worktree, "the fix")
    report = clean(git_repo)
    assert [entry.branch for entry in report.kept_branches] == ["hyp-h1"]
    assert not worktree.exists()
    assert "hyp-h1" in branches(git_repo)
    assert registered(git_repo) == []


def test_clean_with_force_deletes_a_branch_with_new_commits(git_repo: Path) -> None:
    worktree = new(git_repo, "h1")
    (worktree / "fix.py").write_text("print('fixed')\n")
    commit_all(worktree, "the fix")
    clean(git_repo, force=True)
    assert branches(git_repo) == ["main"]


def test_clean_of_a_folder_of_worktrees_is_limited_to_it(git_repo: Path, tmp_path: Path) -> None:
    inside = new(git_repo, "h1", folder=tmp_path / "batch1" / "h1")
    outside = new(git_repo, "h2", folder=tmp_path / "batch2" / "h2")
    clean(tmp_path / "batch1")
    assert not inside.exists()
    assert outside.exists()
    assert branches(git_repo) == ["hyp-h2", "main"]


def test_clean_from_a_hypothesis_worktree_cleans_the_whole_repository(git_repo: Path) -> None:
    first, second = new(git_repo, "h1"), new(git_repo, "h2")
    clean(first)
    assert not first.exists()
    assert not second.exists()


def test_clean_after_the_folder_was_deleted_by_hand(git_repo: Path) -> None:
    worktree = new(git_repo, "h1")
    shutil.rmtree(worktree)
    report = clean(git_repo)
    assert [entry.hypothesis_id for entry in report.removed] == ["h1"]
    assert branches(git_repo) == ["main"]
    assert len(list_worktrees(git_repo)) == 1


def test_id_can_be_reused_after_clean(git_repo: Path) -> None:
    new(git_repo, "h1")
    clean(git_repo)
    assert (new(git_repo, "h1") / ".falsification" / "test_h1.sh").is_file()
