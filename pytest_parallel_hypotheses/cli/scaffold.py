"""Creating and removing hypothesis worktrees: what ``pytest-hypotheses new`` and ``clean`` do.

Every worktree made here is recorded in the repository's git config (section
``pytest-hypotheses``), so ``clean`` removes exactly those and never a worktree made by hand.
The script and its metadata are committed on the new branch: the worktree starts clean, so any
later edit shows up as an uncommitted change that ``clean`` refuses to throw away.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..core.classification import Polarity
from ..core.models import Hypothesis
from ..core.setup import setup_problem
from ..engine.setup import SetupStamp
from ..finding.discovery import find_worktrees
from ..finding.git import (
    GitError,
    Worktree,
    is_dirty,
    list_worktrees,
    run_git,
    toplevel,
    uncommitted,
)
from ..finding.layout import (
    SCRIPT_DIR,
    config_path,
    invalid_id_message,
    is_valid_id,
    script_id,
    script_path,
    scripts_in,
)

#: Branches made by ``new`` are called ``hyp-<id>``, like their folders ``<repo>-hyp-<id>``.
BRANCH_PREFIX = "hyp-"
#: The git config section that records what ``new`` created: ``pytest-hypotheses.<id>.*``.
REGISTRY_SECTION = "pytest-hypotheses"
#: Used for the scaffolding commit only when git has no identity configured (a fresh machine).
FALLBACK_IDENTITY = {"user.name": "pytest-hypotheses", "user.email": "pytest-hypotheses@localhost"}

SCRIPT_TEMPLATE = """\
#!/bin/sh
# The test of hypothesis {hypothesis_id}, written to {aim} it. It runs at the root of its
# worktree. Exit 0 {passing} the hypothesis; a genuine failure (exit 1-123 or a crash)
# {failing} it; exit 125 means "cannot test this here"; a timeout or a broken script is
# inconclusive. It may run more than once: leave nothing behind that changes the next run.
# Created by `pytest-hypotheses new`: edit the command below as you like.
# By hand, Python imports what your environment points at (for a development install of the
# project, the main checkout's code); from this worktree's root,
# `pytest --hypotheses=. .falsification/test_{hypothesis_id}.sh -v` runs it alone as the run
# does, on this worktree's code.
cd "$(dirname "$0")/.." || exit 126
{command}
"""

#: How the script's comment tells each polarity: its aim, what exit 0 and a failure do.
_POLARITY_WORDS = {
    Polarity.DISPROVE: {"aim": "DISPROVE", "passing": "falsifies", "failing": "supports"},
    Polarity.CONFIRM: {"aim": "CONFIRM", "passing": "supports", "failing": "falsifies"},
}


class ScaffoldError(Exception):
    """A request the scaffolding refuses; the message is a plain sentence for the user."""


@dataclass(frozen=True)
class Request:
    """What ``new`` is asked for; ``base`` None means the current HEAD, ``folder`` None the
    default (a relative folder is taken from the current directory)."""

    hypothesis_id: str
    command: str
    description: str = ""
    timeout: Optional[float] = None
    base: Optional[str] = None
    folder: Optional[Path] = None
    setup: Optional[str] = None
    setup_timeout: Optional[float] = None
    polarity: Polarity = Polarity.DISPROVE
    #: The memory limit of the script's tree as the user wrote it (``500M``).
    memory: Optional[str] = None


@dataclass(frozen=True)
class Created:
    """A hypothesis worktree that ``new`` made, and the other hypotheses its base brought along."""

    hypothesis_id: str
    worktree: Path
    branch: str
    base: str
    commit: str
    script: Path
    config: Path
    inherited_ids: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Registered:
    """One entry of the registry: a worktree and branch that ``new`` created."""

    hypothesis_id: str
    worktree: Path
    branch: str
    commit: Optional[str]


@dataclass
class CleanReport:
    """What ``clean`` removed, what it kept and why."""

    removed: List[Registered] = field(default_factory=list)
    kept_dirty: List[Registered] = field(default_factory=list)
    #: What each worktree kept for its changes has uncommitted, as ``git status`` says it.
    changes: Dict[Path, List[str]] = field(default_factory=dict)
    kept_branches: List[Registered] = field(default_factory=list)
    failures: List[str] = field(default_factory=list)


def create(start: Path, request: Request) -> Created:
    """Make the worktree, branch, script and metadata of a new hypothesis, or change nothing."""
    hypothesis_id = request.hypothesis_id
    _check_request(request)
    here = _worktree_root(start)
    worktrees = list_worktrees(here)
    main = worktrees[0].path
    folder = _absolute(request.folder) if request.folder else default_folder(main, hypothesis_id)
    _check_id_free(main, worktrees, hypothesis_id)
    _check_folder(folder, worktrees)
    base = _resolve_base(here, request.base)
    inherited = _check_base_scripts(here, base, hypothesis_id)
    branch = BRANCH_PREFIX + hypothesis_id
    run_git(["worktree", "add", "-q", "-b", branch, str(folder), base], here)
    try:
        _register(main, Registered(hypothesis_id, folder, branch, None))
        script, config = _write_files(folder, request)
        commit = _commit(folder, hypothesis_id, [script, config])
        _register(main, Registered(hypothesis_id, folder, branch, commit))
    except (GitError, ScaffoldError):
        _undo(main, folder, branch, hypothesis_id)
        raise
    return Created(hypothesis_id, folder, branch, base, commit, script, config, inherited)


def _absolute(folder: Path) -> Path:
    """``folder`` from the current directory, with ``..`` resolved as the shell would."""
    return Path(os.path.abspath(folder))


def default_folder(main: Path, hypothesis_id: str) -> Path:
    """``../worktrees/<repo>-hyp-<id>`` next to the main worktree, so worktrees never nest."""
    return main.parent / "worktrees" / f"{main.name}-{BRANCH_PREFIX}{hypothesis_id}"


def script_text(hypothesis_id: str, command: str, polarity: Polarity = Polarity.DISPROVE) -> str:
    """The script for ``command``: the command verbatim, as the user would type it in a shell,
    under a comment that says what its exit status means for the hypothesis."""
    return SCRIPT_TEMPLATE.format(
        hypothesis_id=hypothesis_id, command=command.strip("\n"), **_POLARITY_WORDS[polarity]
    )


def metadata(request: Request) -> Dict[str, Any]:
    """The ``config_<id>.json`` content: every Hypothesis field, the polarity, and the
    ``timeout``, ``setup``, ``setup_timeout`` and ``memory`` when given."""
    hypothesis = Hypothesis(
        id=request.hypothesis_id, description=request.description, test_strategy=request.command
    )
    data = hypothesis.to_dict()
    data["polarity"] = request.polarity.value
    given = {
        "timeout": request.timeout,
        "setup": request.setup,
        "setup_timeout": request.setup_timeout,
        "memory": request.memory,
    }
    data.update((key, value) for key, value in given.items() if value is not None)
    return data


def registered(repository: Path) -> List[Registered]:
    """Every hypothesis worktree recorded in the repository's config, sorted by id."""
    prefix = REGISTRY_SECTION + "."
    entries: Dict[str, Dict[str, str]] = {}
    for key, value in _config(repository, local=True).items():
        if key.startswith(prefix):
            hypothesis_id, _, name = key[len(prefix) :].rpartition(".")
            entries.setdefault(hypothesis_id, {})[name] = value
    return [
        Registered(hypothesis_id, Path(values["worktree"]), values["branch"], values.get("commit"))
        for hypothesis_id, values in sorted(entries.items())
        if "worktree" in values and "branch" in values
    ]


