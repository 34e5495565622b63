"""A worktree's setup step: run once per worktree and command, and reused while neither the
worktree's content nor the command changed.

The step runs as a script does (its own session, bounded output, a deadline, its whole tree
stopped), through ``/bin/sh -c`` at the worktree's root and nowhere else. A success is stamped
under the repository's git common dir, per worktree and command, with the worktree's content
digest, so a later run, or another pytest-xdist worker, skips the step; a file lock makes
concurrent runs of one worktree wait for each other instead of installing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Set,
    Tuple,
)

from ..core.config import FalsificationConfig
from ..finding.atomic import write_atomically
from ..finding.git import GitError, git_common_dir
from ..finding.state import common_dir, content_state, ignored_builds
from .events import LiveOutput
from .process import ProcessOutcome, run_script
from .runs import HypothesisRun
from .tree import Marker, ProcessTree
from .usage import ResourceSampler

logger = logging.getLogger(__name__)

#: The shell that runs a setup command, as ``/bin/sh -c COMMAND``.
SHELL = "/bin/sh"
#: The folder, under the git common dir, of the setup stamps and locks.
STAMP_FOLDER = Path("pytest-hypotheses") / "setup"
#: How often a run waiting for another's setup of the same worktree looks again, in seconds.
_LOCK_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class SetupOutcome:
    """What a setup step did: ``ran`` it, ``reused`` an earlier success, or ``failed`` (it
    exited non-zero, hit its deadline, or could not start); ``problem`` says why it failed."""

    command: str
    outcome: str
    exit_code: Optional[int]
    duration: float
    timeout: float
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    problem: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        """The outcome as results and reports carry it."""
        return asdict(self)


class Prepared(NamedTuple):
    """What preparing a run's worktree did: whether steps ran or were reused there (the code
    it holds is then looked at again), and the step outcome the run's result carries."""

    set_up: bool
    outcome: Optional[SetupOutcome]


