"""When the next script may start: exactly N at a time, or as many as the machine holds.

CPU-bound scripts started beyond the CPU count only slow each other down until they hit their
deadlines; sleeping or waiting scripts leave the CPUs idle, and holding them back only makes a
run longer. :class:`FixedAdmission` is a number N given by the user; :class:`AdaptiveAdmission`
is ``auto``: the usable CPUs (the first script alone until a look shows room, fewer once the
scripts are seen to want several CPUs each), then more while the CPUs hold their expected
demand, none while free memory is below a floor, and always at least one.

What a script not started yet will want is not known before it runs; :class:`ScriptDemands`
expects of it what the scripts of its text wanted in this run, or, for a text not seen yet,
what the texts looked at so far wanted, each counted once, over its scripts' whole runs. An
average over the running scripts instead takes the sleepers that pile up beside CPU-bound
ones for a promise of idle CPUs, and starts several CPU-bound scripts at once on a crowded
machine. The average says how many more fit; the typical script (the median)
says whether one more fits in a CPU left idle, so that a single script that kept two CPUs busy
does not hold the rest of the run to one script at a time.

A script known from an earlier run to keep several CPUs busy (``pytest -n 2`` spends its first
second importing in one process, and looks like a one-CPU script until then) starts only
when the CPUs hold what it wants beside what the running scripts want; one known to be idle
(it slept, or waited on the network) starts whenever the CPUs are not beyond their count,
passing the scripts that wait for them. A script of a text seen in this run is known so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Deque,
    Dict,
    FrozenSet,
    Hashable,
    Iterable,
    List,
    Mapping,
    Optional,
    Protocol,
    Set,
    Tuple,
)

from ..core.config import FalsificationConfig
from ..core.sizes import format_size, format_sizes
from . import machine
from .tasks import stop_task
from .usage import TreeLook

logger = logging.getLogger(__name__)

#: A waiting slot, the CPUs its script is known to want (None: not known), the digest of
#: the script's text (None: not read), and the task that holds the slot.
Waiter = Tuple[
    "asyncio.Future[None]", Optional[float], Optional[str], Optional["asyncio.Task[Any]"]
]

#: Seconds between two looks at the scripts' demand while scripts wait to start.
TICK_SECONDS = 0.02
#: Seconds between two looks until the run knows what a script wants (one was judged, or
#: ended): the first script starts alone and the rest wait for those looks, so they come
#: twice as often; the first still catches the script's shell being started.
FIRST_TICK_SECONDS = TICK_SECONDS / 2
#: The least time between two looks: one follows a script's end at once (its CPU is free for
#: the next), but scripts that end a few milliseconds apart must not keep a thread looking.
SOONEST_LOOK_SECONDS = TICK_SECONDS / 2
#: How many looks a script's demand is the most of, a second's worth: a CPU-bound script wants
#: less for a while now and then (its shell between two commands, a test suite reading files
#: or sleeping in a test: ``python -m unittest`` on a real project slept 0.3 s a few tenths of
#: a second in), and one look, or an average, would take that dip for room, which the scripts
#: then started beyond the CPU count never give back.
DEMAND_WINDOW = 50
#: A tree's demand is the most of its last looks only while at least this share of them found
#: it busy: a script that was busy only as it started (an interpreter loading its modules,
#: then waiting on the network) does not hold a CPU for a second. Through a pyenv shim,
#: 100 Python scripts that each slept 1 s ran two at a time, and took 40 s.
HOLDING_SHARE = 1 / 3
#: How many looks a script takes before what it wants counts for the scripts not started yet:
#: the first, which may catch its shell being started, and one more.
JUDGING_LOOKS = 2
#: How far the scripts' expected demand may pass the usable CPUs when one more starts beyond
#: their count: a tenth of a CPU. Where the run's scripts mostly sleep, a few start beside
#: CPU-bound scripts that keep every CPU busy; where one in five wants a CPU, none does: a
#: CPU-bound script started on busy CPUs slows every other one towards its deadline.
OVERCOMMIT_CPUS = 0.1
#: The least CPU a script not started yet is expected to use, so that sleeping scripts never
#: make the estimate of how many more fit infinite.
MIN_DEMAND_CPUS = 0.02
#: How long a script known to want several CPUs counts as wanting them whatever the looks show:
#: a test runner imports in one process for a second or so before its workers start.
STARTING_SECONDS = 2.0
#: A script known from an earlier run to want at most this many CPUs is idle (it slept, or
#: waited on the network): it starts whenever the CPUs are not beyond their count, passing
#: the scripts that wait for CPUs, whose CPUs it does not take.
IDLE_CPUS = 0.1
#: A script known to want at most this many CPUs (it computes a little, then waits) may start
#: in the room a look found for any script: let in only where one more whole CPU fits, sixty
#: scripts of one text that each computed 0.2 s and slept 0.8 s took 26 s instead of 20 s.
LIGHT_CPUS = 0.5
#: The default floor of free memory: this share of the machine's memory.
MEMFREE_SHARE = 0.05


class Demand(Protocol):
    """What the running scripts want of the CPUs (the run's resource sampler)."""

    @property
    def scripts_finished(self) -> int:
        """How many scripts have run to their end (a slot whose script could not start, or
        whose setup step failed, ran none)."""

    def runnable(self) -> Mapping[Hashable, TreeLook]:
        """Each running tree (a script's or a setup step's, started and not finished; by a
        key of its own): how many of its processes run or wait for a CPU now. Called in a
        worker thread: walking the trees through ``/proc`` takes milliseconds for large
        ones, which on the loop would delay the deadlines and the output of every script."""


class Admission(Protocol):
    """Decides how many workers the run needs and when each may start its next script."""

    #: Whether the kind of a script's text counts (then each script's text is digested).
    weighs_kinds: bool

    def workers(self, waiting: int) -> int:
        """How many workers to start for ``waiting`` runnable hypotheses."""

    def slot(
        self, wants: Optional[float] = None, kind: Optional[str] = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while one script of one worker runs, known to want ``wants`` CPUs (None: not
        known), its text of the ``kind`` given (a digest; None: not read)."""

    async def resume(self, wants: Optional[float] = None, kind: Optional[str] = None) -> None:
        """Inside a slot that waited for a worktree's setup step, or whose script is to run
        again: return when its script could start now, as if the slot were taken again
        (first in line)."""

    async def rerun(self) -> None:
        """Inside a slot whose script ran short of CPUs and is to run again: return when it
        can run alone, no other script of the run beside it, first in line; none starts
        beside it until :meth:`rejoin`."""

    def rejoin(self) -> None:
        """The attempt that ran alone (:meth:`rerun`) has ended: the slot's next attempts,
        if any, share the CPUs as any script does."""

    def ran_short(self, demand: float, kind: Optional[str] = None) -> None:
        """A script (its text of the ``kind`` given) timed out, failed or passed short of CPUs,
        wanting ``demand`` CPUs: what it wanted counts for the scripts not started yet,
        looked at or not."""

    async def aclose(self) -> None:
        """Stop whatever watches the machine."""


def admission_for(config: FalsificationConfig, demand: Demand) -> Admission:
    """``max_concurrent_tests`` at a time, or, when adaptive, that many at most, as the
    scripts' ``demand`` and what each is known to want allow."""
    if config.adaptive_concurrency:
        plan = plan_adaptive(config.max_concurrent_tests, config.memory_free_floor)
        return AdaptiveAdmission(plan, demand)
    return FixedAdmission(config.max_concurrent_tests)


class FixedAdmission:
    """Exactly ``limit`` scripts at a time: one per worker, so a slot costs nothing."""

    weighs_kinds = False

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def workers(self, waiting: int) -> int:
        return min(self.limit, waiting)

    @contextlib.asynccontextmanager
    async def slot(
        self, wants: Optional[float] = None, kind: Optional[str] = None
    ) -> AsyncIterator[None]:
        yield

    async def resume(self, wants: Optional[float] = None, kind: Optional[str] = None) -> None:
        return None

    async def rerun(self) -> None:
        return None  # N means N: no script runs again short of CPUs

    def rejoin(self) -> None:
        return None

    def ran_short(self, demand: float, kind: Optional[str] = None) -> None:
        return None  # N means N

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class AdaptivePlan:
    """What ``auto`` chose, for the header and the JSON report."""

    cpus: machine.UsableCpus
    ceiling: int
    memfree: int

    def describe(self) -> str:
        if self.ceiling <= self.cpus.count:  # none beyond the CPUs, perhaps fewer
            joint = ", but" if self.ceiling < self.cpus.count else ";"
            chosen = f"{self.ceiling} ({self.cpus.reason}{joint} {self._limit()} allows no more)"
        else:
            chosen = (
                f"{self.cpus.count} ({self.cpus.reason}), more while the CPUs hold them up to "
                f"{self.ceiling}{self._ceiling_reason()}"
            )
        return (
            f"workers auto: {chosen}, none while free memory is below {format_size(self.memfree)}"
        )

    def _limit(self) -> str:
        """What set the ceiling, in words."""
        return "the open-files limit" if self._ceiling_reason() else "the ceiling it was given"

    def _ceiling_reason(self) -> str:
        """Why the ceiling is that number, when the machine set it (the API's caller may)."""
        return " (the open-files limit)" if self.ceiling == machine.open_files_ceiling() else ""


def plan_adaptive(ceiling: int, memfree: Optional[int]) -> AdaptivePlan:
    """The plan of ``auto`` on this machine: ``memfree`` None takes the default floor."""
    return AdaptivePlan(
        machine.usable_cpus(), ceiling, default_memfree() if memfree is None else memfree
    )


def default_memfree() -> int:
    """The default floor of free memory: :data:`MEMFREE_SHARE` of the machine's memory."""
    total = machine.total_memory()
    return 0 if total is None else int(total * MEMFREE_SHARE)


class AdaptiveAdmission:
    """``auto``: up to the usable CPUs at once, fewer where a script is expected to want
    several (:func:`base_count`), the first alone until a look shows room or a script ends;
    beyond that as many more as the CPUs hold at the demand expected of a script (see
    :class:`ScriptDemands` and :func:`extra_room`); none while free memory is below the
    floor; never more than the ceiling; at least one.

    ``demand`` tells how many processes of each running tree (a script's, or a worktree's
    setup step's) run or wait for a CPU right now: the CPUs the scripts want, which the load
    of other processes on the machine does not change (a slot whose script has not started
    yet counts as one). It and the free memory are read once per tick (:data:`TICK_SECONDS`,
    :data:`FIRST_TICK_SECONDS` until the run knows what a script wants), only
    while scripts wait, never per script. A slot that waited for a setup step starts its
    script only once the CPUs hold it (:meth:`resume`).
    """

    weighs_kinds = True

    def __init__(self, plan: AdaptivePlan, demand: Demand) -> None:
        self.plan = plan
        self.running = 0
        self._demand = demand
        #: The CPUs the running trees wanted at the last look, and the scripts started since.
        self._busy = 0
        self._since_look = 0
        #: For each script known to want several CPUs started in the last
        #: :data:`STARTING_SECONDS`: until when, and the CPUs it wants beyond the one a look
        #: shows while it starts.
        self._reserved: Deque[Tuple[float, float]] = deque()
        #: The CPUs each running script known to want several wants, and the kind of its
        #: text, by the task holding its slot: it takes the room of as many scripts, also
        #: once the looks show it.
        self._several_running: Dict[Optional[asyncio.Task[Any]], Tuple[float, Optional[str]]]
        self._several_running = {}
        #: Alone until a look shows room or a script ends: one script per CPU, started before
        #: anything is known of them, would share the CPUs for their whole runs if each
        #: wants several.
        self._base = 1
        #: What the typical script wants, as the base was counted with.
        self._typical = 1.0
        self._known = False
        #: Once a script timed out short of CPUs: no more at once than the CPUs hold.
        self._careful = False
        self._extra = 0
        self._demands = ScriptDemands()
        self._available: Optional[int] = None
        self._memory_read_at = 0.0
        self._memory_low = False
        self._told_memory_low = False
        self._check_memory()
        #: The waiting slots, in their order; those whose scripts are known to be idle wait
        #: apart, so that a script waiting for the CPUs does not hold them back.
        self._waiters: Deque[Waiter] = deque()
        self._idle_waiters: Deque[Waiter] = deque()
        self._ticker: Optional[asyncio.Task[None]] = None
        #: The kinds known to be idle at the last look, whose waiting slots were set apart.
        self._idle_kinds: FrozenSet[str] = frozenset()
        #: Done when a script ends, while the looks pause.
        self._ended: Optional[asyncio.Future[None]] = None
        #: The slots whose scripts are to run again alone, waiting first in line, and those
        #: running so (no other starts beside them).
        self._rerun_waiters: Deque[Tuple[asyncio.Future[None], Optional[asyncio.Task[Any]]]]
        self._rerun_waiters = deque()
        self._alone: Set[Optional[asyncio.Task[Any]]] = set()

    def workers(self, waiting: int) -> int:
        return min(self.plan.ceiling, waiting)

    @contextlib.asynccontextmanager
    async def slot(
        self, wants: Optional[float] = None, kind: Optional[str] = None
    ) -> AsyncIterator[None]:
        await self._acquire(wants, kind)
        try:
            yield
        finally:
            self.running -= 1
            self._several_running.pop(asyncio.current_task(), None)
            self._alone.discard(asyncio.current_task())
            self._learn()
            self._grant()
            if self._ended is not None:
                _wake(self._ended)

    async def resume(self, wants: Optional[float] = None, kind: Optional[str] = None) -> None:
        """The slot was let in for what the CPUs held before its worktree's setup step, and
        a step that waits (on the network) wants no CPU: many slots get in beside such steps,
        and their scripts would all start when the steps end. So the script waits, first in
        line, until the CPUs hold it now."""
        self.running -= 1
        self._several_running.pop(asyncio.current_task(), None)
        try:
            await self._acquire(wants, kind, first=True)
        except asyncio.CancelledError:
            self.running += 1  # the slot's own exit gives it back
            raise

    async def rerun(self) -> None:
        """Its first attempt waited for CPUs that the run's looks said were there: other work
        on the machine, or scripts that want more than they seemed to. Beside the run's other
        scripts a second attempt would wait as the first did (a trial's two test suites, run
        again together, timed out together again), so it runs alone."""
        holder = asyncio.current_task()
        self.running -= 1
        self._several_running.pop(holder, None)
        waiter = asyncio.get_running_loop().create_future()
        self._rerun_waiters.append((waiter, holder))
        self._grant()
        if not waiter.done() and (self._ticker is None or self._ticker.done()):
            self._ticker = asyncio.ensure_future(self._watch())
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._alone.discard(holder)  # granted as it was cancelled
                self._grant()
            else:
                self.running += 1  # the slot's own exit gives it back
                with contextlib.suppress(ValueError):
                    self._rerun_waiters.remove((waiter, holder))
            raise

    def rejoin(self) -> None:
        self._alone.discard(asyncio.current_task())
        self._grant()

    def ran_short(self, demand: float, kind: Optional[str] = None) -> None:
        """The run's scripts are not as idle as their looks said (a script that sleeps or
        reads before it computes looks idle at its start): from now on, no more start than
        the CPUs hold at the demand expected of a script, a whole CPU at least; and the
        scripts of its text are expected to want what it did, not what its looks said."""
        self._careful = True
        self._extra = 0  # the room the last look found was the illusion
        self._demands.ended_with(demand, kind)
        self._learn()

    async def _acquire(
        self, known: Optional[float], kind: Optional[str], first: bool = False
    ) -> None:
        if time.monotonic() - self._memory_read_at > TICK_SECONDS:  # the looks read it only
            self._check_memory()  # while workers wait
        wants = self._wants(known, kind)
        queue = self._idle_waiters if self._idle(wants) else self._waiters
        holder = asyncio.current_task()
        if (first or not queue) and self._may_start(wants):
            self._started(wants, kind, holder)
            return
        waiter = asyncio.get_running_loop().create_future()
        entry: Waiter = (waiter, known, kind, holder)
        if first:
            queue.appendleft(entry)
        else:
            queue.append(entry)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._watch())
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # granted as it was cancelled
                self.running -= 1
                self._several_running.pop(holder, None)
                self._grant()
            for waiters in (self._waiters, self._idle_waiters):  # it may have moved
                with contextlib.suppress(ValueError):
                    waiters.remove(entry)
            raise

    def _wants(self, known: Optional[float], kind: Optional[str]) -> Optional[float]:
        """The CPUs a script wants: as known from an earlier run, else as the scripts of the
        same text in this run wanted, once one was looked at twice (None: not known)."""
        return known if known is not None else self._demands.of_kind(kind)

    def _started(
        self, wants: Optional[float], kind: Optional[str], holder: Optional[asyncio.Task[Any]]
    ) -> None:
        self.running += 1
        self._since_look += 1
        several = self._several(wants)
        if several:
            self._reserved.append((time.monotonic() + STARTING_SECONDS, several - 1))
            self._several_running[holder] = (several, kind)

    def _may_start(self, wants: Optional[float]) -> bool:
        """Whether one more script may start now, known to want ``wants`` CPUs (None: not
        known)."""
        if self._alone or self._rerun_waiters:  # a script runs again alone, or waits to
            return False
        if self.running == 0:
            return True
        if self._memory_low:
            self._tell_memory_low()
            return False
        if self.running >= self.plan.ceiling:
            return False
        if wants is not None:
            return self._holds(wants)
        return self._counted_in()

    def _counted_in(self) -> bool:
        """Whether a script not known to the run may start: one of the first it may start
        without a look (:func:`base_count`), or in the room the last look found."""
        if self._scripts_running() < self._base:
            return True
        if self._extra > 0:
            self._extra -= 1
            return True
        return False

    def _holds(self, wants: float) -> bool:
        """Whether the CPUs hold a script known to want ``wants`` CPUs (all of them at most)
        beside what the running trees want (:meth:`_wanted_now`), each script started since
        the last look as one CPU: the sleepers among the run's scripts promise room that a
        script known to keep a CPU busy does not fit in. A script known to be idle goes by the
        last look alone (what a script known to want several CPUs takes back later takes
        nothing from it). A script known to want one CPU at most may also be one of the first
        to start after a script ended (a look would only show that CPU free); one known to
        want :data:`LIGHT_CPUS` at most may also start in the room the last look found, where
        the rule above, which counts each script started since as a whole CPU, lets one in a
        look. Once a script ran short of CPUs the looks are known to mislead, and a script
        not idle must pass those rules."""
        if self._idle(wants):
            return self._fits(wants, self._busy) or self._counted_in()
        if self._careful and not self._counted_in():
            return False
        if self._fits(min(wants, self.plan.cpus.count), self._wanted_now()):
            return True
        if self._careful or self._several(wants):
            return False
        return self._scripts_running() < self._base or (wants <= LIGHT_CPUS and self._counted_in())

    def _scripts_running(self) -> int:
        """The scripts running, in the typical scripts the base counts: one known to want
        several CPUs as many as it takes the CPUs of. The first scripts that start after one
        ended, without a look, must not crowd one that takes the CPUs of two (a look would
        show it busy, but they do not ask)."""
        beyond = sum(
            math.ceil(several / self._typical - 1e-9) - 1
            for several, _kind in self._several_running.values()
        )
        return self.running + max(0, beyond)

    @staticmethod
    def _idle(wants: Optional[float]) -> bool:
        """Whether a script known to want ``wants`` CPUs is known to be idle."""
        return wants is not None and wants <= IDLE_CPUS

    def _fits(self, wants: float, busy: float) -> bool:
        """Whether the CPUs hold ``wants`` more beside the running trees wanting ``busy``
        and each script started since the last look as one."""
        return busy + self._since_look + wants <= self.plan.cpus.count + OVERCOMMIT_CPUS

    def _wanted_now(self) -> float:
        """What the running trees want: as the last look found, with what each script known
        to want several CPUs wants beyond what the look showed of it, by the kind of its text
        (a script of no known kind counts alone, at the least); or, for those started lately,
        beyond the one process that shows as they start. A test runner with workers keeps one
        process busy for a second or more between its phases (collecting, the summary): a
        look then finds free a CPU that it takes back. In a new-user trial, a one-CPU suite
        started in such a dip on 2 CPUs, and the suite of four workers took 14 s instead of
        8 s."""
        wanted: Dict[Optional[str], float] = {}
        for several, kind in self._several_running.values():
            wanted[kind] = wanted.get(kind, 0.0) + several
        beyond = sum(
            max(0.0, want - self._demands.now_of(kind))
            for kind, want in wanted.items()
            if kind is not None
        )
        unknown = wanted.get(None, 0.0)
        return max(self._busy + self._reserved_cpus(), self._busy + beyond, unknown)

    def _several(self, wants: Optional[float]) -> float:
        """The CPUs a script known to want more than one wants, all of them at most; 0 for
        any other script."""
        if wants is None or wants <= 1 + OVERCOMMIT_CPUS:
            return 0.0
        return min(wants, self.plan.cpus.count)

    def _reserved_cpus(self) -> float:
        """What the scripts known to want several CPUs, started in the last
        :data:`STARTING_SECONDS`, want beyond the one CPU a look at them shows."""
        now = time.monotonic()
        while self._reserved and self._reserved[0][0] <= now:
            self._reserved.popleft()
        return sum(extra for _, extra in self._reserved)

    def _learn(self) -> None:
        """Once a script ran to its end or was judged, as many start without a look as the
        CPUs hold at the demand expected of a script (:func:`base_count`). A script that ends
        before any judging is short: one per CPU, as for a script of unknown demand."""
        self._known = self._known or self._demand.scripts_finished > 0 or self._demands.judged_any
        if self._careful:
            self._typical = max(1.0, self._demands.typical())
        elif self._known:
            self._typical = self._demands.typical()
        if self._careful or self._known:
            self._base = base_count(self._typical, self.plan.cpus.count)

    def _check_memory(self) -> None:
        """Read the free memory against the floor."""
        self._memory_read_at = time.monotonic()
        self._available = machine.available_memory()
        self._memory_low = self._available is not None and self._available < self.plan.memfree

    def _tell_memory_low(self) -> None:
        """Say so the first time the free memory holds a script back: in the live status, a
        script that waits for memory looks like one that waits for a CPU."""
        if not self._told_memory_low:
            self._told_memory_low = True
            logger.warning(
                "free memory (%s) is below the floor of %s: no more scripts start until it "
                "rises, but one always runs",
                *format_sizes(self._available or 0, self.plan.memfree),
            )

    def _grant(self) -> None:
        """Start a script that runs again alone once none runs; else waiting workers, in
        their order, while the rules allow; then those whose scripts are known to be idle,
        whatever waits before them."""
        while self._rerun_waiters and self._rerun_waiters[0][0].done():  # cancelled
            self._rerun_waiters.popleft()
        if self._rerun_waiters:
            if self.running == 0:
                waiter, holder = self._rerun_waiters.popleft()
                self.running += 1
                self._alone.add(holder)
                waiter.set_result(None)
            return
        for queue in (self._waiters, self._idle_waiters):
            while queue:
                waiter, known, kind, holder = queue[0]
                if waiter.done():  # cancelled
                    queue.popleft()
                    continue
                wants = self._wants(known, kind)
                if not self._may_start(wants):
                    break
                queue.popleft()
                self._started(wants, kind, holder)
                waiter.set_result(None)

    def _set_apart_idle(self) -> None:
        """Move the waiting slots whose scripts are now known to be idle (as the scripts of
        the same text were seen to be) to the idle ones' queue, in their order: once per
        text seen idle, not at every look (a slot that comes later goes there at once)."""
        idle = self._demands.idle_kinds()
        known, self._idle_kinds = self._idle_kinds, idle
        if idle <= known:
            return
        waiting: Deque[Waiter] = deque()
        for waiter in self._waiters:
            queue = self._idle_waiters if self._idle(self._wants(*waiter[1:3])) else waiting
            queue.append(waiter)
        self._waiters = waiting

    async def _watch(self) -> None:
        """While workers wait: look at the scripts' demand and the memory, admit what fits."""
        failed = False
        while self._waiters or self._idle_waiters or self._rerun_waiters:
            await self._pause()
            try:
                self._check_memory()
                runnable = await asyncio.to_thread(self._demand.runnable)
                starting = self._starting(len(runnable))
                busy = self._demands.look(runnable, unseen=starting) + starting
                self._busy, self._since_look = busy, 0
                self._learn()
                self._set_apart_idle()
                self._extra = 0 if self._careful else self._room(self._wanted_now())
            except Exception:  # a bug of ours: admit by the CPU count alone, never stall
                if not failed:
                    logger.exception("cannot read the scripts' demand: no more than the CPUs")
                failed, self._base, self._extra = True, self.plan.cpus.count, 0
            try:
                self._grant()
            except Exception as error:  # a bug of ours: the waiting slots must not hang
                self._fail_waiters(error)  # their workers log it and stop the run
        self._extra = 0

    async def _pause(self) -> None:
        """Wait for the next look: a tick after the last, or as soon as a script ends, but
        :data:`SOONEST_LOOK_SECONDS` after the last at the soonest. The CPU a script leaves
        is seen free at once, not up to a tick later: a run of scripts that each keep a CPU
        busy for half a second waited a tenth of its length for looks."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        ended = self._ended = loop.create_future()
        tick = loop.call_later(TICK_SECONDS if self._known else FIRST_TICK_SECONDS, _wake, ended)
        try:
            await ended
        finally:
            tick.cancel()
            self._ended = None
        await asyncio.sleep(max(0.0, last + SOONEST_LOOK_SECONDS - loop.time()))

    def _fail_waiters(self, error: Exception) -> None:
        """Raise ``error`` in every waiting slot (which ends the looks: none waits)."""
        waiting = [entry[0] for queue in (self._waiters, self._idle_waiters) for entry in queue]
        waiting += [waiter for waiter, _holder in self._rerun_waiters]
        for queue in (self._waiters, self._idle_waiters, self._rerun_waiters):
            queue.clear()
        for waiter in waiting:
            if not waiter.done():
                waiter.set_exception(error)

    def _room(self, busy: float) -> int:
        """How many more start now, the running trees wanting ``busy`` CPUs."""
        demands, cpus = self._demands, self.plan.cpus.count
        return extra_room(busy, demands.expected(), cpus, typical=demands.typical())

    def _starting(self, watched: int) -> int:
        """The slots with no tree running (starting, or waiting for another slot's setup step
        of their worktree), each counted as one CPU: starting a script is CPU work, and
        counting it as idle would admit without bound while the starts catch up.
        Counted now, not over the last looks: once started, a script shows its own demand."""
        return max(0, self.running - watched)

    async def aclose(self) -> None:
        """Stop looking at the machine."""
        ticker, self._ticker = self._ticker, None
        await stop_task(ticker)


def _wake(pause: asyncio.Future[None]) -> None:
    """End a pause of the looks, if it has not ended."""
    if not pause.done():
        pause.set_result(None)


class ScriptDemands:
    """What each running tree wants of the CPUs now (the most of its last
    :data:`DEMAND_WINDOW` looks), and what each script of the run wanted over its whole run
    (the mean of its looks after the first), once seen: looked at :data:`JUDGING_LOOKS`
    times.

    A script's text tells what it will want: hypotheses often run the same command, each in
    its own worktree, and one sleeper seen tells that the others of its text (its kind) will
    sleep too. So a script is expected to want what the scripts of its kind seen so far
    wanted (:meth:`of_kind`); one of a kind not seen yet, what the kinds seen wanted, each
    counted once (:meth:`expected`): fifty sleepers of one text, set apart, must not make the
    scripts left look idle. A setup step's tree counts in what the running trees want, and
    tells nothing; a script's known from an earlier run tells only of its kind (see
    :class:`~.usage.TreeLook`)."""

    def __init__(self) -> None:
        self._trees: Dict[Hashable, _Tree] = {}
        #: What each script that ended after it was seen wanted over its run.
        self._ended: List[_Seen] = []
        #: The slots let in with no tree running at the last look (a script being spawned, one
        #: waiting for another slot's setup step of its worktree, one that has just ended).
        self._unseen = 0
        #: What the scripts of each kind wanted, as of the last look; and the most a script of
        #: each kind that ran short of CPUs wanted, which its kind wants at least.
        self._kinds: Dict[str, float] = {}
        self._starved: Dict[str, float] = {}

    def look(self, trees: Mapping[Hashable, TreeLook], unseen: int = 0) -> int:
        """Take one look at the running trees (those missing have ended), ``unseen`` scripts
        let in showing no tree yet, and return the CPUs the trees want now. A tree that
        ended stops counting at once: the next look after a CPU-bound script ends finds its
        CPU free."""
        self._unseen = unseen
        for key in self._trees.keys() - trees.keys():
            ended = self._trees.pop(key)
            if ended.seen:
                self._ended.append(ended.as_seen())
        for key, tree in trees.items():
            self._trees.setdefault(key, _Tree(tree.tells, tree.kind)).add(tree.runnable)
        self._kinds = self._by_kind()
        return sum(tree.now for tree in self._trees.values())

    def now_of(self, kind: str) -> int:
        """What the running trees of scripts of ``kind`` want now, as the last look found."""
        return sum(tree.now for tree in self._trees.values() if tree.kind == kind)

    def ended_with(self, demand: float, kind: Optional[str] = None) -> None:
        """A script of ``kind`` ended wanting ``demand`` CPUs over its run, seen by other
        means than the looks."""
        self._ended.append(_Seen(kind, True, demand))
        if kind is not None:
            self._starved[kind] = max(demand, self._starved.get(kind, 0.0))
        self._kinds = self._by_kind()

    def of_kind(self, kind: Optional[str]) -> Optional[float]:
        """What the scripts of ``kind`` wanted as of the last look (None: none seen)."""
        return None if kind is None else self._kinds.get(kind)

    def idle_kinds(self) -> FrozenSet[str]:
        """The kinds whose scripts are known to be idle."""
        return frozenset(kind for kind, demand in self._kinds.items() if demand <= IDLE_CPUS)

    def expected(self) -> float:
        """What a script of a kind not seen yet is expected to want: the mean of what the
        judged kinds wanted, running or ended; a whole CPU before any was judged. One look
        does not judge: a CPU-bound script caught between two commands at its first look must
        not make every script left look idle. But a script busy at its first look counts as
        wanting one CPU until it is judged: a sleeper judged first, beside CPU-bound
        scripts just started, must not make every script left look idle either (a new-user
        trial saw a run start all its test suites at once); nor may one judged before the
        scripts let in beside it show at all, so those count as one CPU each too. A script's
        whole run counts, not its last looks: a CPU-bound script that ends with a pause (a
        teardown, an upload) is not taken for a sleeper."""
        return self._summary(statistics.fmean)

    def typical(self) -> float:
        """What the typical judged kind wanted (the median), with :meth:`expected`'s
        defaults: one script that kept several CPUs busy among many that kept one moves the
        mean, not the median."""
        return self._summary(statistics.median)

    def _summary(self, summarise: Callable[[List[float]], float]) -> float:
        judged = _by_kind(seen for seen in self._seen() if seen.tells)
        wanted = [statistics.fmean(demands) for demands in judged.values()]
        wanted += [1.0 for tree in self._trees.values() if tree.busy_before_judged]
        wanted += [1.0] * self._unseen
        return max(summarise(wanted), MIN_DEMAND_CPUS) if wanted else 1.0

    def _by_kind(self) -> Dict[str, float]:
        """What the scripts seen of each kind wanted: their mean, and what one that ran
        short of CPUs wanted at least (its looks, asleep as it started, would keep the kind
        idle)."""
        kinds = _by_kind(self._seen()).items()
        return {
            kind: max(statistics.fmean(seen), self._starved.get(kind, 0.0))
            for kind, seen in kinds
            if isinstance(kind, str)
        }

    def _seen(self) -> List[_Seen]:
        """What each script seen wanted, ended or running."""
        running = [tree.as_seen() for tree in self._trees.values() if tree.seen]
        return self._ended + running

    @property
    def judged_any(self) -> bool:
        """True once a script was looked at often enough to be judged (running or ended)."""
        return any(seen.tells for seen in self._ended) or any(
            tree.judged for tree in self._trees.values()
        )


@dataclass(frozen=True, eq=False)
class _Seen:
    """What one script seen wanted over its run, the kind of its text (None: a script of no
    kind, alone), and whether that tells what a script not known yet will want."""

    kind: Optional[str]
    tells: bool
    demand: float


def _by_kind(seen: Iterable[_Seen]) -> Dict[object, List[float]]:
    """What the scripts seen wanted, by kind: a script of no kind is one of its own."""
    kinds: Dict[object, List[float]] = {}
    for one in seen:
        kinds.setdefault(one if one.kind is None else one.kind, []).append(one.demand)
    return kinds


class _Tree:
    """The looks at one running tree: the first (which may catch its shell being started),
    then its last :data:`DEMAND_WINDOW` and their sum since the first."""

    def __init__(self, tells: bool, kind: Optional[str] = None) -> None:
        #: Whether what it wants tells what a script not known yet will want (a script not
        #: known from an earlier run): only such a tree is judged.
        self.tells = tells
        #: The digest of its script's text (None: a setup step's tree).
        self.kind = kind
        self.first = 0
        self.window: Deque[int] = deque(maxlen=DEMAND_WINDOW)
        #: How many looks of the window found it busy.
        self.busy_looks = 0
        self.looks = 0
        self.total = 0

    def add(self, runnable: int) -> None:
        if self.looks:
            self.total += runnable
            if len(self.window) == DEMAND_WINDOW and self.window[0]:
                self.busy_looks -= 1  # the oldest look leaves the window
            self.window.append(runnable)
            self.busy_looks += bool(runnable)
        else:
            self.first = runnable
        self.looks += 1

    @property
    def now(self) -> int:
        """The most of its last looks while :data:`HOLDING_SHARE` of them found it busy,
        else its last look; the first counts only until there is another, so a sleeper
        caught as its shell starts does not hold a CPU for a second."""
        if not self.window:
            return self.first
        if self.busy_looks >= HOLDING_SHARE * len(self.window):
            return max(self.window)
        return self.window[-1]

    @property
    def seen(self) -> bool:
        """Looked at often enough to tell what it wants."""
        return self.looks >= JUDGING_LOOKS

    @property
    def judged(self) -> bool:
        return self.tells and self.seen

    @property
    def busy_before_judged(self) -> bool:
        """A script not judged yet whose look found it busy."""
        return self.tells and not self.judged and self.now > 0

    @property
    def mean(self) -> float:
        return self.total / max(1, self.looks - 1)

    def as_seen(self) -> _Seen:
        return _Seen(self.kind, self.tells, self.mean)


def base_count(typical: float, cpus: int) -> int:
    """How many scripts start whenever a slot frees, without waiting for a look: one per CPU,
    or fewer where the typical script wants more than one CPU (a suite run with ``-n 2``, a
    ``make -j2``), as many as the CPUs hold with :data:`OVERCOMMIT_CPUS` to spare; at least
    one."""
    return max(1, min(cpus, math.floor((cpus + OVERCOMMIT_CPUS) / typical + 1e-9)))


def extra_room(busy: float, expected: float, cpus: int, *, typical: float) -> int:
    """How many more scripts ``cpus`` CPUs hold while the running ones want ``busy`` CPUs,
    each expected to want ``expected``, with at most :data:`OVERCOMMIT_CPUS` of demand beyond
    the CPUs; and one at least while a whole CPU is idle and the ``typical`` script fits in
    what is idle (an average raised by one script that kept several CPUs busy would leave it
    idle for the rest of the run)."""
    room = cpus + OVERCOMMIT_CPUS - busy
    fits = math.floor(room / expected + 1e-9)
    if fits == 0 and busy <= cpus - 1 and typical <= room:
        return 1
    return max(0, fits)