def clean(directory: Optional[Path], *, force: bool = False) -> CleanReport:
    """Remove the worktrees and branches ``new`` created in ``directory`` (None: the cwd's repo).

    ``directory`` is read exactly as ``pytest --hypotheses=DIR`` reads it. A worktree with
    uncommitted changes, and a branch with commits made after ``new``, are kept unless
    ``force``. Pruning comes first, so a worktree folder deleted by hand frees its branch;
    such entries are cleaned wherever they were.
    """
    chosen = {worktree.path.resolve() for worktree in find_worktrees(directory)}
    report = CleanReport()
    for repository in sorted({main_worktree(path) for path in chosen}):
        run_git(["worktree", "prune"], repository)
        worktrees = list_worktrees(repository)
        for entry in registered(repository):
            live = _live_worktree(worktrees, entry)
            if live is None or live.path.resolve() in chosen:
                _clean_one(repository, entry, live, force, report)
    return report


def main_worktree(path: Path) -> Path:
    """The main worktree of the repository that ``path`` is in."""
    return list_worktrees(_worktree_root(path))[0].path


def _check_request(request: Request) -> None:
    if not is_valid_id(request.hypothesis_id):
        raise ScaffoldError(invalid_id_message(request.hypothesis_id))
    if not request.command.strip():
        raise ScaffoldError("the command to run is empty: pass the test with --run 'COMMAND'")
    timeout = request.timeout
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ScaffoldError(f"the timeout must be a number of seconds > 0, got {timeout!r}")
    problem = setup_problem(request.setup, request.setup_timeout)
    if problem is not None:
        raise ScaffoldError(f"the {problem}")


def _worktree_root(start: Path) -> Path:
    top = toplevel(start)
    if top is None:
        raise ScaffoldError(
            f"{start} is not inside a git repository: run this from your project's folder"
        )
    return top


