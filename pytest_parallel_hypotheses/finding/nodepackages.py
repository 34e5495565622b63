"""Whether a Node.js script failed for a dependency its worktree declares and has not installed.

A worktree made by ``git worktree add`` has no ``node_modules``: git ignores it. A script that
runs the project's code there fails on ``Cannot find package 'x'`` with exit status 1, as a
failing test does, and would support its hypothesis having tested nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional, Set

#: How Node.js says it found no package (ES modules) or module (CommonJS) by a name.
_NOT_FOUND = re.compile(r"Cannot find (?:package|module) '([^']+)'")
#: The sections of ``package.json`` that name what ``npm ci`` installs.
_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


def missing_dependency(worktree: Path, *streams: str) -> Optional[str]:
    """The package that the script's output says Node.js could not find, where the worktree's
    ``package.json`` declares it and its ``node_modules`` lacks it; None otherwise (a module
    of the project's own, or one it never declared, can be the bug)."""
    specifiers = (specifier for stream in streams for specifier in _NOT_FOUND.findall(stream))
    named = sorted({name for name in map(_package, specifiers) if name is not None})
    if not named:
        return None
    declared = _declared(worktree)
    modules = os.path.join(worktree, "node_modules")
    return next(
        (
            name
            for name in named
            if name in declared and not os.path.isdir(os.path.join(modules, name))
        ),
        None,
    )


def _package(specifier: str) -> Optional[str]:
    """The package a bare specifier names (``@scope/name`` or ``name``, without a subpath);
    None for a path or a built-in (``./lib``, ``node:fs``)."""
    if specifier.startswith((".", "/")) or ":" in specifier:
        return None
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


def _declared(worktree: Path) -> Set[str]:
    """The packages the worktree's ``package.json`` declares (none if it has none)."""
    try:
        with open(os.path.join(worktree, "package.json"), encoding="utf-8") as file:
            manifest = json.load(file)
    except (OSError, ValueError):
        return set()
    if not isinstance(manifest, dict):
        return set()
    sections = [manifest.get(section) for section in _SECTIONS]
    return {name for section in sections if isinstance(section, dict) for name in section}
