"""What the machine lets this process use: its CPUs (affinity and a cgroup CPU quota), how
much memory is free, and how many processes the kernel's OOM killer has killed there.

Read from ``/proc`` and ``/sys/fs/cgroup`` directly: a reading must cost microseconds, since
the admission of scripts looks at the free memory several times a second while scripts wait.
Whatever cannot be read counts as "no limit", never as an error: a run must not fail because
a container hides ``/proc/stat``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, Iterator, Optional, Tuple

PROC_MEMINFO = Path("/proc/meminfo")
PROC_VMSTAT = Path("/proc/vmstat")
PROC_LOADAVG = Path("/proc/loadavg")
PROC_CGROUP = Path("/proc/self/cgroup")
#: The cgroups of the first process of this process's namespaces.
PROC_INIT_CGROUP = Path("/proc/1/cgroup")
PROC_MOUNTINFO = Path("/proc/self/mountinfo")
#: What an unreadable or malformed /proc file raises: then nothing is known.
_UNREADABLE = (OSError, ValueError, IndexError)
#: Open files one running script may hold (pipes, their transports, a process handle), with
#: room to spare; ``auto`` keeps the whole run under the open-files limit.
FILES_PER_SCRIPT = 8
#: Open files kept for pytest itself when ``auto`` divides the limit.
FILES_FOR_PYTEST = 64
#: The open-files budget assumed when the limit is infinite.
UNLIMITED_FILES = 65536


def open_files_ceiling() -> int:
    """How many scripts may run at once without exhausting the open-files limit: the
    ceiling of ``auto``."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = UNLIMITED_FILES if soft == resource.RLIM_INFINITY else soft
    return max(1, (budget - FILES_FOR_PYTEST) // FILES_PER_SCRIPT)


@dataclass(frozen=True)
class UsableCpus:
    """How many CPUs this process may keep busy, and what decided it (for the header)."""

    count: int
    reason: str


def usable_cpus() -> UsableCpus:
    """The CPUs of the affinity mask, fewer if a cgroup CPU quota allows less time."""
    affinity = _affinity_count()
    quota = cgroup_cpu_quota()
    if quota is not None and math.ceil(quota) < affinity:
        count = max(1, math.ceil(quota))
        return UsableCpus(count, f"cgroup CPU quota of {quota:g} CPUs")
    total = os.cpu_count() or affinity
    if affinity < total:
        return UsableCpus(affinity, f"affinity allows {affinity} of {total} CPUs")
    return UsableCpus(affinity, f"{affinity} CPUs")


def load_words() -> str:
    """The machine's load, as the warnings about a script short of CPUs say it (``8 ready to
    run on 2 CPUs, load average 6.90``): the run's own scripts are part of it, so a load well
    above them tells a crowd from outside the run. The count of the moment comes first: the
    average of the last minute lags, and a fault campaign's six CPU hogs, started seconds
    before, showed as a load average of 0.6. Both count the whole machine's CPUs, which a
    container or an affinity mask may not let the run use all of."""
    machine, usable = os.cpu_count() or 1, usable_cpus().count
    on = f"on {machine} CPU{'s' if machine > 1 else ''}"
    if usable < machine:
        on = f"on the machine's {machine} CPUs ({usable} usable)"
    try:
        fields = PROC_LOADAVG.read_text().split()
        return f"{int(fields[3].split('/')[0])} ready to run {on}, load average {fields[0]}"
    except (OSError, ValueError, IndexError):  # not Linux: the average alone
        pass
    try:
        return f"load average {os.getloadavg()[0]:.2f} {on}"
    except OSError:  # the system cannot tell
        return "load unknown"


def _affinity_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cgroup_cpu_quota() -> Optional[float]:
    """The CPU time per period the process's cgroup allows, in CPUs (``cpu.max`` of cgroup
    v2, ``cpu.cfs_quota_us`` of v1): the least quota of its cgroup and of those above it, as
    far as they are visible, since each one caps what is below it; None without a quota or
    when none can be read."""
    for controllers, folder, top in _own_cgroups():
        if controllers == "" and (folder / "cpu.max").exists():
            return _least(read_cpu_max(above / "cpu.max") for above in _up_to(folder, top))
        if "cpu" in controllers.split(","):
            return _least(read_cfs_quota(above) for above in _up_to(folder, top))
    return None


def _up_to(folder: Path, top: Path) -> Iterator[Path]:
    """``folder`` and the folders above it, up to ``top``."""
    yield folder
    while folder != top and top in folder.parents:
        folder = folder.parent
        yield folder


def _least(quotas: Iterable[Optional[float]]) -> Optional[float]:
    known = [quota for quota in quotas if quota is not None]
    return min(known) if known else None


def read_cpu_max(path: Path) -> Optional[float]:
    fields = _read(path).split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        return int(fields[0]) / int(fields[1])
    except (ValueError, ZeroDivisionError):
        return None


def read_cfs_quota(folder: Path) -> Optional[float]:
    try:
        quota = int(_read(folder / "cpu.cfs_quota_us"))
        period = int(_read(folder / "cpu.cfs_period_us"))
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def own_cgroup_folders() -> Iterator[Tuple[str, Path]]:
    """For each cgroup hierarchy this process is in: its controllers (empty for cgroup v2)
    and the folder of the process's cgroup in it, where that hierarchy is mounted."""
    for controllers, folder, _top in _own_cgroups():
        yield controllers, folder


def _own_cgroups() -> Iterator[Tuple[str, Path, Path]]:
    """:func:`own_cgroup_folders`, with the folder where each hierarchy is mounted. A mount
    may show only part of a hierarchy (a container's cgroup v1, without a cgroup namespace,
    sees its own cgroup at the mount point): the process's cgroup is found from the part it
    shows, and not at all when it lies outside it."""
    mounts = _cgroup_mounts()
    for line in _read(PROC_CGROUP).splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        mount = mounts.get(controllers)
        if mount is None:
            continue
        point, root = mount
        try:
            inside = PurePosixPath(path).relative_to(root)
        except ValueError:
            continue
        yield controllers, point / inside, point


def _cgroup_mounts() -> Dict[str, Tuple[Path, str]]:
    """Where each cgroup hierarchy is mounted and which of its cgroups shows there, by its
    controllers as /proc/self/cgroup names them ("" for cgroup v2)."""
    mounts: Dict[str, Tuple[Path, str]] = {}
    for line in _read(PROC_MOUNTINFO).splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        mount = (Path(fields[4]), fields[3])
        if tail[0] == "cgroup2":
            mounts.setdefault("", mount)
        elif tail[0] == "cgroup":
            options = [o for o in tail[2].split(",") if o not in ("rw", "ro")]
            names = [o for o in options if "=" not in o or o.startswith("name=")]
            mounts.setdefault(",".join(names), mount)
    return mounts


def available_memory() -> Optional[int]:
    """Bytes the kernel could give new processes without swapping (MemAvailable)."""
    meminfo = _meminfo()
    kib = None if meminfo is None else meminfo.number(b"MemAvailable:")
    return None if kib is None else kib * 1024


@functools.cache
def _meminfo() -> Optional[_KeptOpen]:
    return _KeptOpen.opened(PROC_MEMINFO, b"MemAvailable:")


def oom_kills() -> Optional[int]:
    """How many processes the kernel's OOM killer has killed where this process's scripts run:
    in its own memory cgroup, else on the whole machine (``/proc/vmstat``, Linux 4.13 and
    later; a container usually sees the host's count there); None where no count can be
    read. From the same file as long as the process stays in the same cgroups (a run that
    claims a delegated cgroup moves every process of it, see :func:`.cgroup.claim`)."""
    source = _oom_kill_source(_cgroups_now(PROC_CGROUP))
    return None if source is None else source.number(_OOM_KILL)


#: The line of a cgroup's events, or of ``/proc/vmstat``, that counts OOM kills.
_OOM_KILL = b"oom_kill "


@dataclass(frozen=True)
class _KeptOpen:
    """A file of numbers read many times a run (twice per script, or at every look of the
    admission), kept open: each reading is one ``pread``, since these files are made afresh
    at every read from offset 0; opening and reading them the usual way costs six system
    calls, each a wait for the interpreter lock while scripts start."""

    path: Path
    fd: int

    @classmethod
    def open(cls, path: Path) -> Optional[_KeptOpen]:
        """The file, open, if it can be opened; else None."""
        try:
            return cls(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            return None

    @classmethod
    def opened(cls, path: Path, needed: bytes) -> Optional[_KeptOpen]:
        """The file, open, if it can be read and has the line ``needed``; else None."""
        kept = cls.open(path)
        if kept is not None and kept.number(needed) is None:
            os.close(kept.fd)
            return None
        return kept

    def head(self) -> bytes:
        """What the file says now, up to :data:`_READ_SIZE` bytes (nothing if unreadable)."""
        with contextlib.suppress(OSError):
            return os.pread(self.fd, _READ_SIZE, 0)
        return b""

    def number(self, name: bytes) -> Optional[int]:
        """The number after ``name`` on the line that starts with it. A ``pread`` of a file
        the kernel makes record by record (``/proc/vmstat``) returns a page at most, so the
        file is read on until that line is whole (a cgroup's file takes one call)."""
        with contextlib.suppress(*_UNREADABLE):
            data = b""
            while True:
                chunk = os.pread(self.fd, _READ_SIZE, len(data))
                data += chunk
                whole = data if not chunk else data.rpartition(b"\n")[0]
                for line in whole.splitlines():
                    if line.startswith(name):
                        return int(line.split()[1])
                if not chunk:
                    return None
        return None


#: Bytes asked for at a time.
_READ_SIZE = 64 * 1024


def _cgroups_now(path: Path) -> bytes:
    """What ``path`` (``/proc/self/cgroup``) says now, read with one ``pread`` of the file
    kept open: another process may move this one."""
    kept = _kept_open(path)
    return b"" if kept is None else kept.head()


@functools.cache
def _kept_open(path: Path) -> Optional[_KeptOpen]:
    return _KeptOpen.open(path)


@functools.cache
def _oom_kill_source(cgroups: bytes) -> Optional[_KeptOpen]:
    """The most precise file that counts OOM kills of this process's children, while it is
    in the ``cgroups`` that ``/proc/self/cgroup`` lists: its cgroup
    v2's ``memory.events.local`` (kills in that cgroup, not in the cgroups below it, where a
    script run under a memory limit of ours has its own count), else its ``memory.events``
    (before Linux 5.2; its whole subtree), its cgroup v1 memory controller's
    ``memory.oom_control`` (kills in that cgroup), or ``/proc/vmstat``."""
    own = dict(own_cgroup_folders())
    v2 = own.get("")
    candidates = [
        *([] if v2 is None else [v2 / "memory.events.local", v2 / "memory.events"]),
        *(folder / "memory.oom_control" for names, folder in own.items() if _has_memory(names)),
        PROC_VMSTAT,
    ]
    return next(filter(None, (_KeptOpen.opened(path, _OOM_KILL) for path in candidates)), None)


def oom_kill_scope() -> str:
    """Where :func:`oom_kills` counts, in words for a message."""
    source = _oom_kill_source(_cgroups_now(PROC_CGROUP))
    in_cgroup = source is not None and source.path != PROC_VMSTAT
    return "in the runner's cgroup" if in_cgroup else "on this machine"


def _has_memory(controllers: str) -> bool:
    return "memory" in controllers.split(",")


def total_memory() -> Optional[int]:
    """Bytes of physical memory of the machine."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
