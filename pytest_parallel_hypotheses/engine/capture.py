"""Bounded capture of a stream: keep its head and tail, count the rest.

A script may print gigabytes; the runner's memory must not follow. The head shows how a run
started, the tail how it ended, and the marker in between says how much was left out.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Deque, Iterator, Optional


class BoundedCapture:
    """Collects at most ``limit`` bytes of a stream: the first half and the last half."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail: Deque[bytes] = deque()
        self._tail_size = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        """Take the next chunk of the stream."""
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
            if not data:
                return
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
            self._tail_size -= len(self._tail.popleft())

    @property
    def file(self) -> Optional[str]:
        """The file that holds the kept bytes: none for a capture held in memory (see
        :mod:`.spill`)."""
        return None

    @property
    def truncated(self) -> bool:
        """True when some of the stream was dropped."""
        return self._dropped()

    def last_line(self) -> str:
        """The last non-empty line kept so far, decoded; callable from another thread while
        the stream is fed (it only copies what is there)."""
        chunks = [bytes(self._head), *self._tail]
        for data in reversed(chunks):
            line = last_line_of(data)
            if line:
                return line
        return ""

    def text(self) -> str:
        """The kept bytes decoded (bad bytes replaced), with a marker where bytes were dropped."""
        if not self._dropped():
            return _decode(self._head + b"".join(self._tail_chunks()))
        return self._around(self._marker())

    @property
    def kept(self) -> int:
        """How many bytes are kept: the head and the tail."""
        return len(self._head) + min(self._tail_size, self._tail_limit)

    def close(self) -> None:
        """The stream is over: nothing to finish for a capture held in memory."""

    def _dropped(self) -> bool:
        """True when this capture's memory lacks some of the stream."""
        return self.total > self._head_limit + self._tail_limit

    def _around(self, marker: str) -> str:
        """The head and the tail held in memory, decoded, around ``marker``."""
        return _decode(self._head) + marker + _decode(b"".join(self._tail_chunks()))

    def _marker(self) -> str:
        return omission_marker(self.total - self.kept, self.total)

    def _tail_chunks(self) -> Iterator[memoryview]:
        """The tail's chunks, the first cut to the tail's limit."""
        excess = max(0, self._tail_size - self._tail_limit)
        for chunk in self._tail:
            view = memoryview(chunk)[excess:]
            excess = 0
            if view:
                yield view


def last_line_of(data: bytes) -> str:
    """The last non-empty line among the last 4 KiB of ``data``, decoded and stripped ("" when
    there is none)."""
    lines = [line for line in _decode(data[-4096:]).splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def omission_marker(omitted: int, total: int) -> str:
    """The line that stands for the dropped middle of a stream (:data:`OMISSION` reads it)."""
    return f"\n[... {omitted} bytes omitted; {total} bytes in all ...]\n"


#: The line of :func:`omission_marker`, read back.
OMISSION = re.compile(
    r"\n\[\.\.\. (?P<omitted>\d+) bytes omitted; (?P<total>\d+) bytes in all \.\.\.\]\n"
)


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")
