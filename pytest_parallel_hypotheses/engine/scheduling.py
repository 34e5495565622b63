"""In which order the scripts start when they cannot all start at once.

Quick answers first, then longest expected first (the LPT rule). The scripts known to be
short start first while together they are a small share of the known work: their answers
come at once, and the long ones start only that much later. Then a script whose duration is
unknown: usually it has never run, it may be the longest, and its result is the one nobody
has seen yet. Then the rest from the longest: a long script started last would keep the run
going long after the others finished, while short ones fill the gaps at the end.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

#: The share of the known work that the quick scripts started first may take together.
QUICK_SHARE = 0.05


def start_order(expected: Sequence[Optional[float]]) -> List[int]:
    """Indices into ``expected`` in start order: the shortest known durations while their sum
    is at most :data:`QUICK_SHARE` of all known ones (shortest first), then the unknown ones
    (None) in the order given, then the other known ones from the longest to the shortest
    (ties in the order given)."""
    unknown = [index for index, duration in enumerate(expected) if duration is None]
    known = sorted(
        (duration, index) for index, duration in enumerate(expected) if duration is not None
    )  # shortest first, ties in the order given
    budget = QUICK_SHARE * sum(duration for duration, _ in known)
    quick = 0
    spent = 0.0
    while quick < len(known) and spent + known[quick][0] <= budget:
        spent += known[quick][0]
        quick += 1
    longest_first = sorted(known[quick:], key=lambda known: -known[0])
    return [index for _, index in known[:quick]] + unknown + [i for _, i in longest_first]
