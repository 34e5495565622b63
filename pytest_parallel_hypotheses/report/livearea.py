"""A status area at the bottom of a terminal that never garbles what pytest writes.

The area stands between pytest's terminal writer and its file: every write of pytest erases
the area first, and the area is drawn again only between writes, under one lock. Lines are cut
to the terminal's width, so erasing is moving up as many lines as were drawn. When pytest's
own line is unfinished (the dots of a quiet run), the area starts on the next line and erasing
returns to the column where pytest left off.

While pytest runs an item, its capture owns file descriptor 1: the area is held then (erased,
drawn again only at the next refresh after the item, and no line written), so that nothing of
the status lands in an item's captured output.

pytest ends a verbose item's line only when it writes the next item's, which for hypotheses
comes when the next script ends, minutes later perhaps: a log read line by line (a CI job,
``| tee``) would show a verdict only then. The area can end that line at once and drop the
newline pytest writes for it later, so the text is the same, only sooner.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, List, Optional, TextIO

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_UP = "\x1b[1A"
_CLEAR_LINE = "\r\x1b[2K"


class StatusArea:
    """A file for pytest's terminal writer, wrapping the real one, with a status area below
    the text written so far."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.RLock()
        self._drawn = 0
        self._column = 0
        self._held = False
        #: pytest's line was ended for it: the newline it writes to end it is not written.
        self._ended_early = False
        #: How many times the area was drawn (the rate of refreshes is measured from it).
        self.draws = 0

    def write(self, text: str) -> int:
        with self._lock:
            self._erase()
            dropped = 0
            if self._ended_early and text:
                self._ended_early = False
                dropped = 1 if text.startswith("\n") else 0
            written = self._file.write(text[dropped:])
            self._follow(text[dropped:])
            return written + dropped

    def end_line(self) -> None:
        """End pytest's unfinished line now, not when pytest writes its next one."""
        with self._lock:
            self._end_line()
            self._file.flush()

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    @property
    def shown(self) -> bool:
        """True while the area is on the screen."""
        return self._drawn > 0

    def show(self, lines: List[str]) -> None:
        """Replace the area with ``lines`` (each shorter than the terminal is wide)."""
        with self._lock:
            self._erase()
            if lines and not self._held:
                lead = "\n" if self._column else ""
                self._file.write(lead + "\n".join(lines))
                self._drawn = len(lines)
                self.draws += 1
            self._file.flush()

    def note(self, make_line: Callable[[], Optional[str]]) -> bool:
        """Write the line ``make_line`` gives (if any) as a line of its own that stays,
        without breaking pytest's unfinished line apart from starting a new one; False,
        writing nothing, while the area is held. The line is made under the area's lock, so
        it says how things stand when it is written, not before an item that came between."""
        with self._lock:
            if self._held:
                return False
            line = make_line()
            if line is None:
                return True
            self._end_line()
            self._file.write(line + "\n")
            self._file.flush()
            return True

    def hold(self) -> None:
        """Erase the area and draw nothing until :meth:`release` (pytest is about to run an
        item, under its capture)."""
        with self._lock:
            self._held = True
            self.clear()

    def release(self) -> None:
        """Draw again, and write lines again."""
        with self._lock:
            self._held = False

    def clear(self) -> None:
        """Erase the area, leaving the screen as pytest alone would have left it."""
        with self._lock:
            self._erase()
            self._file.flush()

    def _end_line(self) -> None:
        """End pytest's unfinished line, if any, for it."""
        self._erase()
        if self._column:
            self._file.write("\n")
            self._column = 0
            self._ended_early = True

    def _erase(self) -> None:
        if not self._drawn:
            return
        moves = _CLEAR_LINE + (_UP + _CLEAR_LINE) * (self._drawn - 1)
        if self._column:
            moves += f"{_UP}\x1b[{self._column + 1}G"
        self._file.write(moves)
        self._drawn = 0

    def _follow(self, text: str) -> None:
        """Track the column where pytest's text ends (escape sequences take no room)."""
        last = text.rsplit("\n", 1)
        visible = _ESCAPE.sub("", last[-1]).rsplit("\r", 1)
        width = len(visible[-1])
        if len(last) > 1 or len(visible) > 1:
            self._column = width
        else:
            self._column += width
