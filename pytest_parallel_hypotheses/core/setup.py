"""What makes a setup step valid, the same rules wherever one is given: a hypothesis's metadata,
an option, the engine's settings or a Python caller.

A setup step is a shell command run at a worktree's root before a hypothesis's first attempt
(making a worktree-local virtual environment, ``npm ci``), with a deadline of its own.
"""

from __future__ import annotations

from typing import Optional, Tuple

from .numbers import number_at_least

#: How long a setup step may take, in seconds, unless told otherwise: installs are slow.
DEFAULT_SETUP_TIMEOUT = 600.0
#: What a setup command must be, for messages.
SETUP_EXPECTED = "a non-empty string (a shell command)"
#: What a setup timeout must be, for messages.
SETUP_TIMEOUT_EXPECTED = "a number of seconds greater than 0"


def is_setup_command(value: object) -> bool:
    """A string with something to run (not only blanks)."""
    return isinstance(value, str) and bool(value.strip())


def is_setup_timeout(value: object) -> bool:
    """A finite number of seconds above 0."""
    return number_at_least(value, 0, inclusive=False)


def setup_problem(
    command: object, timeout: object, names: Tuple[str, str] = ("setup", "setup_timeout")
) -> Optional[str]:
    """Why a setup command (None: none) and its timeout (None: the default) cannot be used,
    in words that name the faulty value by its ``names``; None when both can."""
    if command is not None and not is_setup_command(command):
        return f"{names[0]} must be {SETUP_EXPECTED}, got {command!r}"
    if timeout is not None and not is_setup_timeout(timeout):
        return f"{names[1]} must be {SETUP_TIMEOUT_EXPECTED}, got {timeout!r}"
    return None
