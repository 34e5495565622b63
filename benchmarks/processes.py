"""Processes a benchmark left behind, found by a token in their command line.

Scripts of a workload that must not outlive their runner carry a unique token (a sleep
duration such as ``sleep 4.318207``), so survivors can be counted, and then killed so that
one runner's leftovers never burden the next.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from typing import List

import psutil


def unique_token(seconds: int) -> str:
    """A sleep duration of about ``seconds`` that no other process on the machine uses."""
    return f"{seconds}.{random.randrange(10**6):06d}"


def survivors(token: str) -> List[psutil.Process]:
    """Live (non-zombie) processes whose command line contains ``token``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if token in " ".join(proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def kill_survivors(token: str, patience: float = 5.0) -> None:
    """SIGKILL every process with ``token`` and wait (up to ``patience`` s) until none is left."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        procs = survivors(token)
        if not procs:
            return
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(procs, timeout=0.5)