def _check_id_free(main: Path, worktrees: List[Worktree], hypothesis_id: str) -> None:
    """Refuse an id already registered, scripted in a worktree, or naming an existing branch.

    Ids are compared ignoring case: two that differ only in case name the same files on
    case-insensitive file systems.
    """
    taken = {entry.hypothesis_id: _where(entry.worktree) for entry in registered(main)}
    for worktree in worktrees:
        taken.update(dict.fromkeys(_script_ids(worktree.path), str(worktree.path)))
    for existing, where in taken.items():
        if existing.lower() == hypothesis_id.lower():
            raise ScaffoldError(
                f"hypothesis id {hypothesis_id!r} is already taken"
                f"{_as_spelled(existing, hypothesis_id)} by {where}: choose another id"
            )
    branch = BRANCH_PREFIX + hypothesis_id
    if _branch_tip(main, branch) is not None:
        raise ScaffoldError(
            f"a branch named {branch!r} already exists: choose another id, or delete the "
            f"branch (git branch -D {branch})"
        )


def _where(worktree: Path) -> str:
    if worktree.is_dir():
        return str(worktree)
    return f"{worktree}, which is gone (run `pytest-hypotheses clean` to forget it)"


def _as_spelled(existing: str, wanted: str) -> str:
    if existing == wanted:
        return ""
    return f" (as {existing!r}: ids differing only in case name the same files on some systems)"


def _script_ids(worktree: Path) -> List[str]:
    return [hypothesis_id for hypothesis_id, _script in scripts_in(worktree)]


def _ids_named(names: Iterable[str]) -> List[str]:
    """The hypothesis ids of the script file names among ``names``."""
    return [hypothesis_id for hypothesis_id in map(script_id, names) if hypothesis_id is not None]


def _check_folder(folder: Path, worktrees: List[Worktree]) -> None:
    if os.path.lexists(folder):
        raise ScaffoldError(
            f"the worktree folder {folder} already exists: choose another id or another --dir"
        )
    resolved = folder.resolve()
    for worktree in worktrees:
        if resolved.is_relative_to(worktree.path.resolve()):
            raise ScaffoldError(
                f"the worktree folder {folder} is inside the worktree {worktree.path}: put "
                "hypothesis worktrees outside it (the default is ../worktrees next to the "
                "repository)"
            )


