"""In which order the scripts start when they cannot all start at once.

Longest expected first (the LPT rule): a long script started last would keep the run going
long after the others finished, while short ones fill the gaps at the end. A script whose
duration is unknown starts before all of them: usually it has never run, it may be the
longest, and its result is the one nobody has seen yet.
"""

from __future__ import annotations

from typing import List, Optional, Sequence


def start_order(expected: Sequence[Optional[float]]) -> List[int]:
    """Indices into ``expected`` in start order: unknown durations (None) first in the order
    given, then the known ones from the longest to the shortest (ties in the order given)."""
    unknown = [index for index, duration in enumerate(expected) if duration is None]
    known = [index for index, duration in enumerate(expected) if duration is not None]
    known.sort(key=lambda index: -(expected[index] or 0.0))
    return unknown + known
