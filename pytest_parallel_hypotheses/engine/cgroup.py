"""A cgroup v2 of its own for one script, where the system delegates one to this process.

A cgroup holds every process a script starts, whatever it does (double forks, new sessions),
and the kernel enforces its memory limit: ``memory.max`` with ``memory.oom.group`` kills the
whole tree at once when it passes the limit, and ``memory.events`` counts the kills. It also
stops the whole tree with one write (``cgroup.kill``), whatever left the script's group and
its marker.

The script joins its cgroup from the child side of the fork, before it executes anything, so
not one of its processes can start outside it. Where no writable cgroup v2 exists, or it lacks
a controller, :func:`memory_parent` says why, and the caller falls back; nothing here may
fail a run.

The kernel lets a cgroup other than the root give its children a controller only while it
holds no process, and a cgroup that systemd delegates (``Delegate=yes``) starts with the
processes of its unit in it, pytest's included. A run that limits memory claims such a
cgroup: its processes move into one leaf of it, and the scripts' cgroups are made beside
that leaf.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, FrozenSet, List, Optional, Tuple

from . import machine

#: Where a script's cgroup is created, under the delegated one.
NAME_PREFIX = "pph-"
#: The leaf into which a claim moves a delegated cgroup's own processes, pytest's included.
RUNNER_LEAF = "pph-runner"
#: How long a claim goes on moving processes out, and how long it waits between rounds.
_CLAIM_SECONDS = 2.0
_CLAIM_PAUSE = 0.01


class CgroupError(Exception):
    """A cgroup that cannot be created or set up; the message says which and why."""


@dataclass(frozen=True)
class CgroupParent:
    """A cgroup v2 folder this process may create children in, and the controllers that
    those children get (its ``cgroup.subtree_control``)."""

    path: Path
    controllers: FrozenSet[str]
    #: The leaf its own processes were moved into (see :func:`claim`), if they were.
    leaf: Optional[Path] = None


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


def memory_parent(*, claim_delegated: bool = False) -> Tuple[Optional[CgroupParent], str]:
    """A cgroup whose children get the memory controller, else None and why. With
    ``claim_delegated``, a cgroup delegated to this process that holds processes of its own
    is claimed first (:func:`claim`): only a run that limits memory asks for that."""
    parent, reason = delegated_parent()
    if parent is None:
        return None, reason
    return parent_giving(parent, "memory", claim_delegated=claim_delegated)


def parent_giving(
    own: CgroupParent, controller: str, *, claim_delegated: bool
) -> Tuple[Optional[CgroupParent], str]:
    """The cgroup under which a script gets ``controller``: ``own`` (a process's), the
    delegated cgroup above ``own`` when ``own`` is the leaf a claim moved it into (claimed
    again when that claim is under way or gave up), or ``own`` once claimed; else None and
    why."""
    if controller in own.controllers:
        return own, ""
    if own.path.name == RUNNER_LEAF:
        above = _subtree_controllers(own.path.parent)
        if controller in above:
            return CgroupParent(own.path.parent, above, own.path), ""
        if claim_delegated and is_delegated(own.path.parent):
            own = CgroupParent(own.path.parent, above)  # a claim under way, or one that gave up
    if controller not in _words(own.path / "cgroup.controllers"):
        return None, f"the cgroup v2 {own.path} gives its children no {controller} controller"
    if not is_delegated(own.path):
        return None, (
            f"the cgroup v2 {own.path} has processes of its own and is not delegated to this "
            f"process (as systemd's Delegate=yes does), so the kernel lets it give its "
            f"children no {controller} controller"
        )
    if not claim_delegated:
        return None, (
            f"the cgroup v2 {own.path} is delegated, and only a run that limits memory claims it"
        )
    try:
        return claim(own.path, controller), ""
    except CgroupError as error:
        return None, str(error)


def is_delegated(path: Path) -> bool:
    """Whether the system handed the cgroup ``path`` to this process to manage below it:
    systemd marks the cgroup of a unit with ``Delegate=yes`` (``trusted.delegate``, or
    ``user.delegate`` since v251), and a container's cgroup namespace makes its own cgroup
    the top of what it and its first process see (a real root has no ``cgroup.type``)."""
    for name in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError):
            if os.getxattr(path, name) == b"1":
                return True
    return (
        os.path.ismount(path)
        and (path / "cgroup.type").exists()
        and _top_of_namespace(machine.PROC_INIT_CGROUP)
    )


def _top_of_namespace(init_cgroup: Path) -> bool:
    """Whether the first process of this process's namespaces (a container's init) is at the
    top of its cgroup namespace too (or in the leaf a claim moved it to): a bare ``unshare
    --cgroup`` makes a namespace of a cgroup nobody handed over, and leaves it outside."""
    try:
        lines = init_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        return False
    return "0::/" in lines or f"0::/{RUNNER_LEAF}" in lines


def claim(path: Path, controller: str) -> CgroupParent:
    """Move every process of the delegated cgroup ``path`` (this one, and the shell or
    pytest-xdist workers beside it) into its leaf :data:`RUNNER_LEAF`, then give its
    children ``controller``: the kernel lets a cgroup other than the root do that only
    while it holds no process. A process that forks meanwhile leaves its child behind, so
    this goes round until the write holds, for :data:`_CLAIM_SECONDS` at most. Raises
    :class:`CgroupError`."""
    leaf = path / RUNNER_LEAF
    try:
        leaf.mkdir(exist_ok=True)
    except OSError as error:
        raise CgroupError(f"cannot create cgroup {leaf}: {error.strerror}") from None
    deadline = time.monotonic() + _CLAIM_SECONDS
    while time.monotonic() < deadline:
        for pid in _words(path / "cgroup.procs"):
            _move(pid, leaf)
        try:
            (path / "cgroup.subtree_control").write_text(f"+{controller}", encoding="ascii")
        except OSError as error:
            if error.errno == errno.EBUSY:
                time.sleep(_CLAIM_PAUSE)  # a process the kernel has not moved yet
                continue
            raise CgroupError(
                f"cannot give the children of cgroup {path} the {controller} controller: "
                f"{error.strerror}"
            ) from None
        return CgroupParent(path, _subtree_controllers(path), leaf)
    raise CgroupError(f"processes kept starting in cgroup {path} as they were moved out")


def _move(pid: str, leaf: Path) -> None:
    """Move the process ``pid`` into ``leaf``; one that ended meanwhile is gone anyway."""
    if pid == "0":  # writing 0 would move the writer
        raise CgroupError(
            f"cannot move a process of another pid namespace (listed as 0) into cgroup {leaf}"
        )
    try:
        (leaf / "cgroup.procs").write_text(pid, encoding="ascii")
    except ProcessLookupError:
        pass
    except OSError as error:
        raise CgroupError(
            f"cannot move process {pid} into cgroup {leaf}: {error.strerror}"
        ) from None


def _subtree_controllers(path: Path) -> FrozenSet[str]:
    return frozenset(_words(path / "cgroup.subtree_control"))


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
