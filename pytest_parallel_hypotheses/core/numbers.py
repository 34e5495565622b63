"""What counts as a number wherever a user, a file or a hook gives one."""

from __future__ import annotations

import math
from typing import Optional, TypeVar

#: A measure that may be known or not: a size in bytes, a share of time.
N = TypeVar("N", int, float)


def is_number(value: object) -> bool:
    """A finite int or float, not a bool (``True`` is an int to Python, never to a user)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number_at_least(value: object, minimum: float, *, inclusive: bool = True) -> bool:
    """A number (see :func:`is_number`) at least ``minimum``, or above it if not ``inclusive``."""
    if not is_number(value):
        return False
    return value >= minimum if inclusive else value > minimum  # type: ignore[operator]


def whole_number(value: object, low: int, high: Optional[int] = None) -> bool:
    """A whole number (not a bool) from ``low`` to ``high`` (None: no upper bound)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return low <= value and (high is None or value <= high)


def parse_number(text: str) -> Optional[float]:
    """The finite number that ``text`` spells, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def most_known(*values: Optional[N]) -> Optional[N]:
    """The largest of the values known (None when none is): two looks at one thing, told as
    one figure."""
    return max((value for value in values if value is not None), default=None)
