"""Where a hypothesis script lives, and whether it may be run.

Every check happens before anything is executed, so a bad id or a script that points outside
its worktree becomes a clear error for that one hypothesis instead of a surprise.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import List, Optional, Tuple, Union

from ..core.classification import CANNOT_EXECUTE_EXIT, NOT_FOUND_EXIT

#: A hypothesis id is a file-name token: it names ``test_<id>.sh`` and never a path.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

#: The folder of a worktree that holds its hypotheses' files.
SCRIPT_DIR = ".falsification"
#: The folder of a worktree's own virtual environment, which its scripts run with.
WORKTREE_VENV = ".venv"
_SCRIPT_PREFIX, _SCRIPT_SUFFIX = "test_", ".sh"
_CONFIG_PREFIX, _CONFIG_SUFFIX = "config_", ".json"
#: The file names a worktree's hypotheses must have, for messages.
SCRIPT_PATTERN = f"{SCRIPT_DIR}/{_SCRIPT_PREFIX}<id>{_SCRIPT_SUFFIX}"
METADATA_PATTERN = f"{SCRIPT_DIR}/{_CONFIG_PREFIX}<id>{_CONFIG_SUFFIX}"

PathLike = Union[str, "os.PathLike[str]"]


class ScriptProblem(Exception):
    """A hypothesis script that cannot be run; the message says why in a plain sentence."""

    def __init__(self, message: str, exit_code: int = CANNOT_EXECUTE_EXIT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def is_valid_id(hypothesis_id: object) -> bool:
    """True if the id is a safe file-name token (letters, digits, ``.``, ``_``, ``-``)."""
    return isinstance(hypothesis_id, str) and ID_PATTERN.fullmatch(hypothesis_id) is not None


def invalid_id_message(hypothesis_id: object) -> str:
    return (
        f"hypothesis id {hypothesis_id!r} is not a safe file-name token: use 1-100 letters, "
        "digits, '.', '_' or '-', starting with a letter or digit"
    )


def script_name(hypothesis_id: str) -> str:
    """The file name of a hypothesis's script."""
    return f"{_SCRIPT_PREFIX}{hypothesis_id}{_SCRIPT_SUFFIX}"


def script_path(worktree: PathLike, hypothesis_id: str) -> Path:
    """The path where the script of a hypothesis is expected (not checked)."""
    return Path(worktree, SCRIPT_DIR, script_name(hypothesis_id))


def config_path(worktree: PathLike, hypothesis_id: str) -> Path:
    """The path of a hypothesis's optional metadata file (not checked)."""
    return Path(worktree) / SCRIPT_DIR / f"{_CONFIG_PREFIX}{hypothesis_id}{_CONFIG_SUFFIX}"


def script_id(file_name: str) -> Optional[str]:
    """The hypothesis id in a script's file name (``test_<id>.sh``), or None for another file;
    the id is not checked (see :func:`is_valid_id`)."""
    if file_name.startswith(_SCRIPT_PREFIX) and file_name.endswith(_SCRIPT_SUFFIX):
        return file_name[len(_SCRIPT_PREFIX) : -len(_SCRIPT_SUFFIX)]
    return None


def scripts_in(worktree: PathLike) -> List[Tuple[str, Path]]:
    """Every ``(id, script)`` named like a hypothesis script in the worktree, by file name."""
    folder = Path(worktree) / SCRIPT_DIR
    if not folder.is_dir():
        return []
    named = [(script_id(path.name), path) for path in sorted(folder.iterdir())]
    return [(hypothesis_id, path) for hypothesis_id, path in named if hypothesis_id is not None]


def locate_script(worktree: Optional[PathLike], hypothesis_id: str) -> Path:
    """Return the script of a hypothesis, or raise :class:`ScriptProblem`.

    The id is checked before any filesystem access; the script must resolve inside its
    worktree, be a regular file and be executable. When neither the script nor its folder is
    a symlink it is inside its worktree whatever the worktree's own path goes through, and it
    is returned as found there; otherwise it is returned resolved.
    """
    if not is_valid_id(hypothesis_id):
        raise ScriptProblem(invalid_id_message(hypothesis_id))
    if worktree is None:
        raise ScriptProblem(
            f"no worktree was given for hypothesis {hypothesis_id!r}", NOT_FOUND_EXIT
        )
    script, regular = _resolve(worktree, hypothesis_id)
    if not (regular or os.path.isfile(script)):
        raise ScriptProblem(
            f"test script {script_path(worktree, hypothesis_id)} is not a regular file"
        )
    if not os.access(script, os.X_OK):
        shown = script_path(worktree, hypothesis_id)
        raise ScriptProblem(f"test script {shown} is not executable (run: chmod +x {shown})")
    return Path(script)


