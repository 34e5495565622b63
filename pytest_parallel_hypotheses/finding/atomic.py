"""Writing a file so that a reader sees either the old content or the new, never half of it:
reports and setup stamps are read by other processes, maybe while being written."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` in one step; never leave a partial file behind. A
    ``durable`` file is on the disk before it replaces the old one, so that a power cut cannot
    leave it empty; a cache entry need not be (an empty entry is ignored and its verdict found
    again), and a flush per verdict cost 3.6 ms of the run's time.

    A symlink stays, and its target is replaced. A device or a FIFO (``/dev/null``, a pipe a
    reader waits on) is written to, as pytest's ``--junitxml`` does: replacing it made
    ``--hypotheses-report=/dev/full``, run as root, turn the device into a plain file."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if is_special(path):
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as stream:
            stream.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # a path that is not UTF-8 holds surrogates: written as escapes, which JSON reads back
        with os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace") as stream:
            stream.write(text)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def is_special(path: Path) -> bool:
    """Whether ``path`` (its target, for a symlink) is there and neither a regular file nor a
    folder: a device, a FIFO or a socket, which a file of ours must never replace."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, unreadable, or a NUL in the name
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
