"""Bounded capture of a stream: keep its head and tail, count the rest.

A script may print gigabytes; the runner's memory must not follow. The head shows how a run
started, the tail how it ended, and the marker in between says how much was left out.
"""

from __future__ import annotations

from collections import deque
from typing import BinaryIO, Deque, Iterator, Optional


class BoundedCapture:
    """Collects at most ``limit`` bytes of a stream: the first half and the last half."""

    #: A capture held in memory is in no file (see :mod:`.spill`).
    file: Optional[str] = None

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
    def truncated(self) -> bool:
        """True when some of the stream was dropped."""
        return self.total > self._head_limit + self._tail_limit

    def last_line(self) -> str:
        """The last non-empty line kept so far, decoded; callable from another thread while
        the stream is fed (it only copies what is there)."""
        chunks = [bytes(self._head), *self._tail]
        for data in reversed(chunks):
            lines = [line for line in _decode(data[-4096:]).splitlines() if line.strip()]
            if lines:
                return lines[-1].strip()
        return ""

    def text(self) -> str:
        """The kept bytes decoded (bad bytes replaced), with a marker where bytes were dropped."""
        tail = b"".join(self._tail_chunks())
        if not self.truncated:
            return _decode(self._head + tail)
        return _decode(self._head) + self._marker() + _decode(tail)

    @property
    def kept(self) -> int:
        """How many bytes are kept: the head and the tail."""
        return len(self._head) + min(self._tail_size, self._tail_limit)

    def write_to(self, stream: BinaryIO) -> None:
        """Write the kept bytes as they came, with the marker of :meth:`text` where bytes were
        dropped, without joining them into one more copy."""
        stream.write(self._head)
        if self.truncated:
            stream.write(self._marker().encode())
        for chunk in self._tail_chunks():
            stream.write(chunk)

    def excerpt(self, size: int, where: str) -> str:
        """The first and the last ``size`` kept bytes, decoded, with a marker saying that the
        rest of the kept bytes is in ``where``; all of :meth:`text` when that is no longer."""
        if self.kept <= 2 * size:
            return self.text()
        kept = self._kept_chunks()
        head = _first(kept, size)
        tail = _first(reversed(list(self._kept_chunks())), size, backwards=True)
        middle = self.kept - 2 * size
        marker = f"\n[... {middle} more kept bytes in {where}; {self.total} bytes in all ...]\n"
        return _decode(head) + marker + _decode(tail)

    def _marker(self) -> str:
        omitted = self.total - self.kept
        return f"\n[... {omitted} bytes omitted; {self.total} bytes in all ...]\n"

    def _tail_chunks(self) -> Iterator[memoryview]:
        """The tail's chunks, the first cut to the tail's limit."""
        excess = max(0, self._tail_size - self._tail_limit)
        for chunk in self._tail:
            view = memoryview(chunk)[excess:]
            excess = 0
            if view:
                yield view

    def _kept_chunks(self) -> Iterator[memoryview]:
        if self._head:
            yield memoryview(self._head)
        yield from self._tail_chunks()


def _first(chunks: Iterator[memoryview], size: int, *, backwards: bool = False) -> bytes:
    """The first ``size`` bytes of ``chunks`` (with ``backwards``: chunks given last first,
    the last ``size`` bytes)."""
    parts = []
    wanted = size
    for chunk in chunks:
        part = chunk[-wanted:] if backwards else chunk[:wanted]
        parts.append(bytes(part))
        wanted -= len(part)
        if not wanted:
            break
    return b"".join(reversed(parts) if backwards else parts)


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")
