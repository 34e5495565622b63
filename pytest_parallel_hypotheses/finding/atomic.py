"""Writing a file so that a reader sees either the old content or the new, never half of it:
reports and setup stamps are read by other processes, maybe while being written.

What is not a file of its own is written to, never replaced: one of the process's own open
files named by its number (``/dev/stdout``, a shell's ``>(jq .)``), and a device or a FIFO
(``/dev/null``), as pytest's ``--junitxml`` does. Replacing them made
``--hypotheses-report=/dev/full``, run as root, turn the device into a plain file, and
``/dev/stdout`` a file in ``/dev`` that took every later run's report.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO, Optional

#: The paths that name one of the process's own open files by its number.
_STANDARD = {"/dev/stdout": 1, "/dev/stderr": 2}
_NUMBERED = re.compile(r"/(?:dev|proc/self)/fd/(\d+)")
#: A path that is not UTF-8 holds surrogates: written as escapes, which JSON reads back.
_ESCAPED = "backslashreplace"


def write_atomically(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` in one step; never leave a partial file behind. A
    ``durable`` file is on the disk before it replaces the old one, so that a power cut cannot
    leave it empty; a cache entry need not be (an empty entry is ignored and its verdict found
    again), and a flush per verdict cost 3.6 ms of the run's time. A symlink stays, and its
    target is replaced; what :func:`writes_through` is written to."""
    if writes_through(path):
        with open_through(path) as stream:
            stream.write(text)
        return
    path = replaced_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", errors=_ESCAPED) as stream:
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


def open_through(path: Path) -> IO[str]:
    """A stream that writes to ``path`` as it is: one of the process's own open files on its
    descriptor, after what the process wrote there (and left open when the stream closes),
    anything else opened for writing."""
    number = _own_descriptor(path)
    if number is not None:
        return open(number, "w", encoding="utf-8", errors=_ESCAPED, closefd=False)
    return open(path, "w", encoding="utf-8", errors=_ESCAPED)


def replaced_path(path: Path) -> Path:
    """The file a write at ``path`` replaces: the target of a symlink, else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def writes_through(path: Path) -> bool:
    """Whether a file of ours at ``path`` is written to, not replaced: it names one of the
    process's own open files, or it is a device, a FIFO or a socket. No folder goes beside
    it (``/dev`` is no place for one), and only it need be writable."""
    return _own_descriptor(path) is not None or is_special(path)


def is_special(path: Path) -> bool:
    """Whether ``path`` (its target, for a symlink) is there and neither a regular file nor a
    folder: a device, a FIFO or a socket."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, unreadable, or a NUL in the name
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _own_descriptor(path: Path) -> Optional[int]:
    """The number of the process's own open file that ``path`` names, as given (resolved,
    ``/dev/stdout`` is the file or pipe it is open on), or None."""
    text = os.fspath(path)
    if text in _STANDARD:
        return _STANDARD[text]
    named = _NUMBERED.fullmatch(text)
    return None if named is None else int(named.group(1))
