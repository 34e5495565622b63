"""Starting a script and watching it, holding up the event loop as little as a start allows.

asyncio's own subprocess transport forks in the loop's thread and, before Python 3.12, watches
each child from a thread of its own. Where Linux offers pidfds, the loop learns of each exit
from the pidfd in its own selector instead, and starts most scripts itself: ``Popen`` uses
``vfork`` for them, about a tenth of a millisecond, and handing the start to another thread
costs more than that (each hand-over of the interpreter lock between threads is a wake-up and
a switch of cores, and pytest's own thread is a third party to every one). The rest start in a
small pool of threads, where the loop and its deadlines go on meanwhile:

- a start that runs code in the child before the ``exec`` (joining a memory cgroup): ``Popen``
  then forks a copy of the runner, in a time that grows with pytest's memory;
- the starts of a turn of the loop once that turn spent :data:`TURN_SECONDS` on starts;
- every start of this process, once one took more than :data:`SLOW_START_SECONDS` (a script
  on a slow file system, where ``vfork`` waits for the ``exec``).

Where pidfds are missing, asyncio's transport is used; all paths feed the same protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple

#: Bytes read from a pipe at a time (what asyncio's transport reads too).
_READ_SIZE = 256 * 1024
#: The OOM score adjustment of every script (-1000 to 1000; pytest keeps its own, usually 0).
OOM_SCORE_ADJ = 500
#: What ``Popen`` holds as the status of a script the system reaped itself (never reported).
_STATUS_LOST = -1
#: ``ru_maxrss`` is in KiB on Linux, the only system with pidfds.
_MAXRSS_UNIT = 1024
#: A start on the loop's thread slower than this sends every later start to the spawn pool.
SLOW_START_SECONDS = 0.05
#: Once one turn of the loop spent this long on starts, its other starts go to the pool.
TURN_SECONDS = 0.02

logger = logging.getLogger(__name__)

_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


class _Starts:
    """Where this process starts its scripts (see the module's docstring): the time each
    loop's current turn spent on starts, and whether one start was slow."""

    def __init__(self, *, in_pool: bool = False) -> None:
        self.in_pool = in_pool
        self._spent: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = (
            weakref.WeakKeyDictionary()
        )

    def on_loop(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether the next start of ``loop``'s current turn may run on its thread."""
        return not self.in_pool and self._spent.get(loop, 0.0) < TURN_SECONDS

    def took(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """A start on ``loop``'s thread took ``seconds``; its next turn starts afresh."""
        if loop not in self._spent:
            loop.call_soon(self._spent.pop, loop, None)  # runs at the next turn
        self._spent[loop] = self._spent.get(loop, 0.0) + seconds
        if seconds > SLOW_START_SECONDS and not self.in_pool:
            self.in_pool = True
            logger.debug(
                "a start took %.3fs: scripts start in a pool of threads from now on", seconds
            )


_starts = _Starts()


class ScriptTransport(Protocol):
    """What the runner needs of a started script, whichever way it was started."""

    def get_pid(self) -> int: ...

    def get_returncode(self) -> Optional[int]: ...

    def close(self) -> None: ...


async def start(
    protocol: asyncio.SubprocessProtocol,
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    preexec: Optional[Callable[[], None]] = None,
) -> ScriptTransport:
    """Start ``argv`` in a session of its own, stdin from /dev/null, output to ``protocol``;
    ``preexec`` runs in the child before the exec (it must only make system calls)."""
    loop = asyncio.get_running_loop()
    if not _pidfds_work():
        transport, _ = await loop.subprocess_exec(
            lambda: protocol,
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            preexec_fn=preexec,
        )
        return transport
    if preexec is None and _starts.on_loop(loop):
        began = time.monotonic()
        try:
            started = _popen(list(argv), cwd, dict(env))
        finally:  # a start that fails slowly counts too
            _starts.took(loop, time.monotonic() - began)
    else:
        started = await loop.run_in_executor(
            _spawn_pool(), _popen, list(argv), cwd, dict(env), preexec
        )
    try:
        return _PidfdTransport(loop, started, protocol)
    except BaseException:
        started.discard()
        raise


@dataclass(frozen=True)
class ExitUsage:
    """What the kernel counted for a reaped script (``wait4``): its CPU time and peak resident
    memory, its waited-for descendants included (None where that peak may be the runner's,
    see :func:`_own_peak`). Free to get, and exact for a script too short for any sample."""

    cpu_seconds: float
    max_rss_bytes: Optional[int]


def exit_usage(transport: ScriptTransport) -> Optional[ExitUsage]:
    """The kernel's count for a reaped script, where its transport reaped it itself."""
    return transport.exit_usage if isinstance(transport, _PidfdTransport) else None


def started_at(transport: ScriptTransport, default: float) -> float:
    """When the script was started (``time.monotonic``, the clock of asyncio's loops), where
    its start noted it: its run begins there, not once a spawn thread hands it back."""
    return transport.started_at if isinstance(transport, _PidfdTransport) else default


@dataclass
class _Started:
    """A started process, its pidfd and non-blocking pipes ready to watch."""

    proc: subprocess.Popen[bytes]
    pidfd: int
    #: The read ends of its stdout and stderr.
    pipes: Tuple[int, int]
    began: float
    #: The runner's own peak resident memory (KiB) once the script was executed.
    runner_peak: int

    def discard(self) -> None:
        os.close(self.pidfd)
        _discard(self.proc, self.pipes)


class _PidfdTransport:
    """Feeds a started process's output and exit to a protocol, from the loop's selector."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        started: _Started,
        protocol: asyncio.SubprocessProtocol,
    ) -> None:
        self._loop = loop
        self._proc = started.proc
        self._protocol = protocol
        self.exit_usage: Optional[ExitUsage] = None
        self.started_at = started.began
        self._runner_peak = started.runner_peak
        self._pidfd: Optional[int] = started.pidfd
        self._status_lost = False
        self._pipes: Dict[int, int] = {}  # the stream number (1 or 2) of each pipe
        for number, fd in zip((1, 2), started.pipes):
            self._pipes[fd] = number
            loop.add_reader(fd, self._read, fd)
        loop.add_reader(started.pidfd, self._exited)

    def get_pid(self) -> int:
        return self._proc.pid

    def get_returncode(self) -> Optional[int]:
        return None if self._status_lost else self._proc.returncode

    def close(self) -> None:
        """Release the pipes and the pidfd; kill the leader if it still runs (a last resort)."""
        for fd in list(self._pipes):
            self._close_pipe(fd, tell=False)
        self._close_pidfd()
        if self._proc.poll() is None:
            _discard(self._proc)

    def _read(self, fd: int) -> None:
        number = self._pipes[fd]
        try:
            data = os.read(fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._protocol.pipe_data_received(number, data)
        else:
            self._close_pipe(fd, tell=True)

    def _close_pipe(self, fd: int, *, tell: bool) -> None:
        number = self._pipes.pop(fd)
        self._loop.remove_reader(fd)
        os.close(fd)
        if tell:
            self._protocol.pipe_connection_lost(number, None)

    def _exited(self) -> None:
        """The pidfd is readable: the process has exited, so reaping it cannot block; reaped
        with ``wait4``, which also gives the kernel's count of what it used. When the system
        reaped it first (SIGCHLD ignored), its status is lost and stays None: ``Popen.poll``
        would call that an exit status of 0."""
        self._close_pidfd()
        try:
            pid, status, usage = os.wait4(self._proc.pid, os.WNOHANG)
        except ChildProcessError:
            self._status_lost = True
            self._proc.returncode = _STATUS_LOST  # reaped: Popen must not wait for it again
        else:
            if pid == self._proc.pid:
                self._proc.returncode = os.waitstatus_to_exitcode(status)
                self.exit_usage = ExitUsage(
                    usage.ru_utime + usage.ru_stime, _own_peak(usage.ru_maxrss, self._runner_peak)
                )
            self._proc.poll()
        self._protocol.process_exited()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


def _own_peak(maxrss: int, runner_peak: int) -> Optional[int]:
    """A reaped script's own peak resident memory (bytes) from ``wait4``'s ``ru_maxrss``
    (KiB), or None when it may be the runner's: at ``exec`` the kernel counts the memory the
    child shared with its parent, all of the runner's after ``vfork``, so a figure not above
    the runner's peak once the script was executed (``runner_peak``) says nothing of the
    script (a ``sleep`` would show pytest's size)."""
    return maxrss * _MAXRSS_UNIT if maxrss > runner_peak else None


def _runner_peak() -> int:
    """The runner's own peak resident memory so far (KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _popen(
    argv: Sequence[str],
    cwd: str,
    env: Dict[str, str],
    preexec: Optional[Callable[[], None]] = None,
) -> _Started:
    """Start the script; also when it started (a start in the pool may have waited for a
    thread).

    The pipes are made here, not by ``Popen``: its file objects cost four system calls per
    pipe."""
    began = time.monotonic()
    ends: List[int] = []
    try:
        for _ in range(2):
            ends.extend(os.pipe())
        out_read, out_write, err_read, err_write = ends
        os.set_blocking(out_read, False)
        os.set_blocking(err_read, False)
        proc = subprocess.Popen(
            argv,
            stdin=_devnull(),
            stdout=out_write,
            stderr=err_write,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
        )
    except BaseException:
        _close(ends)
        raise
    _close((out_write, err_write))  # the script holds its own copies
    pipes = (out_read, err_read)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except BaseException:
        _discard(proc, pipes)
        raise
    oom_first(proc.pid)
    return _Started(proc, pidfd, pipes, began, _runner_peak())


@functools.cache
def _devnull() -> int:
    """The stdin of every script, opened once."""
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


def _close(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)


def oom_first(pid: int) -> None:
    """Make the kernel's OOM killer pick a script's tree before pytest: a script that
    allocates without bound must not take the runner, and its report, with it. Raising the
    score needs no privilege, and what a process starts from then on inherits it; a score
    already higher (the script's own choice, or pytest's) is kept."""
    with contextlib.suppress(OSError, ValueError):
        score = os.open(f"/proc/{pid}/oom_score_adj", os.O_RDWR)
        try:
            if int(os.read(score, 16)) < OOM_SCORE_ADJ:
                os.write(score, b"%d" % OOM_SCORE_ADJ)
        finally:
            os.close(score)


def keep_exit_statuses() -> None:
    """Give SIGCHLD its default disposition back if it is ignored, from the main thread (the
    only one that may): with SIGCHLD ignored, which a parent can hand down through ``exec``,
    the system reaps every script itself and its exit status is lost."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN
    ):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _discard(proc: subprocess.Popen[bytes], pipes: Iterable[int] = ()) -> None:
    """Kill a process we cannot watch, with its group, reap it and close its ``pipes``."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)
    _close(pipes)


def _spawn_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=2 * (os.cpu_count() or 1), thread_name_prefix="hypotheses-spawn"
            )
        return _pool


@functools.cache
def _pidfds_work() -> bool:
    """pidfds need Linux 5.3 and Python 3.9; a container may also forbid the call."""
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True
