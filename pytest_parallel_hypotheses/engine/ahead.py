"""What each hypothesis's turn needs from the file system, found off the loop ahead of it.

Locating a script and looking at its worktree's code make system calls, and on the loop's
thread each one waits for the interpreter lock while other scripts start and end. One
thread makes them for every hypothesis in start order instead: a turn mostly finds its own
ready, and the first script waits for its own look only, not for every worktree's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

from ..finding.fingerprint import file_digest
from ..finding.layout import ScriptProblem, locate_script
from .imports import RunCode, WorktreeCode
from .runs import HypothesisRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Turn:
    """A hypothesis's script, or why it cannot run, the code its worktree tests, and the
    digest of the script's text (None: it could not be read, or nothing weighs it): ``auto``
    expects scripts of the same text, in other worktrees, to want the CPUs alike."""

    script: Union[Path, ScriptProblem]
    code: WorktreeCode
    kind: Optional[str] = None


class TurnsAhead:
    """The turns of one run's hypotheses, found in start order by :meth:`find`; with
    ``kinds``, the digest of each script's text too (a fixed number of workers has no use
    for it, and reading every script costs a few system calls each)."""

    def __init__(
        self,
        runs: Sequence[HypothesisRun],
        order: Sequence[int],
        base_env: Mapping[str, str],
        *,
        kinds: bool = True,
    ) -> None:
        self.code = RunCode(base_env)
        self._runs = runs
        self._kinds = kinds
        self._turns: Dict[int, Future[Turn]] = {}
        for index in order:
            turn: Future[Turn] = Future()
            turn.set_running_or_notify_cancel()  # a waiter that gives up cannot cancel it
            self._turns[index] = turn
        self._stopped = threading.Event()

    def find(self) -> None:
        """Read the development installs, then find each turn in start order, until all
        are found or :meth:`stop` is called. Run it in a thread of its own. A turn that
        cannot be found holds the error, for its hypothesis's result; whatever ends the
        search, no turn is left for a worker to wait for for ever."""
        try:
            self._find_all()
        except Exception as error:  # a bug of ours: each turn not found yet says so
            logger.exception("cannot find the hypotheses' turns")
            self._fail_unfound(error)
        finally:
            self._fail_unfound(RuntimeError("the run stopped before this turn was found"))

    def _find_all(self) -> None:
        worktrees = [self._runs[index].worktree for index in self._turns]
        self.code.read_installs(tree for tree in worktrees if tree is not None)
        for index, turn in self._turns.items():
            if self._stopped.is_set():
                return
            try:
                turn.set_result(self._find(self._runs[index]))
            except Exception as error:  # a bug of ours: that hypothesis's result says so
                turn.set_exception(error)

    def _fail_unfound(self, error: BaseException) -> None:
        for turn in self._turns.values():
            if not turn.done():
                turn.set_exception(error)

    def _find(self, run: HypothesisRun) -> Turn:
        try:
            script = locate_script(run.worktree, run.hypothesis.id)
        except ScriptProblem as problem:
            return Turn(problem, WorktreeCode())
        assert run.worktree is not None  # locate_script checked it
        kind = file_digest(script) if self._kinds else None
        return Turn(script, self.code.look_at(run.worktree), kind)

    async def turn(self, index: int) -> Turn:
        """The turn of the run at ``index``, once found."""
        turn = self._turns[index]
        return turn.result() if turn.done() else await asyncio.wrap_future(turn)

    def stop(self) -> None:
        """Find no more turns: the run starts no more scripts."""
        self._stopped.set()
