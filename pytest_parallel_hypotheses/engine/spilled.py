"""The output files of a script, read by a process that did not write them.

Under pytest-xdist a worker runs the script and spills its output (see :mod:`.spill`), while
the controller draws the live status and writes the reports. The file names are the same in
every process of a run, so the controller finds them: it follows each running script's last
line there (no message per printed line crosses between processes), and when a worker dies it
takes up what the worker's scripts had printed.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, List, Optional, Tuple

from .capture import BoundedCapture, last_line_of
from .spill import RING_HEADER, RING_SUFFIX, SpillingCapture, ring_spans, ring_written, spill_stem

#: How far back from the end of a stream its last line is looked for.
LAST_LINE_BYTES = 4096
#: Files this many seconds older than the run still count as the run's: a file's time comes
#: from a coarser clock than the system's.
CLOCK_SLACK = 1.0
#: The names of an attempt's two stream files, after its stem.
STREAMS = ("stdout", "stderr")


def latest_attempt(
    folder: Path, hypothesis_id: str, worktree: str, *, since: datetime
) -> Optional[Path]:
    """The stem (a path without ``.stdout``) of the newest attempt of a hypothesis whose files
    were written since ``since`` (the run's start, a moment as the files' times are): files of
    an earlier run, left in the same folder, are not this run's."""
    found = None
    attempt = 1
    while True:
        stem = folder / spill_stem(hypothesis_id, worktree, attempt)
        try:
            written = os.stat(stream_file(stem, "stdout")).st_mtime
        except OSError:
            return found
        if written >= since.timestamp() - CLOCK_SLACK:
            found = stem
        attempt += 1


def stream_file(stem: Path, name: str) -> Path:
    """The file of stream ``name`` of the attempt ``stem`` (ids may hold dots: no suffixes)."""
    return stem.with_name(f"{stem.name}.{name}")


class FollowedOutput:
    """The output of a script that runs in another process of this machine, as the live
    status reads it: only the end of its files, at each look."""

    def __init__(self, folder: Path, hypothesis_id: str, worktree: str, since: datetime) -> None:
        self._folder = folder
        self._hypothesis_id = hypothesis_id
        self._worktree = worktree
        self._since = since

    def last_line(self) -> str:
        """The last non-empty line printed on stdout, else on stderr ("" before any)."""
        stem = latest_attempt(self._folder, self._hypothesis_id, self._worktree, since=self._since)
        if stem is None:
            return ""
        for name in STREAMS:
            line = last_line_of(_end_of(stream_file(stem, name)))
            if line:
                return line
        return ""


def left_behind(
    limit: int, folder: Path, hypothesis_id: str, worktree: str, *, since: datetime
) -> Optional[Tuple[BoundedCapture, BoundedCapture]]:
    """What the newest attempt of a hypothesis had printed when the process running it died,
    its stdout and stderr, their files finished as that process would have finished them
    (``limit`` is its ``max_output_bytes``); None when it had no files yet."""
    stem = latest_attempt(folder, hypothesis_id, worktree, since=since)
    if stem is None:
        return None
    stdout, stderr = (_taken_up(limit, stream_file(stem, name)) for name in STREAMS)
    return stdout, stderr


def _taken_up(limit: int, path: Path) -> BoundedCapture:
    """The stream of ``path`` as kept so far; an empty one when its file was never made (its
    writer died between making the two files)."""
    if not path.exists():
        return BoundedCapture(0)
    capture = SpillingCapture(limit, path, resume=True)
    capture.close()
    return capture


def _end_of(path: Path) -> bytes:
    """The last :data:`LAST_LINE_BYTES` written so far to the stream of ``path``: from its
    ring file once its head is full, else from the file itself (b"" when neither is there,
    or they went away while being read: the next look sees the finished file)."""
    ring = path.with_name(path.name + RING_SUFFIX)
    try:
        written = ring_written(ring)
        if not written:
            with path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                return _tail_of(file, [(0, size)])
        ring_size = ring.stat().st_size - RING_HEADER.size  # what it holds so far
        with ring.open("rb") as file:
            return _tail_of(file, ring_spans(written, ring_size))
    except OSError:
        return b""


def _tail_of(file: BinaryIO, spans: List[Tuple[int, int]]) -> bytes:
    """The last :data:`LAST_LINE_BYTES` of the bytes of ``spans`` of ``file``, in order."""
    wanted = LAST_LINE_BYTES
    pieces: List[bytes] = []
    for offset, length in reversed(spans):
        take = min(length, wanted)
        file.seek(offset + length - take)
        pieces.insert(0, file.read(take))
        wanted -= take
        if not wanted:
            break
    return b"".join(pieces)
