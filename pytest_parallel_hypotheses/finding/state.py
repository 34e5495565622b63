"""What a worktree holds, as one digest: whether a setup step made for it still fits.

The digest covers the tree of HEAD and the content of every uncommitted or untracked file
that git does not ignore, so a commit, an edit or a new file changes it, and what the
``.gitignore`` hides (a ``.venv``, ``node_modules``, an extension built in place) does not:
its folders and builds are listed apart (:func:`ignored_builds`), since a setup step made them
and the scripts need them still there.
The worktree's own ``.venv`` and Python's bytecode caches are set apart the same way whether
git ignores them or not: Python writes bytecode into them as the scripts run, and a project
that does not ignore its ``.venv`` (simplejson) had a new content at every run. So are its
hypotheses' scripts and metadata: they are not what a setup step builds from (a trial's
every edit of a script ran its step again), and a verdict digests each hypothesis's own.
"""

from __future__ import annotations

import hashlib
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import List

from .git import GitError, git_common_dir, run_git, toplevel
from .layout import METADATA_PATTERN, SCRIPT_PATTERN, WORKTREE_VENV

#: Bytes read from a file at a time while hashing it.
_CHUNK = 1024 * 1024
#: What the content leaves out, ignored by git or not (see the module's docstring): the
#: hypotheses' own files by their names, as git pathspecs, since a helper beside them
#: (``python .falsification/check.py``) is none of them, and an edit of it must count.
_SET_APART = (
    f"{WORKTREE_VENV}/",
    ":(glob)**/__pycache__/**",
    *(f":(glob){pattern.replace('<id>', '*')}" for pattern in (SCRIPT_PATTERN, METADATA_PATTERN)),
)


def content_state(worktree: Path) -> str:
    """The digest of the worktree's content (see the module's docstring)."""
    digest = hashlib.sha256(_head_tree(worktree).encode())
    excluded = [_excluded(path) for path in _SET_APART]
    listing = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]
    status = run_git([*listing, "--", ".", *excluded], worktree)
    for entry in sorted(filter(None, status.split("\0"))):
        digest.update(entry.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(_file_digest(worktree / entry[3:]))
    return digest.hexdigest()


def _excluded(pathspec: str) -> str:
    """``pathspec`` with git's ``exclude`` magic added to what it carries."""
    if pathspec.startswith(":("):
        return ":(exclude," + pathspec[2:]
    return f":(exclude){pathspec}"


def ignored_builds(worktree: Path) -> List[str]:
    """The folders of the worktree that git ignores (``node_modules``, ``.venv``, ``build``),
    none inside another, and the compiled extensions built in place outside them, relative to
    it: the other files it ignores (logs, coverage data) come and go as scripts run. Its own
    ``.venv`` counts, ignored or not."""
    listed = run_git(
        ["ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"], worktree
    )
    entries = [entry for entry in listed.split("\0") if entry]
    builds = [entry for entry in entries if entry.endswith(tuple(EXTENSION_SUFFIXES))]
    outermost: List[str] = []
    folders = {entry for entry in entries if entry.endswith("/")}
    if os.path.isdir(worktree / WORKTREE_VENV):
        folders.add(f"{WORKTREE_VENV}/")
    for folder in sorted(folders):
        if not outermost or not folder.startswith(outermost[-1]):  # sorted: inside follows
            outermost.append(folder)
    return [folder.rstrip("/") for folder in outermost] + sorted(builds)


def common_dir(worktree: Path) -> Path:
    """The folder that every worktree of the repository shares (``git --git-common-dir``);
    raises :class:`GitError` unless ``worktree`` is the root of a git worktree."""
    top = toplevel(worktree)
    if top is None or top.resolve() != worktree.resolve():
        raise GitError(f"{worktree} is not the root of a git worktree")
    return git_common_dir(worktree)


def _head_tree(worktree: Path) -> str:
    try:
        return run_git(["rev-parse", "--verify", "--quiet", "HEAD^{tree}"], worktree)
    except GitError:
        return "no commit yet"


def _file_digest(path: Path) -> bytes:
    """The content of a changed path: a file's bytes, a link's target, or what it is."""
    if path.is_symlink():
        return b"link:" + os.fsencode(os.readlink(path))
    if not path.is_file():
        return b"deleted" if not path.exists() else b"folder"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.digest()
