"""Ways to run a batch of scripts: the executor under test and the three baselines.

Every runner takes the same :class:`Batch` and returns one outcome per script (its exit status,
or None when the runner stopped it at the deadline), so a benchmark can check that the work was
really done before it trusts a time.

- ``executor``: this package's ``TestExecutor.execute_parallel``, the public synchronous API.
- ``threadpool``: the legacy design: one thread per concurrent script, each blocked in
  ``subprocess.run(capture_output=True, text=True, timeout=...)``.
- ``xargs``: GNU ``xargs -P`` running ``/bin/sh <script>``; what a shell one-liner achieves.
- ``spawn``: the spawn limit: ``os.posix_spawn`` + ``os.waitpid`` from a pool of threads, no
  capture, no deadline; no Python runner can start and reap processes much faster.
- ``asyncio floor``: the executor's design with nothing else: an event loop that starts each
  script through a pool of threads, learns of its exit from a pidfd and drains its two pipes,
  with no deadline, capture, sampling or result. What the executor adds costs its distance
  from this floor.
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisRun,
    TestExecutionResult,
    TestExecutor,
    TestResult,
)

from .layouts import Job

Outcome = Optional[int]


@dataclass(frozen=True)
class Batch:
    """Scripts to run, at most ``concurrency`` at a time, each within ``timeout`` seconds."""

    jobs: Sequence[Job]
    concurrency: int
    timeout: float = 60.0
    grace: float = 2.0
    #: Expected duration of each job, for a runner that can plan its start order with them.
    expected: Optional[Sequence[float]] = None
    #: For the executor: ``auto`` (adaptive to the machine) with ``concurrency`` as ceiling.
    adaptive: bool = False


Runner = Callable[[Batch], List[Outcome]]


def run_executor(batch: Batch) -> List[Outcome]:
    """The executor under test, configured from the batch (expected durations included)."""
    results = execute(batch)
    return [None if r.result is TestResult.TIMEOUT else r.exit_code for r in results]


def execute(batch: Batch) -> List[TestExecutionResult]:
    """The executor's results over ``batch``, for workloads that look at more than outcomes."""
    config = FalsificationConfig(
        test_timeout=batch.timeout,
        max_concurrent_tests=batch.concurrency,
        kill_grace=batch.grace,
        adaptive_concurrency=batch.adaptive,
    )
    expected: Sequence[Optional[float]] = batch.expected or [None] * len(batch.jobs)
    runs = [
        HypothesisRun(Hypothesis(job.hypothesis_id, "benchmark"), job.worktree, None, duration)
        for job, duration in zip(batch.jobs, expected)
    ]
    return TestExecutor(config).execute_parallel(runs)


def run_threadpool(batch: Batch) -> List[Outcome]:
    """Baseline 1: the legacy ThreadPool executor's structure."""
    with ThreadPoolExecutor(max_workers=batch.concurrency) as pool:
        futures = [pool.submit(_legacy_single, job, batch.timeout) for job in batch.jobs]
        return [future.result() for future in futures]


def _legacy_single(job: Job, timeout: float) -> Outcome:
    try:
        completed = subprocess.run(
            [str(job.script)],
            cwd=job.worktree,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return completed.returncode


def run_xargs(batch: Batch) -> List[Outcome]:
    """Baseline 2: ``xargs -0 -n 1 -P <concurrency> /bin/sh`` over the scripts.

    xargs reports one status for the whole batch (0 only if every script exited 0), so each
    script gets that status. It has no deadline and runs every script in one directory.
    """
    scripts = b"\0".join(os.fsencode(job.script) for job in batch.jobs)
    completed = subprocess.run(
        ["xargs", "-0", "-n", "1", "-P", str(batch.concurrency), "/bin/sh"],
        input=scripts,
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return [completed.returncode] * len(batch.jobs)


def run_spawn_limit(batch: Batch) -> List[Outcome]:
    """Baseline 3: ``concurrency`` threads, each ``posix_spawn``-ing a script in a new session
    and blocking in ``waitpid`` until it ends; output goes to /dev/null."""
    pending: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in batch.jobs:
        pending.put(job)
    outcomes: List[Outcome] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                job = pending.get_nowait()
            except queue.Empty:
                return
            status = _spawn_and_wait(str(job.script))
            with lock:
                outcomes.append(status)

    threads = [threading.Thread(target=worker) for _ in range(batch.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


_DEVNULL_ACTIONS = [
    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
]


def _spawn_and_wait(script: str) -> int:
    pid = os.posix_spawn(script, [script], os.environ, file_actions=_DEVNULL_ACTIONS, setsid=True)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_asyncio_floor(batch: Batch) -> List[Outcome]:
    """The executor's design, bare: at most ``concurrency`` scripts, each started in a thread
    of a pool as large as the executor's, watched from the loop through a pidfd."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        return asyncio.run(_floor(batch, pool))


async def _floor(batch: Batch, pool: ThreadPoolExecutor) -> List[Outcome]:
    loop = asyncio.get_running_loop()
    pending = list(reversed(batch.jobs))
    outcomes: List[Outcome] = []

    async def worker() -> None:
        while pending:
            job = pending.pop()
            proc = await loop.run_in_executor(pool, _popen_piped, job)
            outcomes.append(await _watched(loop, proc))

    await asyncio.gather(*(worker() for _ in range(batch.concurrency)))
    return outcomes


def _popen_piped(job: Job) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(job.script)],
        cwd=job.worktree,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None  # both are pipes
        os.set_blocking(stream.fileno(), False)
    return proc


async def _watched(loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes]) -> int:
    """The exit status of ``proc``, once it has exited and both its pipes are at their end."""
    ended: asyncio.Future[None] = loop.create_future()
    open_pipes = {stream.fileno(): stream for stream in (proc.stdout, proc.stderr) if stream}
    pidfd = os.pidfd_open(proc.pid)

    def drain(fd: int) -> None:
        if not os.read(fd, 65536):
            loop.remove_reader(fd)
            open_pipes.pop(fd).close()
            if not open_pipes and proc.returncode is not None:
                ended.set_result(None)

    def exited() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if not open_pipes:
            ended.set_result(None)

    for fd in open_pipes:
        loop.add_reader(fd, drain, fd)
    loop.add_reader(pidfd, exited)
    await ended
    return proc.returncode


RUNNERS: Dict[str, Runner] = {
    "executor": run_executor,
    "threadpool": run_threadpool,
    "xargs": run_xargs,
    "spawn": run_spawn_limit,
    "asyncio floor": run_asyncio_floor,
}
