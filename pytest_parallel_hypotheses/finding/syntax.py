"""Whether a script that failed could be read by its interpreter at all.

A shell that meets a syntax error exits 2 and Python exits 1: the same statuses as a test that
failed, so a broken script would support its hypothesis. Asked only of a script that failed,
its interpreter parses it without running anything (``sh -n``, Python's ``compile``), so a run
whose scripts pass pays nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import List, Mapping, Optional

#: Shells whose ``-n`` reads a script without running any of it.
SHELLS = frozenset({"sh", "bash", "dash", "ksh", "mksh", "zsh", "ash", "yash", "posh"})
#: Interpreters of Python, named as a shebang names them.
PYTHON = re.compile(r"(python|pypy)[0-9.]*")
#: Python's check: compile the script, say where it cannot be read.
_PYTHON_CHECK = (
    "import sys\n"
    "try:\n"
    "    compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')\n"
    "except SyntaxError as error:\n"
    "    sys.exit(f'line {error.lineno}: {error.msg}')\n"
    "except ValueError as error:\n"
    "    sys.exit(str(error))\n"
)
#: How long the check may take; a parse takes milliseconds.
CHECK_SECONDS = 10.0
#: Characters of the interpreter's complaint kept.
DETAIL_CHARS = 300


def syntax_error(script: Path, env: Mapping[str, str]) -> Optional[str]:
    """What the script's interpreter says is wrong with its text, or None when it reads it
    (or is not a shell or Python, or cannot be asked)."""
    command = _check_command(script)
    if command is None:
        return None
    try:
        checked = subprocess.run(
            command,
            env=dict(env),
            cwd=script.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CHECK_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if checked.returncode == 0:
        return None
    lines = checked.stderr.decode("utf-8", errors="replace").strip().splitlines()
    detail = "; ".join(line.strip() for line in lines if line.strip())
    return detail[:DETAIL_CHARS] or f"its interpreter's check exited {checked.returncode}"


def _check_command(script: Path) -> Optional[List[str]]:
    """The shebang's command with a parse-only check in place of running the script."""
    shebang = _shebang(script)
    if not shebang:
        return None
    program = _program(shebang)
    if program in SHELLS:
        return [*shebang, "-n", str(script)]
    if PYTHON.fullmatch(program):
        return [*shebang, "-c", _PYTHON_CHECK, str(script)]
    return None


def _shebang(script: Path) -> List[str]:
    try:
        with open(script, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return []
    if not first.startswith(b"#!"):
        return []
    return first[2:].decode("utf-8", errors="replace").split()


def _program(shebang: List[str]) -> str:
    """The interpreter's name; through ``env``, the first word that is neither an option
    nor a variable."""
    name = os.path.basename(shebang[0])
    if name != "env":
        return name
    words = (word for word in shebang[1:] if not word.startswith("-") and "=" not in word)
    return os.path.basename(next(words, ""))