def _resolve_base(here: Path, base: Optional[str]) -> str:
    """The commit to branch from. Without a base, the current HEAD, which must be clean:
    a worktree made from HEAD would silently lack the uncommitted changes."""
    if base is None:
        try:
            commit = run_git(["rev-parse", "--verify", "HEAD^{commit}"], here)
        except GitError:
            raise ScaffoldError(
                "the repository has no commit yet: commit your code first, the hypothesis "
                "worktree is made from a commit"
            ) from None
        if is_dirty(here):
            raise ScaffoldError(
                f"{here} has uncommitted changes (modified, staged or untracked files), which "
                "the hypothesis worktree would not contain: commit or stash them, or pass "
                "--base REF to branch from a commit on purpose"
            )
        return commit
    if base.startswith("-"):
        raise ScaffoldError(f"the base {base!r} is not a commit: it looks like an option")
    try:
        return run_git(["rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], here)
    except GitError:
        raise ScaffoldError(
            f"the base {base!r} does not name a commit in this repository"
        ) from None


def _check_base_scripts(here: Path, base: str, hypothesis_id: str) -> Tuple[str, ...]:
    """Refuse a base that already has a script for this id; return the ids it does have."""
    listing = run_git(["ls-tree", "-z", "--name-only", base, "--", f"{SCRIPT_DIR}/"], here)
    ids = tuple(_ids_named(Path(name).name for name in listing.split("\0") if name))
    if hypothesis_id.lower() in (found.lower() for found in ids):
        raise ScaffoldError(
            f"the base commit already has a test script for hypothesis {hypothesis_id!r}: "
            "choose another id or another --base"
        )
    return ids


def _write_files(worktree: Path, request: Request) -> Tuple[Path, Path]:
    script = script_path(worktree, request.hypothesis_id)
    config = config_path(worktree, request.hypothesis_id)
    text = json.dumps(metadata(request), indent=2, ensure_ascii=False) + "\n"
    try:
        script.parent.mkdir(exist_ok=True)
        body = script_text(request.hypothesis_id, request.command, request.polarity)
        script.write_text(body, encoding="utf-8")
        script.chmod(0o755)
        config.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ScaffoldError(
            f"could not write the files of hypothesis {request.hypothesis_id!r}: {error}"
        ) from None
    return script, config


def _commit(worktree: Path, hypothesis_id: str, files: List[Path]) -> str:
    """Commit the files on the hypothesis branch, skipping hooks and signing (bookkeeping)."""
    names = [str(path.relative_to(worktree)) for path in files]
    run_git(["add", "--force", "--", *names], worktree)
    options = ["-c", "commit.gpgsign=false", *_identity_options(worktree)]
    message = f"Add the test of hypothesis {hypothesis_id}"
    run_git([*options, "commit", "-q", "--no-verify", "-m", message, "--", *names], worktree)
    return run_git(["rev-parse", "HEAD"], worktree)


def _identity_options(worktree: Path) -> List[str]:
    config = _config(worktree, local=False)
    options: List[str] = []
    for key, fallback in FALLBACK_IDENTITY.items():
        if not config.get(key):
            options += ["-c", f"{key}={fallback}"]
    return options


def _config(cwd: Path, *, local: bool) -> Dict[str, str]:
    """git's configuration as a dictionary (the last value of a key wins, as in git)."""
    scope = ["--local"] if local else []
    output = run_git(["config", *scope, "--null", "--list"], cwd)
    values: Dict[str, str] = {}
    for entry in output.split("\0"):
        if entry:
            key, _, value = entry.partition("\n")
            values[key] = value
    return values


def _register(main: Path, entry: Registered) -> None:
    key = f"{REGISTRY_SECTION}.{entry.hypothesis_id}"
    run_git(["config", "--local", f"{key}.worktree", str(entry.worktree)], main)
    run_git(["config", "--local", f"{key}.branch", entry.branch], main)
    if entry.commit is not None:
        run_git(["config", "--local", f"{key}.commit", entry.commit], main)


def _unregister(main: Path, hypothesis_id: str) -> None:
    with contextlib.suppress(GitError):
        run_git(
            ["config", "--local", "--remove-section", f"{REGISTRY_SECTION}.{hypothesis_id}"], main
        )


def _undo(main: Path, folder: Path, branch: str, hypothesis_id: str) -> None:
    """Take back a half-made hypothesis; each step may already be undone."""
    with contextlib.suppress(GitError):
        run_git(["worktree", "remove", "--force", str(folder)], main)
    with contextlib.suppress(GitError):
        run_git(["branch", "-D", branch], main)
    _unregister(main, hypothesis_id)


def _branch_tip(repository: Path, branch: str) -> Optional[str]:
    ref = f"refs/heads/{branch}"
    output = run_git(["for-each-ref", "--format=%(refname) %(objectname)", ref], repository)
    for line in output.splitlines():
        name, _, commit = line.partition(" ")
        if name == ref:
            return commit
    return None


def _live_worktree(worktrees: List[Worktree], entry: Registered) -> Optional[Worktree]:
    """The existing worktree that has the entry's branch checked out; never the main one."""
    for worktree in worktrees[1:]:
        if worktree.branch == entry.branch and worktree.path.is_dir():
            return worktree
    return None


#: Untracked folders that tools make again at will, whatever their path: never work to keep.
_REMADE_FOLDERS = ("node_modules", "__pycache__")


def _remade_at_will(worktree: Path, change: str) -> bool:
    """True for an untracked folder (``?? .venv/``) that a setup step or a tool makes again
    at will: a virtualenv (it holds ``pyvenv.cfg``), ``node_modules`` or ``__pycache__``. The
    docs advise a setup step that makes a ``.venv``; a project that does not ignore it would
    otherwise keep every such worktree, or need ``--force``, which also drops real commits."""
    if not (change.startswith("?? ") and change.endswith("/")):
        return False
    folder = worktree / change[3:]
    return folder.name in _REMADE_FOLDERS or (folder / "pyvenv.cfg").is_file()


def _clean_one(
    repository: Path,
    entry: Registered,
    live: Optional[Worktree],
    force: bool,
    report: CleanReport,
) -> None:
    try:
        if live is not None:
            status = [] if force else uncommitted(live.path)
            changes = [c for c in status if not _remade_at_will(live.path, c)]
            if changes:
                report.kept_dirty.append(entry)
                report.changes[entry.worktree] = changes
                return
            # git refuses a worktree with untracked files, those remade at will included
            forced = ["--force"] if force or status else []
            run_git(["worktree", "remove", *forced, str(live.path)], repository)
        SetupStamp.forget(repository, live.path if live is not None else entry.worktree)
        tip = _branch_tip(repository, entry.branch)
        if tip is not None and tip != entry.commit and not force:
            report.kept_branches.append(entry)
        elif tip is not None:
            run_git(["branch", "-D", entry.branch], repository)
        _unregister(repository, entry.hypothesis_id)
        report.removed.append(entry)
    except GitError as error:
        report.failures.append(str(error))
