"""What counts as a number wherever a user, a file or a hook gives one."""

from __future__ import annotations

import math
from typing import Optional


def is_number(value: object) -> bool:
    """A finite int or float, not a bool (``True`` is an int to Python, never to a user)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number_at_least(value: object, minimum: float, *, inclusive: bool = True) -> bool:
    """A number (see :func:`is_number`) at least ``minimum``, or above it if not ``inclusive``."""
    if not is_number(value):
        return False
    return value >= minimum if inclusive else value > minimum  # type: ignore[operator]


def parse_number(text: str) -> Optional[float]:
    """The finite number that ``text`` spells, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
