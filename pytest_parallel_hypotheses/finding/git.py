"""The few git questions the product asks, answered by the real ``git`` command.

``GIT_*`` variables are removed from git's environment: inside a hook or a nested run they
would point git at another repository than the folder we ask about.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

PathArg = Union[str, "os.PathLike[str]"]


class GitError(Exception):
    """git is missing or refused; the message is a plain sentence for the user."""


@dataclass(frozen=True)
class Worktree:
    """One entry of ``git worktree list --porcelain``."""

    path: Path
    head: Optional[str]  # None when the branch is gone (git shows a HEAD of zeros)
    branch: Optional[str]  # short name, None when detached
    bare: bool = False
    #: The branch checked out here was deleted: the files stay, but no commit is behind them.
    branch_gone: bool = False


def git_environment() -> Dict[str, str]:
    """The current environment without the variables that redirect git, and with git's
    optional locks off: a ``git status`` of ours while scripts run would otherwise take the
    index's lock, and a script's own git command in that worktree fail for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    return env


def run_git(args: Sequence[str], cwd: PathArg) -> str:
    """Run ``git args`` in ``cwd`` and return its standard output, stripped of the last newline."""
    if shutil.which("git") is None:
        raise GitError("git is not installed or not on PATH; install git and try again")
    completed = subprocess.run(
        ["git", *args],
        cwd=os.fspath(cwd),
        env=git_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        errors="surrogateescape",  # a path that is not UTF-8 decodes as os.fsdecode does it
        check=False,
    )
    if completed.returncode != 0:
        detail = completed.stderr.strip() or completed.stdout.strip()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {detail}")
    return completed.stdout.rstrip("\n")


def toplevel(path: PathArg) -> Optional[Path]:
    """The root of the work tree that contains ``path``, or None if it is not in one."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    try:
        return Path(run_git(["rev-parse", "--show-toplevel"], folder))
    except GitError:
        if shutil.which("git") is None:
            raise
        return None


def is_bare_repository(path: PathArg) -> bool:
    """True if ``path`` is (inside) a bare repository, whose worktrees are all linked ones."""
    try:
        return run_git(["rev-parse", "--is-bare-repository"], path) == "true"
    except GitError:
        if shutil.which("git") is None:
            raise
        return False


def list_worktrees(path: PathArg) -> List[Worktree]:
    """Every worktree of the repository that ``path`` belongs to, the main one first.

    Read in ``-z`` form: a path may hold any character, a newline included."""
    output = run_git(["worktree", "list", "--porcelain", "-z"], path)
    entries: List[Worktree] = []
    fields: Dict[str, str] = {}
    for line in output.split("\0"):
        if line:
            key, _, value = line.partition(" ")
            fields[key] = value
        elif fields:  # an empty field ends an entry
            entries.append(_worktree_of(fields))
            fields = {}
    return entries


def is_dirty(worktree: PathArg) -> bool:
    """True if the worktree has uncommitted changes or untracked files."""
    return bool(uncommitted(worktree))


def uncommitted(worktree: PathArg) -> List[str]:
    """The worktree's uncommitted changes and untracked files, as ``git status --short``
    lists them (``?? .venv/``, `` M setup.py``; a rename as its deletion and its addition, so
    that every entry names one path)."""
    # whatever the user's status.showUntrackedFiles: "no" would hide their notes from
    # ``clean``, and "all" list a .venv file by file
    status = run_git(
        ["status", "--porcelain", "-z", "--no-renames", "--untracked-files=normal"], worktree
    )
    return [entry for entry in status.split("\0") if entry]


def changed_paths(worktree: PathArg) -> List[str]:
    """The paths, from the worktree's root, of its uncommitted changes and untracked files (a
    folder whose files are all untracked as the folder, ending with ``/``)."""
    return [entry[3:] for entry in uncommitted(worktree)]


def _worktree_of(fields: Dict[str, str]) -> Worktree:
    branch = fields.get("branch")
    if branch is not None and branch.startswith("refs/heads/"):
        branch = branch[len("refs/heads/") :]
    head = fields.get("HEAD")
    gone = head is not None and branch is not None and not head.strip("0")
    return Worktree(
        path=Path(fields["worktree"]),
        head=None if gone else head,
        branch=branch,
        bare="bare" in fields,
        branch_gone=gone,
    )


def git_common_dir(path: PathArg) -> Path:
    """The folder that every worktree of the repository of ``path`` shares."""
    return (Path(path) / run_git(["rev-parse", "--git-common-dir"], path)).resolve()
