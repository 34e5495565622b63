"""A cgroup v2 of its own for one script, where the system delegates one to this process.

A cgroup holds every process a script starts, whatever it does (double forks, new sessions),
and the kernel enforces its memory limit: ``memory.max`` with ``memory.oom.group`` kills the
whole tree at once when it passes the limit, and ``memory.events`` counts the kills. It also
stops the whole tree with one write (``cgroup.kill``), whatever left the script's group and
its marker.

The script joins its cgroup from the child side of the fork, before it executes anything, so
not one of its processes can start outside it. Where no writable cgroup v2 exists, or it lacks
a controller, :func:`delegated_parent` says why, and the caller falls back; nothing here may
fail a run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, FrozenSet, List, Optional, Tuple

from . import machine

#: Where a script's cgroup is created, under the delegated one.
NAME_PREFIX = "pph-"


class CgroupError(Exception):
    """A cgroup that cannot be created or set up; the message says which and why."""


@dataclass(frozen=True)
class CgroupParent:
    """A cgroup v2 folder this process may create children in, and the controllers that
    those children get (its ``cgroup.subtree_control``)."""

    path: Path
    controllers: FrozenSet[str]


def delegated_parent() -> Tuple[Optional[CgroupParent], str]:
    """This process's own cgroup v2 folder if it may create children there, else None and
    the reason, in words for a header line."""
    own = next((path for names, path in machine.own_cgroup_folders() if names == ""), None)
    if own is None or not (own / "cgroup.procs").exists():
        return None, "no cgroup v2 hierarchy"
    if not os.access(own, os.W_OK):
        return None, f"the cgroup v2 {own} is not writable"
    try:
        controllers = (own / "cgroup.subtree_control").read_text(encoding="ascii").split()
    except OSError as error:
        return None, f"cannot read {own / 'cgroup.subtree_control'}: {error.strerror}"
    return CgroupParent(own, frozenset(controllers)), ""


def memory_parent() -> Tuple[Optional[CgroupParent], str]:
    """A delegated cgroup whose children get the memory controller, else None and why."""
    parent, reason = delegated_parent()
    if parent is None:
        return None, reason
    if "memory" in parent.controllers:
        return parent, ""
    if "memory" in _words(parent.path / "cgroup.controllers") and _words(
        parent.path / "cgroup.procs"
    ):
        return None, (
            f"the cgroup v2 {parent.path} has processes of its own, so the kernel lets it "
            "give its children no memory controller"
        )
    return None, f"the cgroup v2 {parent.path} gives its children no memory controller"


def _words(path: Path) -> List[str]:
    """The words of a cgroup file (none when it cannot be read)."""
    try:
        return path.read_text(encoding="ascii").split()
    except OSError:
        return []


class ScriptCgroup:
    """One script's cgroup: created empty, joined by the script before it runs, emptied and
    removed by :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The open ``cgroup.procs`` of a :meth:`joiner` not yet released.
        self.procs_fd: Optional[int] = None

    @classmethod
    def create(cls, parent: CgroupParent, *, memory_max: Optional[int] = None) -> ScriptCgroup:
        """A new child of ``parent``; with ``memory_max``, the kernel kills the whole tree
        once it uses more than that many bytes. Raises :class:`CgroupError`."""
        path = parent.path / f"{NAME_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
        except OSError as error:
            raise CgroupError(f"cannot create cgroup {path}: {error.strerror}") from None
        cgroup = cls(path)
        try:
            if memory_max is not None:
                cgroup._write("memory.max", str(memory_max))
                cgroup._write("memory.swap.max", "0", required=False)
                cgroup._write("memory.oom.group", "1")
        except CgroupError:
            cgroup.close()
            raise
        return cgroup

    def joiner(self) -> Callable[[], None]:
        """A function for the child side of a fork: it moves the calling process into this
        cgroup (writing ``0`` to ``cgroup.procs``), with a file opened beforehand, so it
        allocates nothing and takes no lock. The caller closes :attr:`procs_fd` after the
        spawn."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        self.procs_fd = fd

        def join() -> None:
            os.write(fd, b"0")

        return join

    def release_joiner(self) -> None:
        """Close the file the joiner wrote to (once the child has started)."""
        fd, self.procs_fd = self.procs_fd, None
        if fd is not None:
            os.close(fd)

    def oom_kills(self) -> int:
        """How many processes of the tree the kernel's OOM killer killed (``memory.events``)."""
        for line in self._read("memory.events").splitlines():
            name, _, count = line.partition(" ")
            if name == "oom_kill":
                with contextlib.suppress(ValueError):
                    return int(count)
        return 0

    def peak_memory(self) -> Optional[int]:
        """The most memory the tree used at once (``memory.peak``, Linux 5.19), if known."""
        try:
            return int(self._read("memory.peak"))
        except ValueError:
            return None

    def is_populated(self) -> bool:
        return "populated 1" in self._read("cgroup.events")

    def kill(self) -> None:
        """SIGKILL every process of the cgroup at once (``cgroup.kill``, Linux 5.14), else one
        by one from ``cgroup.procs`` (repeat until :meth:`is_populated` is False)."""
        try:
            self._write("cgroup.kill", "1")
        except CgroupError:
            for pid in self._read("cgroup.procs").split():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)

    def close(self) -> bool:
        """Remove the cgroup, which must be empty (kill and wait first); False if it stays,
        still populated."""
        self.release_joiner()
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    def _write(self, name: str, value: str, *, required: bool = True) -> None:
        try:
            (self.path / name).write_text(value, encoding="ascii")
        except OSError as error:
            if required:
                raise CgroupError(
                    f"cannot write {value!r} to {self.path / name}: {error.strerror}"
                ) from None

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text(encoding="ascii")
        except OSError:
            return ""
