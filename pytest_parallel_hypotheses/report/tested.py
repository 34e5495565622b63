"""How the code a script tested is told: in the failure text, under ``-v`` and as warnings.

A verdict on the wrong code looks as confident as any other, so the report says where each
script's Python imported the project from; it reads the ``code_under_test`` of a record or a
result's dictionary, so one wording serves this process and the reports of others.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..core.listing import some_of
from .records import Record


def code_summary(code: Optional[Mapping[str, Any]]) -> str:
    """One line: the worktree's venv, the redirected import locations, or that none was."""
    if code is None:
        return "not known (no run of the script finished)"  # never started, or cut short
    if code.get("venv"):
        return f"the worktree's own virtual environment {code['venv']}"
    redirects = code.get("redirects") or []
    if not redirects:
        return "unchanged: no Python development install of this repository to redirect"
    moved = "; ".join(
        f"{r['distribution']} from {r['import_path']} (installed from {r['installed_from']})"
        for r in redirects
    )
    if code.get("activated"):  # the Python of PATH belonged to no environment
        moved += f", with the runner's environment {code['activated']} activated"
    kept = code.get("own_installs") or []
    if kept:
        return (
            f"redirected into the worktree: {moved}; but the Python of another environment "
            f"imported its own install instead ({'; '.join(kept)})"
        )
    return f"redirected into the worktree: {moved}"


def code_warnings(code: Optional[Mapping[str, Any]]) -> List[str]:
    """What could not be redirected for this script."""
    return [] if code is None else list(code.get("warnings") or [])


def run_warnings(records: Sequence[Record]) -> List[str]:
    """Every distinct warning of the run, in the order first met: told once, not per script,
    and once for every worktree it names in the same words (eight worktrees that all lack a
    generated version file make one warning, not eight long lines)."""
    worktrees_of: Dict[str, List[str]] = {}
    first: Dict[str, str] = {}
    for record in records:
        worktree = str(record["worktree_path"])
        for warning in code_warnings(record.get("code_under_test")):
            shape = warning.replace(worktree, "\0") if worktree in warning else warning
            first.setdefault(shape, warning)
            named = worktrees_of.setdefault(shape, [])
            if worktree in warning and worktree not in named:
                named.append(worktree)
    return [_also(first[shape], named[1:]) for shape, named in worktrees_of.items()]


def _also(warning: str, others: List[str]) -> str:
    """A warning, and the other worktrees it holds for in the same words."""
    if not others:
        return warning
    shown = some_of(others)
    worktrees = "worktree" if len(others) == 1 else "worktrees"
    return f"{warning} (the same for {len(others)} more {worktrees}: {shown})"
