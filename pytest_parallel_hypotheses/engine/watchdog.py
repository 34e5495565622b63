"""A watchdog process for each run: if the runner dies, it stops the run's scripts.

SIGKILL, the out-of-memory killer or a crash end the runner without any clean-up, and its
scripts, each in a session of its own, would live on. The watchdog holds the read end of a
pipe whose write end only the runner holds: the kernel closes that end when the runner dies,
however it dies, and the watchdog then stops every process that carries the run's marker. At
the normal end the runner says so before closing the pipe, and the watchdog leaves quietly. It
leads a session of its own, so that a Ctrl-C or a hang-up meant for the runner spares it.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from typing import Optional

from .tree import Marker, ProcessTree

#: What the runner writes before closing the pipe when the run ended normally.
_DISMISSED = b"done\n"
#: The watchdog's program: a shell that waits for the runner's word and, only if the pipe ends
#: without it, becomes Python to stop the run. A Python interpreter started for every run cost
#: 15-20 ms of CPU beside the scripts and made the run's end wait for it to start up, while
#: only a runner's death needs it. Arguments: the interpreter, its code, marker, grace.
_PROGRAM = 'IFS= read -r word; [ "$word" = done ] || exec "$0" -c "$1" "$2" "$3"'
_STOP_CODE = (
    f"import sys; from {__name__} import stop_run; stop_run(sys.argv[1], float(sys.argv[2]))"
)
#: The shell that runs the program.
_SHELL = "/bin/sh"
#: How long the runner waits for a dismissed watchdog to exit before killing it.
_EXIT_SECONDS = 5.0


class Watchdog:
    """The runner's side: starts the watchdog process, and dismisses it at the run's end."""

    def __init__(self, marker_name: str, grace: float) -> None:
        self._process: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
            [_SHELL, "-c", _PROGRAM, sys.executable, _STOP_CODE, marker_name, str(grace)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    async def dismiss(self) -> None:
        """Tell the watchdog the run ended and wait (off the loop) until it has left."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None  # a pipe
        with contextlib.suppress(OSError):  # it died already (killed by a script's pkill, the
            process.stdin.write(_DISMISSED)  # out-of-memory killer): nothing to tell
            process.stdin.flush()
        with contextlib.suppress(OSError):
            process.stdin.close()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, process.wait, _EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_run(marker_name: str, grace: float) -> None:
    """The runner died without dismissing us: stop every process of its run."""
    asyncio.run(ProcessTree(Marker(marker_name)).stop(grace))
