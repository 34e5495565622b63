"""What counts as a size of memory or output wherever a user or a file gives one."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Optional, Tuple

#: The units a size may end with (an optional ``B`` or ``iB`` may follow), powers of 1024.
SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
#: The largest size there is a use for: what a signed 64-bit count holds (just below 8 EiB),
#: as the kernel's memory limits do. Larger is a typo, not a limit.
MAX_SIZE = 2**63 - 1
#: The smallest memory limit: a shell alone takes about that, so a lower one stops every
#: script at its start (``0.5K`` was taken, and each script was killed at its first look).
MIN_LIMIT = 1024**2
#: What a memory limit must be, in the words of the errors that refuse one.
LIMIT_EXPECTED = (
    "a size of at least 1M (a shell alone takes about that), such as 500M, 2G or 1.5 GiB"
)


#: A size: a whole number of bytes, or a number with a unit, whose fraction may be given as
#: sizes are shown (``1.5 GiB``, the header's way, may be typed back).
_SIZE = re.compile(r"([+-]?\d+(?:_\d+)*)\s*([KMGT]?)(?:I?B)?|([+-]?\d*\.\d+)\s*([KMGT])(?:I?B)?")


def parse_size(text: str) -> Optional[int]:
    """The whole number of bytes that ``text`` spells (``500M``, ``2GiB``, ``1.5 GiB``,
    ``1048576``, a fraction of a unit rounded down to a byte), or None, also beyond
    :data:`MAX_SIZE`; it may be 0 or negative, which callers refuse as they need."""
    match = _SIZE.fullmatch(text.strip().upper())
    if match is None:
        return None
    whole, unit, fraction, fraction_unit = match.groups()
    if whole is not None:
        size = int(whole) * SIZE_UNITS[unit]
    else:
        size = int(Decimal(fraction) * SIZE_UNITS[fraction_unit])
    return size if size <= MAX_SIZE else None


def parse_limit(text: str) -> Optional[int]:
    """A memory limit that ``text`` spells: a size of :data:`MIN_LIMIT` or more (``500M``),
    or None."""
    size = parse_size(text)
    return size if size is not None and size >= MIN_LIMIT else None


def format_size(count: int) -> str:
    """A byte count as people read it: ``512 MiB``, ``1.5 GiB``, ``100 bytes``."""
    return _in_unit(count, _unit_of(count), 4)


def format_sizes(first: int, second: int) -> Tuple[str, str]:
    """Two byte counts read side by side (a peak and its limit), in the unit of the larger,
    with as many digits as it takes to tell them apart when they differ: ``500.04 MiB``
    beside ``500 MiB``, never ``500 MiB`` beside ``500 MiB``."""
    unit = _unit_of(max(first, second))
    for digits in (4, 6, 8, 10):
        shown = (_in_unit(first, unit, digits), _in_unit(second, unit, digits))
        if first == second or shown[0] != shown[1]:
            return shown
    return f"{first} bytes", f"{second} bytes"


#: The units of sizes, largest first, with their sizes in bytes.
_UNITS = (
    ("EiB", 1024**6),
    ("PiB", 1024**5),
    ("TiB", 1024**4),
    ("GiB", 1024**3),
    ("MiB", 1024**2),
    ("KiB", 1024),
)


def _unit_of(count: int) -> Optional[Tuple[str, int]]:
    """The largest unit ``count`` holds one of (None: under a KiB, in bytes)."""
    return next(((name, size) for name, size in _UNITS if count >= size), None)


def _in_unit(count: int, unit: Optional[Tuple[str, int]], digits: int) -> str:
    if unit is None:
        return f"{count} byte{'' if count == 1 else 's'}"
    name, size = unit
    return f"{count / size:.{digits}g} {name}"