class WorktreeSetups:
    """The setup steps of one run: each worktree and command at most once, one at a time,
    and every step of a worktree before any of its scripts (a step changes what they test).
    With ``records``, a folder the pytest-xdist workers of one session share, each step runs
    once in the session, whichever worker comes first: the others take its outcome."""

    def __init__(
        self,
        config: FalsificationConfig,
        marker_name: str,
        sampler: ResourceSampler,
        runs: Iterable[HypothesisRun] = (),
        records: Optional[Path] = None,
    ) -> None:
        self._config = config
        self._marker_name = marker_name
        #: Watches each step's tree, marked as a step's, so that the admission counts the
        #: CPUs it really wants (a step that waits on the network holds no CPU) without
        #: taking it for what the scripts will want.
        self._sampler = sampler
        self._records = records
        self._locks: Dict[Path, asyncio.Lock] = {}
        self._done: Dict[Tuple[Path, str], SetupOutcome] = {}
        #: The steps declared for each worktree: command and timeout, in the runs' order.
        self._declared: Dict[Path, Dict[str, float]] = {}
        for run in runs:
            steps = self._known_to(run)
            if steps and run.worktree is not None:
                self._declare(_root(run), steps)

    def _steps_at(self, run: HypothesisRun) -> Tuple[Optional[Path], Dict[str, float]]:
        """The run's worktree and every step declared for it, by the runs handed to the
        engine and by those the run was told of: command and timeout (the longest declared).
        No look at the worktree's path when no run has a step, as most have none."""
        steps = self._known_to(run)
        if not steps and not self._declared:
            return None, {}
        worktree = _root(run)
        return worktree, self._declare(worktree, steps)

    async def prepare(
        self,
        run: HypothesisRun,
        base_env: Mapping[str, str],
        on_start: Optional[Callable[[float, LiveOutput], None]] = None,
        *,
        stale_builds: bool = False,
    ) -> Prepared:
        """Run every setup step declared for the run's worktree that has not run yet, the
        run's own or another hypothesis's: the script would otherwise test the worktree while
        a step changes it. The outcome kept is a failed step's, the run's own first (the
        script must not run on a half-made worktree); else the run's own step's (shared by
        the hypotheses of that worktree); None when neither. ``on_start`` is handed each
        step's timeout and output if it runs. With ``stale_builds`` (the worktree's builds are
        older than their sources) an earlier success is not reused."""
        worktree, steps = self._steps_at(run)
        if worktree is None or not steps:
            return Prepared(False, None)
        async with self._locks.setdefault(worktree, asyncio.Lock()):
            for command, timeout in list(steps.items()):
                if (worktree, command) not in self._done:
                    started = None if on_start is None else functools.partial(on_start, timeout)
                    step = _Step(worktree, command, timeout, base_env, started, stale_builds)
                    self._done[worktree, command] = await self._set_up(step)
        own_command = self._own_step(run)
        own = None if own_command is None else self._done[worktree, own_command]
        if own is not None and own.problem is not None:
            return Prepared(True, own)
        failed = (self._done[worktree, c] for c in steps if self._done[worktree, c].problem)
        return Prepared(True, next(failed, own))

    def problem_of(self, run: HypothesisRun, outcome: SetupOutcome) -> str:
        """Why a failed step leaves the run's script unrun, saying when the step is not the
        run's own."""
        if outcome.command == self._own_step(run):
            return str(outcome.problem)
        return (
            f"{outcome.problem} (a step of another hypothesis of this worktree: the "
            "worktree's scripts run only once all of its steps succeed)"
        )

    def _own_step(self, run: HypothesisRun) -> Optional[str]:
        return run.setup or self._config.setup_command

    def _known_to(self, run: HypothesisRun) -> Dict[str, float]:
        """The steps the run itself knows of: its own, then its ``worktree_steps`` (a command
        of None there is the run-wide one), with the longest timeout declared for each."""
        own = self._own_step(run)
        own_step = [] if own is None else [(own, run.setup_timeout)]
        steps: Dict[str, float] = {}
        for command, timeout in [*own_step, *run.worktree_steps]:
            command = command or self._config.setup_command
            if command is not None:
                longest = max(timeout or self._config.setup_timeout, steps.get(command, 0.0))
                steps[command] = longest
        return steps

    def _declare(self, worktree: Path, steps: Mapping[str, float]) -> Dict[str, float]:
        """Add ``steps`` to the worktree's; a command keeps the longest timeout declared, so
        that no hypothesis's step has less time than it asked for, with or without xdist."""
        declared = self._declared.setdefault(worktree, {})
        for command, timeout in steps.items():
            declared[command] = max(timeout, declared.get(command, timeout))
        return declared

    async def _set_up(self, step: _Step) -> SetupOutcome:
        command, timeout = step.command, step.timeout
        try:
            stamp = await asyncio.to_thread(SetupStamp.of, step.worktree, command)
        except GitError as error:
            problem = f"{error}, where a setup step runs, so `{command}` did not run"
            return SetupOutcome(command, "failed", None, 0.0, timeout, problem=problem)
        try:
            async with stamp.locked():
                outcome = self._recorded(stamp)
                if outcome is None:
                    outcome = await self._run_unless_stamped(step, stamp)
                    self._record(stamp, outcome)
                return outcome
        except (GitError, OSError, ValueError) as error:
            problem = f"cannot check or stamp the worktree {step.worktree}: {error}"
            return SetupOutcome(command, "failed", None, 0.0, timeout, problem=problem)

    async def _run_unless_stamped(self, step: _Step, stamp: SetupStamp) -> SetupOutcome:
        """Reuse an earlier success with the same content, else run the step (and stamp it
        when it succeeds)."""
        state = await asyncio.to_thread(content_state, step.worktree)
        if not step.stale_builds and await asyncio.to_thread(stamp.matches, state):
            logger.info("setup of %s reused: %s", step.worktree, step.command)
            return SetupOutcome(step.command, "reused", 0, 0.0, step.timeout)
        await asyncio.to_thread(stamp.withdraw)
        outcome = await self._run(step)
        if outcome.problem is None:
            after, left = await asyncio.to_thread(_after_setup, step.worktree)
            stamp.write(after, left, outcome)
        return outcome

    def _recorded(self, stamp: SetupStamp) -> Optional[SetupOutcome]:
        """The outcome of the step that another worker of the session recorded, if any (read
        under the worktree's lock, so that a step never runs twice in a session: the files
        its scripts write meanwhile would make the stamp's content differ, and a second run
        would change the worktree under them)."""
        if self._records is None:
            return None
        path = self._records / stamp.path.name
        try:
            return SetupOutcome(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as error:  # the step runs again, as before
            logger.warning("cannot read the setup record %s: %s", path, error)
            return None

    def _record(self, stamp: SetupStamp, outcome: SetupOutcome) -> None:
        if self._records is None:
            return
        path = self._records / stamp.path.name
        try:
            write_atomically(path, json.dumps(outcome.as_dict()))
        except OSError as error:  # the others then run the step again: slower, not wrong
            logger.warning("cannot record the setup outcome in %s: %s", path, error)

    async def _run(self, step: _Step) -> SetupOutcome:
        marker = Marker(self._marker_name, f"setup:{step.worktree}")
        assert marker.value is not None
        env = {
            **step.base_env,
            "HYPOTHESIS_WORKTREE": str(step.worktree),
            marker.name: marker.value,
        }
        logger.info("setting up %s: %s", step.worktree, step.command)
        before = _folders(step.worktree)
        try:
            ran = await run_script(
                [SHELL, "-c", step.command],
                cwd=step.worktree,
                env=env,
                tree=ProcessTree(marker),
                timeout=step.timeout,
                grace=self._config.kill_grace,
                max_output_bytes=self._config.max_output_bytes,
                sampler=self._sampler,
                setup_step=True,
                on_start=step.on_start,
            )
        except asyncio.CancelledError:  # the run was interrupted: what it began is half made
            removed = _remove_new_folders(step.worktree, before)
            if removed:  # no result will carry it: the run's warnings tell it, one line per
                # worktree (made here: warnings of one message are told once, with a count)
                logger.warning(
                    f"the setup step of {step.worktree} was interrupted: the folders it had "
                    f"begun to make ({', '.join(removed)}) were removed, so that the next run "
                    "makes them afresh"
                )
            raise
        outcome = _outcome(step.command, step.timeout, ran)
        if not ran.timed_out:
            return outcome
        removed = await asyncio.to_thread(_remove_new_folders, step.worktree, before)
        if not removed:
            return outcome
        made = ", ".join(removed)
        return replace(
            outcome,
            problem=f"{outcome.problem}; the folders it had begun to make ({made}) were "
            "removed, so that the next run makes them afresh",
        )


@dataclass(frozen=True)
class _Step:
    """One setup step to run: where, what, for how long, in which environment, and who is
    told when it starts."""

    worktree: Path
    command: str
    timeout: float
    base_env: Mapping[str, str]
    on_start: Optional[Callable[[LiveOutput], None]]
    #: The worktree's builds are older than their sources, which its content digest cannot
    #: see (a checkout that gives unchanged files new times): the step runs again, since only
    #: it builds them.
    stale_builds: bool = False


#: Folders a step never had made, whatever a look says: the repository, the hypotheses.
_NEVER_REMOVED = frozenset({".git", ".falsification"})


def _folders(worktree: Path) -> Optional[Set[str]]:
    """The folders at the worktree's root; None when it cannot be read (then nothing is
    taken for new: a failed first look would make every folder look new)."""
    try:
        with os.scandir(worktree) as entries:
            return {entry.name for entry in entries if entry.is_dir(follow_symlinks=False)}
    except OSError:
        return None


def _remove_new_folders(worktree: Path, before: Optional[Set[str]]) -> List[str]:
    """Remove the folders at the worktree's root that a stopped step made (a half-made
    ``.venv`` whose ``bin/pip`` never came would make ``python -m venv .venv && .venv/bin/pip
    ...`` fail in every later run); the names removed. Files stay: a log may tell why."""
    after = _folders(worktree)
    if before is None or after is None:
        return []
    removed = sorted(after - before - _NEVER_REMOVED)
    for name in removed:
        shutil.rmtree(worktree / name, ignore_errors=True)
    return removed


def _root(run: HypothesisRun) -> Path:
    assert run.worktree is not None  # locate_script checked it
    return run.worktree.resolve()


def _outcome(command: str, timeout: float, ran: ProcessOutcome) -> SetupOutcome:
    problem = None
    if ran.spawn_error is not None:
        problem = f"`{command}` could not start: {ran.spawn_error.strerror}"
    elif ran.timed_out:
        problem = f"`{command}` exceeded its {timeout:g}s setup timeout and was stopped"
    elif ran.exit_code is None:
        problem = f"`{command}`'s exit status was lost: SIGCHLD is ignored in this process"
    elif ran.exit_code != 0:
        problem = f"`{command}` exited with status {ran.exit_code}"
    return SetupOutcome(
        command,
        "ran" if problem is None else "failed",
        None if ran.timed_out else ran.exit_code,
        ran.duration,
        timeout,
        ran.stdout.text(),
        ran.stderr.text(),
        ran.stdout.truncated,
        ran.stderr.truncated,
        problem,
    )


def _after_setup(worktree: Path) -> Tuple[str, List[str]]:
    """The worktree's content after a setup step, and the folders and builds it then holds
    that git ignores (the ``node_modules``, ``.venv`` or extension the step made, among
    others)."""
    return content_state(worktree), ignored_builds(worktree)


#: Changes when what a stamp records changes, so that a stamp of before is not trusted: the
#: builds it lists since format 2, one of which gone runs the step again.
STAMP_FORMAT = 2


@dataclass(frozen=True)
class SetupStamp:
    """The record of a worktree's last successful setup with one command, and the lock that
    one setup of that worktree at a time holds."""

    path: Path
    lock_path: Path
    worktree: Path
    command: str

    @classmethod
    def of(cls, worktree: Path, command: str) -> SetupStamp:
        """The stamp of ``worktree`` (the root of a git worktree, else GitError) and command."""
        folder = common_dir(worktree) / STAMP_FOLDER
        place = _digest(str(worktree))
        return cls(
            folder / f"{place}-{_digest(command)}.json",
            folder / f"{place}.lock",
            worktree,
            command,
        )

    @staticmethod
    def forget(repository: Path, worktree: Path) -> None:
        """Remove every stamp and the lock of a worktree that is gone (``clean`` removed it,
        or it was deleted by hand): they are kept in the git folder of ``repository`` (any
        path in it, a bare one's folder too), which outlives the worktree. Never raises:
        what cannot be removed is said, and only takes a little room."""
        try:
            folder = git_common_dir(repository) / STAMP_FOLDER
        except GitError as error:
            logger.warning("cannot find the setup stamps of %s: %s", worktree, error)
            return
        for place in {_digest(str(worktree)), _digest(str(worktree.resolve()))}:
            for stamp in folder.glob(f"{place}*"):  # its lock, and its stamp per command
                try:
                    stamp.unlink(missing_ok=True)
                except OSError as error:
                    logger.warning("cannot remove the setup stamp %s: %s", stamp, error)

    def matches(self, state: str) -> bool:
        """True if the last success was with this command in a worktree holding ``state``,
        and every folder and build git ignores that the worktree held then is still there: git
        does not see a ``node_modules``, a ``.venv`` or an extension built in place removed,
        and the scripts would run without it."""
        try:
            stamped = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False  # none yet, or unreadable: set up again
        expected = {
            "format": STAMP_FORMAT,
            "worktree": str(self.worktree),
            "command": self.command,
            "state": state,
        }
        if not isinstance(stamped, dict) or any(stamped.get(k) != v for k, v in expected.items()):
            return False
        left = stamped.get("left")
        return isinstance(left, list) and all(
            os.path.lexists(os.path.join(self.worktree, str(entry))) for entry in left
        )

    def withdraw(self) -> None:
        """Forget the last success before the step runs again: a step that then fails, or is
        stopped, may have half remade what that success had left (a ``.venv``), which would
        make the old stamp match again once the worktree is back as it was."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:  # the step still runs; the stamp it then writes replaces it
            logger.warning("cannot remove the setup stamp %s: %s", self.path, error)

    def write(self, state: str, left: List[str], outcome: SetupOutcome) -> None:
        """Record a success in a worktree now holding ``state``, and the ignored folders and
        builds ``left``."""
        record = {
            "format": STAMP_FORMAT,
            "worktree": str(self.worktree),
            "command": self.command,
            "state": state,
            "left": left,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "duration": outcome.duration,
        }
        write_atomically(self.path, json.dumps(record, indent=2))

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the worktree's setup lock, shared with other processes (pytest-xdist
        workers, other runs), waiting without blocking the event loop."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while not _try_lock(fd):
                await asyncio.sleep(_LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # closing the file releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
