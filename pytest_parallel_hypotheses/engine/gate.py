"""Holding back new scripts while the consumer decides whether a result ends the run.

pytest's ``-x`` and ``--maxfail`` count what pytest reports as failed, after the plugin's hooks
and markers (a ``pytest_hypotheses_classify`` hook, an ``xfail``) have judged the engine's
result; the engine produces results sooner, so a worker freed by a failure would start the
next script before pytest could stop the run. A :class:`StartGate` shuts on each result that
may end the run and opens once the consumer has reported it without stopping: no script
starts in between, and the decision stays pytest's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable, Optional, Set, Tuple

from ..core.models import TestExecutionResult

#: How the gate names a result: its worktree and its hypothesis, unique in one run.
ResultKey = Tuple[str, str]

logger = logging.getLogger(__name__)


class StartGate:
    """Shut by each result for which ``may_stop`` holds, until the consumer says it has
    reported that result (:meth:`reported`). The engine binds it on its loop, shows it each
    result (:meth:`seen`) and waits for it before starting a script (:meth:`opened`); the
    consumer may call :meth:`reported` from any thread."""

    def __init__(self, may_stop: Callable[[TestExecutionResult], bool]) -> None:
        self._may_stop = may_stop
        self._deciding: Set[ResultKey] = set()
        self._open: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def bind(self) -> None:
        """Belong to the running loop, open."""
        self._loop = asyncio.get_running_loop()
        self._open = asyncio.Event()
        self._open.set()

    def seen(self, result: TestExecutionResult) -> None:
        """On the loop: shut if ``result`` may end the run."""
        assert self._open is not None  # bound before any result
        try:
            may_stop = self._may_stop(result)
        except Exception:  # a bug of the consumer's: let it decide, as for a stopping result
            logger.exception("cannot tell whether %s may end the run", result.hypothesis_id)
            may_stop = True
        if may_stop:
            self._deciding.add(_key(result))
            self._open.clear()

    def is_open(self) -> bool:
        return self._open is None or self._open.is_set()

    async def opened(self) -> None:
        """Return once no result awaits the consumer's decision."""
        if self._open is not None:
            await self._open.wait()

    def reported(self, result: TestExecutionResult) -> None:
        """From any thread: the consumer reported ``result`` and goes on."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the run is over, and its loop closed
            loop.call_soon_threadsafe(self._decided, _key(result))

    def _decided(self, key: ResultKey) -> None:
        self._deciding.discard(key)
        if not self._deciding and self._open is not None:
            self._open.set()


def _key(result: TestExecutionResult) -> ResultKey:
    return (result.worktree_path, result.hypothesis_id)
