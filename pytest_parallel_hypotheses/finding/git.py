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
    head: Optional[str]
    branch: Optional[str]  # short name, None when detached
    bare: bool = False


def git_environment() -> Dict[str, str]:
    """The current environment without the variables that redirect git."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


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
        text=True,
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


def list_worktrees(path: PathArg) -> List[Worktree]:
    """Every worktree of the repository that ``path`` belongs to, the main one first."""
    output = run_git(["worktree", "list", "--porcelain"], path)
    return [_parse_entry(block) for block in output.split("\n\n") if block.strip()]


def is_dirty(worktree: PathArg) -> bool:
    """True if the worktree has uncommitted changes or untracked files."""
    return bool(run_git(["status", "--porcelain"], worktree))


def _parse_entry(block: str) -> Worktree:
    fields: Dict[str, str] = {}
    for line in block.splitlines():
        key, _, value = line.partition(" ")
        fields[key] = value
    branch = fields.get("branch")
    if branch is not None and branch.startswith("refs/heads/"):
        branch = branch[len("refs/heads/") :]
    return Worktree(
        path=Path(fields["worktree"]),
        head=fields.get("HEAD"),
        branch=branch,
        bare="bare" in fields,
    )
