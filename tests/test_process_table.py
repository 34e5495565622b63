"""Looks at the process table during a storm of stopping trees: one read, off the loop, serves
every tree that asks at the same moment, and no tree is handed a read older than its request."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Iterator, List

import psutil
import pytest

from pytest_parallel_hypotheses.engine import tree as tree_module
from pytest_parallel_hypotheses.engine.tree import Marker, ProcessTree

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The name of the thread that made each whole-table read (the reads themselves are real)."""
    made: List[str] = []
    real = tree_module._read_table

    def counted(*args: object) -> List[tree_module._Row]:
        if not args:
            made.append(threading.current_thread().name)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(tree_module, "_read_table", counted)
    return made


@pytest.fixture
def prefix() -> str:
    """The start of this test's marker names: tests running at once in other workers look
    at the same process table, and must not find each other's processes."""
    return f"PPH_RUN_table_{uuid.uuid4().hex[:8]}_"


@pytest.fixture
def marked_sleepers(prefix: str) -> Iterator[List[subprocess.Popen[bytes]]]:
    """Twenty sleeping processes, each with a marker of its own."""
    procs = [
        subprocess.Popen(SLEEPER, env={**os.environ, f"{prefix}{index}": "1"})
        for index in range(20)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_trees_looking_at_once_share_a_few_reads_made_off_the_loop(
    reads: List[str], marked_sleepers: List[subprocess.Popen[bytes]], prefix: str
) -> None:
    trees = [ProcessTree(Marker(f"{prefix}{index}", "1")) for index in range(20)]

    async def look_all() -> List[List[int]]:
        found = await asyncio.gather(*(tree.look() for tree in trees))
        return [[proc.pid for proc in members] for members in found]

    found = asyncio.run(look_all())

    assert found == [[proc.pid] for proc in marked_sleepers]
    assert 1 <= len(reads) <= 2
    assert threading.main_thread().name not in reads


def test_a_look_asked_for_during_a_read_sees_what_started_after_that_read_began(
    reads: List[str], prefix: str
) -> None:
    marker = Marker(f"{prefix}late", "1")

    async def look_while_starting() -> List[int]:
        first = asyncio.ensure_future(ProcessTree(marker).look())
        await asyncio.sleep(0)  # the first read is under way
        late = subprocess.Popen(SLEEPER, env={**os.environ, marker.name: "1"})
        try:
            members = await ProcessTree(marker).look()
            await first
            return [proc.pid for proc in members if proc.pid == late.pid]
        finally:
            late.kill()
            late.wait()

    assert len(asyncio.run(look_while_starting())) == 1
    assert len(reads) == 2  # the second look waited for a read of its own


def test_a_look_finds_a_process_by_its_marker_and_its_group(
    marked_sleepers: List[subprocess.Popen[bytes]], prefix: str
) -> None:
    first = marked_sleepers[0]

    by_marker = ProcessTree(Marker(f"{prefix}0", "1")).members()
    by_group = ProcessTree(Marker("PPH_RUN_none", "1"), pgid=os.getpgid(first.pid)).members()

    assert [proc.pid for proc in by_marker] == [first.pid]
    assert first.pid in {proc.pid for proc in by_group}


def test_a_pid_that_now_names_another_process_is_not_taken_for_the_one_seen(
    marked_sleepers: List[subprocess.Popen[bytes]],
) -> None:
    """A look reads each process's start time with its group and marker; a process is handed
    on only if its pid still names a process that started then."""
    (row,) = tree_module._read_table([marked_sleepers[0].pid])
    reused = tree_module._Row(row.pid, row.started - 1, row.group, row.markers)

    assert row.process() is not None
    assert reused.process() is None


def test_a_look_that_takes_a_recent_picture_uses_the_last_read(
    reads: List[str], marked_sleepers: List[subprocess.Popen[bytes]], prefix: str
) -> None:
    tree = ProcessTree(Marker(f"{prefix}0", "1"))

    async def look_twice() -> List[List[int]]:
        fresh = await tree.look()
        recent = await tree.look(recent=60.0)
        return [[proc.pid for proc in fresh], [proc.pid for proc in recent]]

    assert asyncio.run(look_twice()) == [[marked_sleepers[0].pid]] * 2
    assert len(reads) == 1


def test_a_look_that_takes_a_recent_picture_joins_the_read_under_way(
    reads: List[str], marked_sleepers: List[subprocess.Popen[bytes]], prefix: str
) -> None:
    tree = ProcessTree(Marker(f"{prefix}0", "1"))

    async def look_during_a_read() -> List[int]:
        first = asyncio.ensure_future(tree.look())
        await asyncio.sleep(0)  # the first read is under way
        members = await tree.look(recent=60.0)
        await first
        return [proc.pid for proc in members]

    assert asyncio.run(look_during_a_read()) == [marked_sleepers[0].pid]
    assert len(reads) == 1


def test_a_look_that_takes_a_recent_picture_still_finds_what_started_since(
    reads: List[str], prefix: str
) -> None:
    marker = Marker(f"{prefix}late", "1")

    async def look_after_a_start() -> List[int]:
        await ProcessTree(marker).look()
        late = subprocess.Popen(SLEEPER, env={**os.environ, marker.name: "1"})
        try:
            while marker.name not in psutil.Process(late.pid).environ():
                await asyncio.sleep(0.01)  # a process caught before its exec has no marker yet
            members = await ProcessTree(marker).look(recent=60.0)
            return [proc.pid for proc in members if proc.pid == late.pid]
        finally:
            late.kill()
            late.wait()

    assert len(asyncio.run(look_after_a_start())) == 1
    assert len(reads) == 1


def test_a_look_reads_again_once_the_last_read_is_older_than_it_accepts(
    reads: List[str], marked_sleepers: List[subprocess.Popen[bytes]], prefix: str
) -> None:
    tree = ProcessTree(Marker(f"{prefix}0", "1"))

    async def look_later() -> None:
        await tree.look()
        await asyncio.sleep(0.2)
        await tree.look(recent=0.1)

    asyncio.run(look_later())

    assert len(reads) == 2


def test_the_readers_of_finished_loops_are_forgotten(
    marked_sleepers: List[subprocess.Popen[bytes]], prefix: str
) -> None:
    tree = ProcessTree(Marker(f"{prefix}0", "1"))
    gc.collect()
    before = len(tree_module._readers)  # loops of other tests that still run, if any
    for _ in range(5):
        asyncio.run(tree.look())
    gc.collect()
    assert len(tree_module._readers) <= before


@pytest.fixture
def zombie_group() -> Iterator[int]:
    """A process group holding one zombie alone: what a killed script's orphans become on a
    machine whose init reaps slowly."""
    leader = subprocess.Popen([sys.executable, "-c", ""], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(leader.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the process did not exit"
            time.sleep(0.01)
        yield leader.pid
    finally:
        leader.wait()


@pytest.mark.parametrize(("way", "passes"), [("stop", 2), ("kill", 1)])
def test_a_group_left_with_zombies_alone_ends_its_stop_at_the_first_look_after_its_sigkill(
    reads: List[str], zombie_group: int, prefix: str, way: str, passes: int
) -> None:
    """A stop looks once after its SIGTERM, then (the group not being empty) SIGKILLs the
    group and looks once more; the zombies found then are dead, and end it."""
    tree = ProcessTree(Marker(f"{prefix}gone", "1"), pgid=zombie_group)

    asyncio.run(tree.stop(grace=30.0) if way == "stop" else tree.kill())

    assert len(reads) == passes
