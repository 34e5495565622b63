"""Captured output written to a file as it comes, so the runner's memory does not grow with
the run.

A run of many hypotheses would otherwise hold up to ``max_output_bytes`` of each stream of
every running script, and every finished one's until the end, and write all of it into its
report. A :class:`SpillingCapture` keeps only a small head and tail in memory (for the live
status, the timeout snapshot and failure texts) and writes what a :class:`.BoundedCapture` of
``max_output_bytes`` would keep to a file: the head straight to it, the tail through a ring
file of the tail's size, joined to it when the stream is over. The ring file starts with how
many bytes went into it, so that another process can read a stream whose writer is gone (see
:mod:`.spilled`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import struct
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, List, Optional, Tuple

from ..core.config import FalsificationConfig
from .capture import OMISSION, BoundedCapture, omission_marker

#: How many bytes of the head and of the tail of a spilled stream stay in memory.
EXCERPT_BYTES = 8 * 1024
#: How much of the ring file is copied at a time when the stream is over.
_COPY_BYTES = 64 * 1024
#: Enough to hold an omission marker, whatever its counts.
_MARKER_BYTES = 128
#: The ring file's header: how many bytes went into the ring (the newest end is found from it).
RING_HEADER = struct.Struct("<Q")
#: What is appended to a stream file's name to name its ring file.
RING_SUFFIX = ".tail"

logger = logging.getLogger(__name__)

#: Makes the capture of one stream ("stdout" or "stderr") of one script.
CaptureFactory = Callable[[str], BoundedCapture]


class SpillingCapture(BoundedCapture):
    """Keeps at most ``limit`` bytes of a stream, as :class:`.BoundedCapture` does, in the
    file ``path``, and its first and last :data:`EXCERPT_BYTES` in memory.

    A file that cannot be written (the disk is full) is given up, said once in the log: the
    capture then holds only its excerpt, and its marker says how much was omitted. ``fresh``
    says that ``path``'s folder is this process's own, which no other process reads: nobody
    needs to see that the stream began, so the file is made with the stream's first bytes,
    replacing what an earlier run of this process left under its name. A silent stream, as
    most are, costs no file, and names none (an earlier run's file may stay under its name).
    """

    def __init__(
        self, limit: int, path: Path, *, resume: bool = False, fresh: bool = False
    ) -> None:
        super().__init__(min(limit, 2 * EXCERPT_BYTES))
        self._limit = limit
        self._file_head = limit // 2
        self._ring_size = limit - self._file_head
        self._ring_written = 0
        #: Whether a ring file may exist for this stream (made by its first write, which may
        #: have failed after making it).
        self._ring_made = resume
        self._path: Optional[Path] = path
        self._ring = path.with_name(path.name + RING_SUFFIX)
        self._closed = False
        self._made = resume
        if resume:
            self._spill(self._resume)
        elif not fresh:
            self._spill(self._start)

    @property
    def file(self) -> Optional[str]:
        """The file of the kept bytes, None once it could not be written, or when there is
        none (a silent stream in a fresh folder)."""
        return None if self._path is None or not self._made else str(self._path)

    @property
    def truncated(self) -> bool:
        return self.total > self._limit

    def feed(self, data: bytes) -> None:
        already = self.total
        super().feed(data)
        if self._path is None:
            return
        head_room = max(0, self._file_head - already)
        path = self._path
        if head_room:
            self._spill(lambda: _write(path, data[:head_room], truncate=not self._made))
            self._made = True
        if len(data) > head_room:
            self._spill(lambda: self._to_ring(memoryview(data)[head_room:]))

    def text(self) -> str:
        """All the kept bytes when they fit in memory, else the excerpt with a line naming
        the file that holds the rest."""
        if self._path is None or not self._dropped() or self._limit <= 2 * EXCERPT_BYTES:
            return super().text()
        middle = min(self.total, self._limit) - 2 * EXCERPT_BYTES
        return self._around(
            f"\n[... {middle} more kept bytes in {self._path}; {self.total} bytes in all ...]\n"
        )

    def close(self) -> None:
        """The stream is over: join the ring's bytes, oldest first, to the file."""
        if self._closed:
            return
        self._closed = True
        if not self._ring_made:
            return  # no ring: the file holds all there is
        if self._path is not None and self._ring_written:
            self._spill(self._join_ring)
        try:
            os.unlink(self._ring)
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("could not remove %s: %s", self._ring, error)

    def _to_ring(self, data: memoryview) -> None:
        """Write ``data`` after what the ring holds, keeping only its last ``ring_size``
        bytes: the ring's offset wraps around."""
        size = self._ring_size
        end = self._ring_written + len(data)
        data = data[-size:]
        offset = (end - len(data)) % size
        self._ring_made = True
        fd = os.open(self._ring, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            first = min(len(data), size - offset)
            os.pwrite(fd, data[:first], RING_HEADER.size + offset)
            if first < len(data):
                os.pwrite(fd, data[first:], RING_HEADER.size)
            os.pwrite(fd, RING_HEADER.pack(end), 0)
        finally:
            os.close(fd)
        self._ring_written = end

    def _start(self) -> None:
        """An empty file, and no ring left by an earlier run of the same attempt (a reader
        would take its bytes for this run's)."""
        assert self._path is not None  # set just before
        _write(self._path, b"", truncate=True)
        self._made = True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._ring)

    def _resume(self) -> None:
        """Take up a stream that a process now gone had written: the excerpt in memory and
        the count from its files, as if this capture had been fed it (the bytes the ring had
        dropped are counted, not seen)."""
        assert self._path is not None  # set just before
        size = self._path.stat().st_size
        self._ring_written = ring_written(self._ring)
        if not self._ring_written and size > self._file_head:
            self._take_up_joined(size)
            return
        with self._path.open("rb") as head:
            for chunk in _read_spans(head, [(0, size)]):
                BoundedCapture.feed(self, chunk)
        if self._ring_written:
            with self._ring.open("rb") as ring:
                for chunk in _read_spans(ring, ring_spans(self._ring_written, self._ring_size)):
                    BoundedCapture.feed(self, chunk)
        self.total = size + self._ring_written

    def _take_up_joined(self, size: int) -> None:
        """The stream had ended before its writer died: its ring was joined to the file,
        after the omission marker when bytes were dropped, which holds the count."""
        assert self._path is not None  # checked by the caller
        with self._path.open("rb") as final:
            final.seek(self._file_head)
            marker = OMISSION.match(final.read(_MARKER_BYTES).decode("ascii", "replace"))
            rest = self._file_head + (0 if marker is None else marker.end())
            spans = [(0, self._file_head), (rest, size - rest)]
            for chunk in _read_spans(final, spans):
                BoundedCapture.feed(self, chunk)
        self.total = size if marker is None else int(marker.group("total"))

    def _join_ring(self) -> None:
        assert self._path is not None  # checked by the caller
        spans = ring_spans(self._ring_written, self._ring_size)
        with self._path.open("ab") as out, self._ring.open("rb") as ring:
            if self.truncated:
                omitted = self.total - self._file_head - self._ring_size
                out.write(omission_marker(omitted, self.total).encode())
            for chunk in _read_spans(ring, spans):
                out.write(chunk)

    def _spill(self, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as error:
            logger.warning("output no longer written to %s: %s", self._path, error)
            self._path = None


def ring_written(ring: Path) -> int:
    """How many bytes went into the ring file ``ring`` (0 when there is none)."""
    try:
        with ring.open("rb") as file:
            header = file.read(RING_HEADER.size)
    except FileNotFoundError:
        return 0
    return RING_HEADER.unpack(header)[0] if len(header) == RING_HEADER.size else 0


def ring_spans(written: int, size: int) -> List[Tuple[int, int]]:
    """Where the bytes of a ring of ``size`` into which ``written`` bytes went are, oldest
    first: (offset in the ring file, length)."""
    if written <= size:  # never wrapped: in order, nothing dropped
        return [(RING_HEADER.size, written)]
    start = written % size
    return [(RING_HEADER.size + start, size - start), (RING_HEADER.size, start)]


def _read_spans(file: BinaryIO, spans: List[Tuple[int, int]]) -> Iterator[bytes]:
    """The bytes of ``spans`` of ``file``, in order, a bounded chunk at a time."""
    for offset, length in spans:
        file.seek(offset)
        while length > 0:
            chunk = file.read(min(length, _COPY_BYTES))
            if not chunk:
                break
            yield chunk
            length -= len(chunk)


def _write(path: Path, data: bytes, *, truncate: bool = False) -> None:
    """Append ``data`` to ``path`` (opened and closed each time: a running script must not
    cost open files beyond its pipes; no file object: this runs for every script's start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class OutputFiles:
    """Where one run writes its scripts' output: its folder, made once for the run."""

    def __init__(self, folder: Path, limit: int, *, fresh: bool) -> None:
        self.folder = folder
        self._limit = limit
        #: The process's own temporary folder, which no other process reads: see
        #: :class:`SpillingCapture`.
        self._fresh = fresh

    @classmethod
    def for_run(cls, config: FalsificationConfig) -> Optional[OutputFiles]:
        """The run's output files when ``config`` spills output (None: kept in memory, the
        default of :class:`.BoundedCapture`, also when the folder cannot be made)."""
        try:
            folder = spill_folder(config)
            if folder is None:
                return None
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a temporary folder too: a full or read-only disk
            logger.warning("output of this run kept in memory: %s", error)
            return None
        return cls(folder, config.max_output_bytes, fresh=not config.output_folder)

    def captures(self, hypothesis_id: str, worktree: str, attempt: int) -> CaptureFactory:
        """How the streams of one attempt are captured."""
        stem = spill_stem(hypothesis_id, worktree, attempt)
        limit, folder, fresh = self._limit, self.folder, self._fresh
        return lambda name: SpillingCapture(limit, folder / f"{stem}.{name}", fresh=fresh)


def spill_stem(hypothesis_id: str, worktree: str, attempt: int) -> str:
    """The name of an attempt's output files without their ``.stdout``/``.stderr``: the same
    in every process of a run, so one that did not write them finds them."""
    # ids repeat across worktrees: a digest of the worktree's path tells them apart
    return f"{hypothesis_id}-{hashlib.sha1(os.fsencode(worktree)).hexdigest()[:10]}-{attempt}"


#: Where this process's temporary output folder is made (see :func:`place_temporary_output`).
_temporary_root: Optional[Callable[[], Optional[Path]]] = None
_temporary_lock = threading.Lock()


def spill_folder(config: FalsificationConfig) -> Optional[Path]:
    """Where this run writes its captured output: ``config.output_folder``, else one temporary
    folder per process made at the first use; None when output stays in memory."""
    if not config.spill_output:
        return None
    if config.output_folder:
        return Path(config.output_folder)
    with _temporary_lock:  # the loop's thread and pytest's may both ask first
        return _temporary_folder()


def place_temporary_output(root: Optional[Callable[[], Optional[Path]]]) -> None:
    """Make this process's temporary output folder in ``root()``, a new one at its next use;
    None keeps the folder made last, if any, else makes one in the system's temporary folder.
    The pytest plugin gives pytest's own temporary folder, which pytest keeps for a few
    sessions and then removes: one left in the system's temporary folder by every run would
    pile up there. A session that ended keeps its folder for whatever still asks for it."""
    global _temporary_root
    with _temporary_lock:
        _temporary_root = root
        if root is not None:
            _temporary_folder.cache_clear()


def temporary_root() -> Optional[Path]:
    """Where this process makes its temporary folders (None: the system's temporary folder):
    pytest's own under the plugin, which pytest prunes, so a runner killed before it cleaned
    up leaves nothing to pile up."""
    return None if _temporary_root is None else _temporary_root()


@functools.cache
def _temporary_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="hypotheses-output-", dir=temporary_root()))
