"""Bounded capture of a stream: keep its head and tail, count the rest.

A script may print gigabytes; the runner's memory must not follow. The head shows how a run
started, the tail how it ended, and the marker in between says how much was left out.
"""

from __future__ import annotations

from collections import deque
from typing import Deque


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
        tail = b"".join(self._tail)[-self._tail_limit :] if self._tail else b""
        if not self.truncated:
            return _decode(self._head + tail)
        omitted = self.total - len(self._head) - len(tail)
        marker = f"\n[... {omitted} bytes omitted; {self.total} bytes in all ...]\n"
        return _decode(self._head) + marker + _decode(tail)


def _decode(data: bytes | bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")
