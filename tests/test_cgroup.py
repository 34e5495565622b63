"""A cgroup v2 per script where one is delegated, the fallback where not, and what the machine
lets the process use (CPU affinity and quota)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from pytest_parallel_hypotheses.engine import machine
from pytest_parallel_hypotheses.engine.cgroup import (
    CgroupParent,
    ScriptCgroup,
    delegated_parent,
    memory_parent,
)
from pytest_parallel_hypotheses.engine.memory import MemoryGuard

PARENT, WHY_NOT = delegated_parent()
needs_cgroup = pytest.mark.skipif(PARENT is None, reason=f"no delegated cgroup v2: {WHY_NOT}")


@pytest.fixture
def cgroup() -> Iterator[ScriptCgroup]:
    assert PARENT is not None
    made = ScriptCgroup.create(PARENT)
    yield made
    made.kill()
    deadline = time.monotonic() + 5
    while made.is_populated() and time.monotonic() < deadline:
        time.sleep(0.01)
    made.close()


def start_in(cgroup: ScriptCgroup, command: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["sh", "-c", command], preexec_fn=cgroup.joiner(), start_new_session=True
    )
    cgroup.release_joiner()
    return proc


def members(cgroup: ScriptCgroup) -> set[int]:
    return {int(pid) for pid in (cgroup.path / "cgroup.procs").read_text().split()}


@needs_cgroup
def test_a_script_joins_its_cgroup_before_it_starts_anything(cgroup: ScriptCgroup) -> None:
    proc = start_in(cgroup, "sleep 30 & sleep 30")
    try:
        deadline = time.monotonic() + 10
        while len(members(cgroup)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.pid in members(cgroup)
        assert len(members(cgroup)) == 3  # the shell and both sleeps
    finally:
        cgroup.kill()
        proc.wait(timeout=10)


@needs_cgroup
def test_killing_the_cgroup_kills_every_process_of_the_tree(cgroup: ScriptCgroup) -> None:
    proc = start_in(cgroup, "setsid sleep 30 & sleep 30")

    cgroup.kill()

    assert proc.wait(timeout=10) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while cgroup.is_populated() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not cgroup.is_populated()


@needs_cgroup
def test_a_cgroup_still_populated_when_its_script_ended_is_removed_at_the_end_of_the_run(
    cgroup: ScriptCgroup,
) -> None:
    assert PARENT is not None
    proc = start_in(cgroup, "sleep 30")
    guard = MemoryGuard(PARENT, "")
    guard.left.add(cgroup)

    asyncio.run(guard.aclose())

    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert not cgroup.path.exists()


@needs_cgroup
def test_closing_an_empty_cgroup_removes_it() -> None:
    assert PARENT is not None
    made = ScriptCgroup.create(PARENT)

    made.close()

    assert not made.path.exists()


def test_without_the_memory_controller_the_reason_is_given() -> None:
    parent, reason = memory_parent()

    assert (parent is None) == bool(reason)
    if parent is not None:
        assert "memory" in parent.controllers


def test_a_cgroup_that_cannot_be_created_falls_back_to_the_watchdog(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard = MemoryGuard(CgroupParent(tmp_path / "missing", frozenset({"memory"})), "")

    with caplog.at_level(logging.WARNING):
        made = guard.cgroup(100 * 1024 * 1024)

    assert made is None
    assert "falls back to the watchdog" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"), [("150000 100000", 1.5), ("max 100000", None), ("junk", None)]
)
def test_a_cgroup_v2_cpu_quota_is_read_in_cpus(
    tmp_path: Path, text: str, expected: float | None
) -> None:
    (tmp_path / "cpu.max").write_text(text + "\n")

    assert machine.read_cpu_max(tmp_path / "cpu.max") == expected


def test_a_cgroup_v1_cpu_quota_is_read_in_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")

    assert machine.read_cfs_quota(tmp_path) == 0.5


def test_no_cgroup_v1_cpu_quota_is_no_limit(tmp_path: Path) -> None:
    (tmp_path / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")

    assert machine.read_cfs_quota(tmp_path) is None


def fake_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cgroup: str, mount: str) -> None:
    """Point the machine's readings at a ``/proc/self/cgroup`` and a one-line mountinfo."""
    (tmp_path / "cgroup").write_text(cgroup + "\n")
    (tmp_path / "mountinfo").write_text(mount + "\n")
    monkeypatch.setattr(machine, "PROC_CGROUP", tmp_path / "cgroup")
    monkeypatch.setattr(machine, "PROC_MOUNTINFO", tmp_path / "mountinfo")


def test_a_cgroup_v1_quota_is_found_where_a_container_mounts_its_own_cgroup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cpu = tmp_path / "cpu"  # the container's cgroup /docker/abc, seen at the mount point
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text("50000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    fake_proc(
        monkeypatch,
        tmp_path,
        "4:cpu:/docker/abc",
        f"32 31 0:29 /docker/abc {cpu} rw,relatime - cgroup cgroup rw,cpu",
    )

    assert machine.cgroup_cpu_quota() == 0.5


def test_a_cgroup_v2_quota_above_the_process_cgroup_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    own = tmp_path / "unified" / "slice" / "job"
    own.mkdir(parents=True)
    (own / "cpu.max").write_text("max 100000\n")
    (own.parent / "cpu.max").write_text("150000 100000\n")
    fake_proc(
        monkeypatch,
        tmp_path,
        "0::/slice/job",
        f"41 31 0:38 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw",
    )

    assert machine.cgroup_cpu_quota() == 1.5


def test_a_cgroup_with_processes_of_its_own_is_said_to_be_why_no_child_gets_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    own = tmp_path / "unified" / "job"
    own.mkdir(parents=True)
    (own / "cgroup.procs").write_text("4242\n")
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("\n")
    fake_proc(
        monkeypatch,
        tmp_path,
        "0::/job",
        f"41 31 0:38 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw",
    )

    parent, reason = memory_parent()

    assert parent is None
    assert reason == (
        f"the cgroup v2 {own} has processes of its own, so the kernel lets it give its "
        "children no memory controller"
    )


def test_the_usable_cpus_are_at_most_those_of_the_affinity_mask() -> None:
    usable = machine.usable_cpus()

    assert 1 <= usable.count <= len(os.sched_getaffinity(0))
    assert "CPU" in usable.reason
