"""Finding every hypothesis under a folder: which worktrees to search, and what each holds.

A folder is either a git repository (or any of its worktrees), whose every worktree is
searched, or a folder whose subfolders are worktrees. Each ``.falsification/test_<id>.sh`` is
one hypothesis; a bad id or broken metadata is kept with a ``problem`` rather than dropped, so
the user sees why that hypothesis did not run.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from ..core.classification import Polarity
from ..core.models import Hypothesis
from .git import GitError, Worktree, is_bare_repository, list_worktrees, toplevel
from .layout import config_path, invalid_id_message, is_valid_id, scripts_in
from .metadata import Metadata, MetadataError, read_metadata


class DiscoveryError(Exception):
    """The folder cannot be searched; the message is a plain sentence for the user."""


@dataclass(frozen=True)
class FoundHypothesis:
    """One hypothesis script found in one worktree, with what its metadata says."""

    worktree: Path
    branch: Optional[str]
    head: Optional[str]
    hypothesis_id: str
    script: Path
    hypothesis: Optional[Hypothesis]
    timeout: Optional[float]
    problem: Optional[str]
    setup: Optional[str] = None
    setup_timeout: Optional[float] = None
    polarity: Polarity = Polarity.DISPROVE
    #: The memory limit of its tree that its metadata sets, in bytes.
    memory: Optional[int] = None
    #: False when the metadata keeps the hypothesis out of the verdict cache.
    cache: bool = True
    #: The worktree's branch was deleted (``branch`` names it; ``head`` is None).
    branch_gone: bool = False


def discover(directory: Optional[Path]) -> List[FoundHypothesis]:
    """Every hypothesis under ``directory`` (None: the git repository of the current
    directory), sorted by worktree path, then id."""
    return discover_in(find_worktrees(directory))


def find_worktrees(directory: Optional[Path]) -> List[Worktree]:
    """The worktrees to search, sorted by path; raises :class:`DiscoveryError`."""
    try:
        return _find_worktrees(directory)
    except GitError as error:
        raise DiscoveryError(str(error)) from None


def discover_in(worktrees: Iterable[Worktree]) -> List[FoundHypothesis]:
    """Every hypothesis in the given worktrees, sorted by worktree path, then id."""
    found = [hypothesis for worktree in worktrees for hypothesis in _scan(worktree)]
    return sorted(found, key=lambda h: (str(h.worktree), h.hypothesis_id))


def _find_worktrees(directory: Optional[Path]) -> List[Worktree]:
    if directory is None:
        here = Path.cwd()
        if toplevel(here) is None and not is_bare_repository(here):
            raise DiscoveryError(f"the current directory {here} is not inside a git repository")
        return _usable(list_worktrees(here))
    if not directory.exists():
        raise DiscoveryError(f"{directory} does not exist")
    if not directory.is_dir():
        raise DiscoveryError(f"{directory} is not a directory")
    if toplevel(directory) is not None or is_bare_repository(directory):
        return _usable(list_worktrees(directory))
    held = [worktree for child in _subfolders(directory) for worktree in _as_worktree(child)]
    if not held:
        raise DiscoveryError(
            f"{directory} is not inside a git repository and none of its subfolders is a "
            "git worktree"
        )
    return _usable(held)


def _usable(worktrees: Iterable[Worktree]) -> List[Worktree]:
    """Worktrees with files to search, each once, by resolved path (bare or pruned ones have
    none)."""
    unique: Dict[Path, Worktree] = {}
    for worktree in worktrees:
        path = worktree.path.resolve()
        if not worktree.bare and path.is_dir():
            unique.setdefault(path, replace(worktree, path=path))
    return [unique[path] for path in sorted(unique, key=str)]


def _subfolders(directory: Path) -> List[Path]:
    return sorted(child for child in directory.iterdir() if child.is_dir())


def _as_worktree(folder: Path) -> List[Worktree]:
    """The worktree rooted at ``folder`` (with its branch and HEAD), or nothing."""
    if not (folder / ".git").exists():
        return []  # cheap test first: every work tree root holds a .git file or folder
    top = toplevel(folder)
    if top is None or top.resolve() != folder.resolve():
        return []
    for worktree in list_worktrees(folder):
        if worktree.path.resolve() == folder.resolve():
            return [worktree]
    return [Worktree(folder, None, None)]


def _scan(worktree: Worktree) -> List[FoundHypothesis]:
    found: List[FoundHypothesis] = []
    seen: Dict[str, str] = {}
    for hypothesis_id, script in scripts_in(worktree.path):
        clash = seen.setdefault(hypothesis_id.casefold(), hypothesis_id)
        found.append(_describe(worktree, script, hypothesis_id, clash))
    return found


def _describe(worktree: Worktree, script: Path, hypothesis_id: str, clash: str) -> FoundHypothesis:
    metadata, problem = _examine(worktree, script, hypothesis_id, clash)
    found = FoundHypothesis(
        worktree.path,
        worktree.branch,
        worktree.head,
        hypothesis_id,
        script,
        None,
        None,
        problem,
        branch_gone=worktree.branch_gone,
    )
    if metadata is None:
        return found
    # every field of the metadata has a namesake here: one loop keeps the two in step
    return replace(
        found, **{field.name: getattr(metadata, field.name) for field in fields(metadata)}
    )


def _examine(
    worktree: Worktree, script: Path, hypothesis_id: str, clash: str
) -> Tuple[Optional[Metadata], Optional[str]]:
    """What the metadata says, and the reason the hypothesis cannot run if there is one."""
    if not is_valid_id(hypothesis_id):
        return None, f"{script}: {invalid_id_message(hypothesis_id)}"
    try:
        metadata = read_metadata(config_path(worktree.path, hypothesis_id), hypothesis_id)
    except MetadataError as error:
        return None, str(error)
    problem = None
    if clash != hypothesis_id:
        problem = (
            f"{script}: hypothesis id {hypothesis_id!r} differs only in case from {clash!r} "
            "in the same worktree; rename one of them"
        )
    return metadata, problem
