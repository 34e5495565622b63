"""How the code a script tested is told: in the failure text, under ``-v`` and as warnings.

A verdict on the wrong code looks as confident as any other, so the report says where each
script's Python imported the project from; it reads the ``code_under_test`` of a record or a
result's dictionary, so one wording serves this process and the reports of others.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

from .records import Record


def code_summary(code: Optional[Mapping[str, Any]]) -> str:
    """One line: the worktree's venv, the redirected import locations, or that none was."""
    if code is None:
        return "not known (the script did not run)"
    if code.get("venv"):
        return f"the worktree's own virtual environment {code['venv']}"
    redirects = code.get("redirects") or []
    if not redirects:
        return "as installed: no development install of this repository to redirect"
    moved = "; ".join(
        f"{r['distribution']} from {r['import_path']} (installed from {r['installed_from']})"
        for r in redirects
    )
    return f"redirected into the worktree: {moved}"


def code_warnings(code: Optional[Mapping[str, Any]]) -> List[str]:
    """What could not be redirected for this script."""
    return [] if code is None else list(code.get("warnings") or [])


def run_warnings(records: Sequence[Record]) -> List[str]:
    """Every distinct warning of the run, in the order first met: told once, not per script."""
    seen: dict[str, None] = {}
    for record in records:
        for warning in code_warnings(record.get("code_under_test")):
            seen.setdefault(warning)
    return list(seen)