def _resolve(worktree: PathLike, hypothesis_id: str) -> Tuple[str, bool]:
    """The script to run, and whether it is known to be a regular file. With no link in the
    last two steps, the script is the worktree's own: one look at each of them (per script of
    a large run, the cost of this check). Otherwise every link is followed and the target must
    lie inside the worktree, resolved too. A missing worktree or script, a dangling link or a
    loop is a ScriptProblem."""
    inside = os.path.join(_absolute(worktree), SCRIPT_DIR, script_name(hypothesis_id))
    try:
        if not os.path.islink(os.path.dirname(inside)):
            mode = os.lstat(inside).st_mode
            if not stat.S_ISLNK(mode):
                return inside, stat.S_ISREG(mode)
        resolved = str(Path(inside).resolve(strict=True))
        root = os.path.realpath(worktree)
    except (FileNotFoundError, NotADirectoryError):
        raise _missing(script_path(worktree, hypothesis_id)) from None
    except (OSError, RuntimeError, ValueError) as error:
        # RuntimeError: a symlink loop before Python 3.13; ValueError: a NUL in the path
        script = script_path(worktree, hypothesis_id)
        raise ScriptProblem(f"test script {script} cannot be resolved: {error}") from None
    if not resolved.startswith(os.path.join(root, "")):
        raise ScriptProblem(
            f"refused to run {script_path(worktree, hypothesis_id)}: it resolves to "
            f"{resolved}, outside its worktree {worktree}"
        )
    return resolved, False


def _absolute(worktree: PathLike) -> str:
    """The worktree as an absolute path naming the folder the system finds there: a ``..``
    stays, since after a symlink it leads to the parent of the link's target, not to the
    folder the text names (where ``os.path.abspath`` would go)."""
    path = os.fspath(worktree)
    if os.pardir not in path.split(os.sep):
        return os.path.abspath(path)
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def _missing(script: Path) -> ScriptProblem:
    """What is missing on the way to ``script``: its worktree (or it is a file), the script,
    or its link's target."""
    root = script.parent.parent
    if root.exists() and not root.is_dir():
        return ScriptProblem(f"worktree is not a folder: {root}", NOT_FOUND_EXIT)
    if not root.is_dir():
        return ScriptProblem(f"worktree not found: {root}", NOT_FOUND_EXIT)
    if not os.path.lexists(script):
        return ScriptProblem(f"Test script not found: {script}", NOT_FOUND_EXIT)
    return ScriptProblem(
        f"Test script not found: {script} is a symlink to a file that does not exist",
        NOT_FOUND_EXIT,
    )


def explain_spawn_error(script: Path, error: OSError) -> ScriptProblem:
    """Turn an exec failure into a sentence that names the likely cause.

    ENOENT after the script was found means its interpreter is missing, often because of a
    Windows line ending after the shebang; ENOEXEC means there is no shebang at all.
    """
    first_line = _first_line(script)
    if error.errno == errno.ENOEXEC:
        return ScriptProblem(
            f"test script {script} cannot be executed: its first line must be a shebang such as "
            f"'#!/bin/sh' (found {first_line!r})"
        )
    if error.errno == errno.ENOENT:
        hint = " (Windows line endings? remove the '\\r')" if first_line.endswith("\r") else ""
        return ScriptProblem(
            f"interpreter of test script {script} not found: first line is {first_line!r}{hint}",
            NOT_FOUND_EXIT,
        )
    if error.errno in (errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM):
        return ScriptProblem(
            f"could not start test script {script}: {os.strerror(error.errno)} "
            "(lower the number of concurrent tests or raise the open-files limit)"
        )
    return ScriptProblem(f"could not start test script {script}: {error}")


def _first_line(script: Path) -> str:
    try:
        with open(script, "rb") as handle:
            head = handle.read(200)
    except OSError:
        return ""
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
