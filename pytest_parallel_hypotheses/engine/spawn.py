"""Starting a script and watching it, without holding up the event loop.

asyncio's own subprocess transport forks in the loop's thread (about a millisecond per script on
a 2-core machine, during which nothing else runs) and, before Python 3.12, watches each child
from a thread of its own. Where Linux offers pidfds, scripts are started in a small thread pool
instead, so that starts overlap on every core, and the loop learns of each exit from the pidfd
in its own selector. Elsewhere asyncio's transport is used; both feed the same protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Dict, Mapping, Optional, Protocol, Sequence, Tuple

#: Bytes read from a pipe at a time (what asyncio's transport reads too).
_READ_SIZE = 256 * 1024

_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


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
) -> Tuple[ScriptTransport, float]:
    """Start ``argv`` in a session of its own, stdin from /dev/null, output to ``protocol``.

    Also returns the moment (``time.monotonic``, the loop's clock) its start began: in the
    thread that forks, so not the wait for a spawn thread, nor the wait for the loop after."""
    loop = asyncio.get_running_loop()
    if not _pidfds_work():
        began = time.monotonic()  # the fork happens in this thread, without waiting
        transport, _ = await loop.subprocess_exec(
            lambda: protocol,
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
        return transport, began
    proc, started = await loop.run_in_executor(_spawn_pool(), _popen, list(argv), cwd, dict(env))
    try:
        return _PidfdTransport(loop, proc, protocol), started
    except BaseException:
        _discard(proc)
        raise


class _PidfdTransport:
    """Feeds a started process's output and exit to a protocol, from the loop's selector."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proc: subprocess.Popen[bytes],
        protocol: asyncio.SubprocessProtocol,
    ) -> None:
        self._loop = loop
        self._proc = proc
        self._protocol = protocol
        self._pidfd: Optional[int] = os.pidfd_open(proc.pid)
        self._pipes: Dict[int, Tuple[int, IO[bytes]]] = {}
        for number, stream in ((1, proc.stdout), (2, proc.stderr)):
            assert stream is not None  # both are pipes
            os.set_blocking(stream.fileno(), False)
            self._pipes[stream.fileno()] = (number, stream)
            loop.add_reader(stream.fileno(), self._read, stream.fileno())
        loop.add_reader(self._pidfd, self._exited)

    def get_pid(self) -> int:
        return self._proc.pid

    def get_returncode(self) -> Optional[int]:
        return self._proc.returncode

    def close(self) -> None:
        """Release the pipes and the pidfd; kill the leader if it still runs (a last resort)."""
        for fd in list(self._pipes):
            self._close_pipe(fd, tell=False)
        self._close_pidfd()
        if self._proc.poll() is None:
            _discard(self._proc)

    def _read(self, fd: int) -> None:
        number, _stream = self._pipes[fd]
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
        number, stream = self._pipes.pop(fd)
        self._loop.remove_reader(fd)
        stream.close()
        if tell:
            self._protocol.pipe_connection_lost(number, None)

    def _exited(self) -> None:
        """The pidfd is readable: the process has exited, so reaping it cannot block."""
        self._close_pidfd()
        self._proc.poll()
        self._protocol.process_exited()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


def _popen(
    argv: Sequence[str], cwd: str, env: Dict[str, str]
) -> Tuple[subprocess.Popen[bytes], float]:
    started = time.monotonic()  # before the fork: once Popen returns, the GIL may be slow
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    return proc, started


def _discard(proc: subprocess.Popen[bytes]) -> None:
    """Kill a process we cannot watch, with its group, and reap it."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


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
