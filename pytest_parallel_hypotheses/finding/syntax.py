"""Whether a script that failed could be read by its interpreter at all.

A shell that meets a syntax error exits 2 and Python exits 1: the same statuses as a test that
failed, so a broken script would support its hypothesis. Asked only of a script that failed
and whose output speaks of a syntax error, its interpreter parses it without running anything
(``sh -n``, Python's ``compile``): both must say so, since a script may print a syntax error
of the code it tests, and a parse alone misses what running would set up (bash's ``shopt``).
A run whose scripts pass pays nothing for that; a script that passes is only searched for
its shell's own complaints about one of its lines (:func:`shell_error_in`).
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
#: Python's check: compile the script, say where it cannot be read (in words Python 2 reads).
_PYTHON_CHECK = (
    "import sys\n"
    "try:\n"
    "    compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')\n"
    "except SyntaxError as error:\n"
    "    sys.exit('line %s: %s' % (error.lineno, error.msg))\n"
    "except ValueError as error:\n"
    "    sys.exit(str(error))\n"
)
#: Node.js's interpreter, named as a shebang names it.
_NODE = frozenset({"node", "nodejs"})
#: Node.js's code for a file it will not run because of its extension.
_UNKNOWN_EXTENSION = "ERR_UNKNOWN_FILE_EXTENSION"
#: How shells and Python say they met a syntax error.
_SAID = re.compile(r"syntax ?error|parse error", re.IGNORECASE)
#: What follows the script's path when its shell names one of its lines (bash, dash, zsh, ksh).
_LINE_NAMED = re.compile(r"(?:: line \d+|: \d+|:\d+|\[\d+\]): ")
#: How long the check may take; a parse takes milliseconds.
CHECK_SECONDS = 10.0
#: Characters of the interpreter's complaint kept.
DETAIL_CHARS = 300


def carriage_return(script: Path) -> Optional[str]:
    """What a carriage return at the end of the shebang does (a Windows line ending), or None:
    the kernel hands it to the interpreter with the shebang's last argument (``-e\\r``).
    Without an argument the interpreter is not found, which the start already tells."""
    line = _first_line(script)
    if not line.endswith(b"\r"):
        return None
    last = line[2:].decode("utf-8", errors="replace").split(" ")[-1]
    return (
        f"has Windows line endings: its first line ends with a carriage return, which its "
        f"interpreter gets as part of {last!r} (convert the file to Unix line endings)"
    )


def refused_by_node(script: Path, stderr: str) -> Optional[str]:
    """Why Node.js would not run the script at all, or None: in a package of ``"type":
    "module"`` it runs no file whose extension it does not know (a ``.sh``), and says so with
    exit status 1, as a failing test does."""
    if _UNKNOWN_EXTENSION not in stderr:
        return None
    interpreter = _interpreter(_shebang(script))
    if not interpreter or os.path.basename(interpreter[-1]) not in _NODE:
        return None
    if not any(f" for {path}" in stderr for path in (str(script), os.path.realpath(script))):
        return None  # the script ran, and a file of the code it tests was refused
    return (
        'is refused by node, which runs no file ending in .sh in a package of "type": "module" '
        "(ERR_UNKNOWN_FILE_EXTENSION): put the test in a .mjs file beside it and have the "
        "script run that"
    )


def shell_error_in(script: Path, stderr: str) -> Optional[str]:
    """The first line in which the script's shell said that one of the script's own lines
    failed (``test_h.sh: line 2: [: missing `]'``, dash's ``test_h.sh: 2: cd: can't cd to
    src``, zsh's ``test_h.sh:2:``, ksh's ``test_h.sh[2]:``); None if none does. A script
    that passes after such a line may have passed because of it: a broken ``[`` makes an
    ``if`` false, a failed ``cd`` runs the tests of another folder. One pattern serves every
    script: a pattern per script path would be compiled again for each of a large run's."""
    path = str(script)
    return next(
        (
            line
            for line in stderr.splitlines()
            if line.startswith(path) and _LINE_NAMED.match(line, len(path))
        ),
        None,
    )


def speaks_of_a_syntax_error(stderr: str) -> bool:
    """Whether a script's error output says an interpreter met a syntax error."""
    return _SAID.search(stderr) is not None


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
    """The shebang's interpreter with a parse-only check in place of running the script; the
    shebang's other arguments are left out (``python3 -m pytest`` would take the check's
    ``-c`` for its own)."""
    interpreter = _interpreter(_shebang(script))
    if not interpreter:
        return None
    program = os.path.basename(interpreter[-1])
    if program == "bash":  # the parse does not run ``shopt -s extglob``
        return [*interpreter, "-O", "extglob", "-n", str(script)]
    if program in SHELLS:
        return [*interpreter, "-n", str(script)]
    if PYTHON.fullmatch(program):
        return [*interpreter, "-c", _PYTHON_CHECK, str(script)]
    return None


def _shebang(script: Path) -> List[str]:
    first = _first_line(script)
    return first[2:].decode("utf-8", errors="replace").split() if first else []


def _first_line(script: Path) -> bytes:
    """The shebang line without its newline; empty when the script has none."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return b""
    return first.rstrip(b"\n") if first.startswith(b"#!") else b""


def _interpreter(shebang: List[str]) -> List[str]:
    """The shebang up to its interpreter; through ``env``, up to the first word that is
    neither an option nor a variable."""
    if not shebang or os.path.basename(shebang[0]) != "env":
        return shebang[:1]
    for index, word in enumerate(shebang[1:], start=1):
        if not word.startswith("-") and "=" not in word:
            return shebang[: index + 1]
    return []
