"""What a hypothesis's outcome depends on, digested into one key for the verdict cache.

As a build system keys a test result by the digest of its inputs: the worktree's content (its
tree hash, its uncommitted changes, its untracked files that git does not ignore), the script
and the full metadata file, the settings that can change an outcome, the tool's version, and
the interpreter and platform. The scripts and metadata of a worktree's hypotheses count as
committed only, so editing one hypothesis's script leaves the keys of its neighbours alone;
any other file under ``.falsification`` (a helper the scripts run, their data) counts like the
worktree's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..core.version import __version__
from .git import GitError
from .state import content_state

#: Changes when the key's recipe changes, so keys of an older recipe never match.
KEY_FORMAT = 2


class Fingerprinter:
    """Keys for the hypotheses of one session; each worktree is digested once."""

    def __init__(self) -> None:
        self._worktrees: Dict[Path, Optional[str]] = {}

    def key(
        self, worktree: Path, script: Path, metadata: Path, settings: Mapping[str, Any]
    ) -> Optional[str]:
        """The key of one hypothesis, or None when its worktree cannot be digested (not a
        git worktree, no commit yet)."""
        if worktree not in self._worktrees:
            self._worktrees[worktree] = worktree_digest(worktree)
        content = self._worktrees[worktree]
        if content is None:
            return None
        recipe = {
            "format": KEY_FORMAT,
            "tool": __version__,
            "interpreter": [platform.python_implementation(), sys.version, sys.executable],
            "platform": [platform.platform(), platform.machine()],
            "worktree": [str(worktree), content],
            "script": file_digest(script),
            "metadata": file_digest(metadata),
            "settings": dict(settings),
        }
        text = json.dumps(recipe, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def worktree_digest(worktree: Path) -> Optional[str]:
    """The digest of a worktree's content (its hypotheses' scripts and metadata aside: each
    hypothesis's own are digested on their own); None if git cannot say."""
    try:
        return content_state(worktree)
    except (GitError, OSError, UnicodeDecodeError):
        return None


def file_digest(path: Path) -> Optional[str]:
    """The digest of a file's bytes and whether it is executable (a symlink: its target's
    name); None if it does not exist or cannot be read."""
    try:
        if path.is_symlink():
            return "link:" + os.readlink(path)
        data = path.read_bytes()
    except OSError:
        return None
    executable = os.access(path, os.X_OK)
    return f"{hashlib.sha256(data).hexdigest()}:{'x' if executable else '-'}"
