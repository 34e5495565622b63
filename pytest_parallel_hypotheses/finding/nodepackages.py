"""Whether a Node.js script failed because its worktree has none of the packages it declares.

A worktree made by ``git worktree add`` has no ``node_modules``: git ignores it. A script that
runs the project's code there fails on ``Cannot find package 'x'`` with exit status 1, as a
failing test does, and would support its hypothesis having tested nothing. Only that case is
told: a ``node_modules`` that lacks one package (installed without the dev dependencies, an
optional one left out) can be the bug itself, and so can a package the project never declared.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional, Set

#: How Node.js says it found no package (ES modules) or module (CommonJS) by a name.
_NOT_FOUND = re.compile(r"Cannot find (?:package|module) '([^']+)'")
#: The sections of ``package.json`` whose packages the project cannot run without.
_REQUIRED = ("dependencies", "devDependencies")
#: The files of Yarn's Plug'n'Play, which installs no ``node_modules`` at all.
_PLUG_N_PLAY = (".pnp.cjs", ".pnp.loader.mjs", ".pnp.js")


def missing_dependency(worktree: Path, *streams: str) -> Optional[str]:
    """The package, named whole by Node.js's complaint in the script's output, that the
    worktree's ``package.json`` requires while the worktree has no ``node_modules`` at all
    (nor Yarn's Plug'n'Play); None otherwise."""
    named = {name for stream in streams for name in _NOT_FOUND.findall(stream)}
    if not named or _installs_anything(worktree):
        return None
    return next((name for name in sorted(named) if name in _required(worktree)), None)


def _installs_anything(worktree: Path) -> bool:
    """Whether the worktree has a ``node_modules`` (or Plug'n'Play's files) of its own."""
    names = ("node_modules", *_PLUG_N_PLAY)
    return any(os.path.lexists(os.path.join(worktree, name)) for name in names)


def _required(worktree: Path) -> Set[str]:
    """The packages the worktree's ``package.json`` requires (none if it has none)."""
    try:
        with open(os.path.join(worktree, "package.json"), encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError):
        return set()
    if not isinstance(manifest, dict):
        return set()
    sections = [manifest.get(section) for section in _REQUIRED]
    return {name for section in sections if isinstance(section, dict) for name in section}
