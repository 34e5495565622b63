"""How a list of names that may be long is said in one line of a message."""

from __future__ import annotations

from typing import Sequence


def some_of(names: Sequence[str], shown: int = 3) -> str:
    """The first ``shown`` names, and how many more there are: ``a, b, c and 2 more``."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
