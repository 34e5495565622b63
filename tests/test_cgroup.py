"""A cgroup v2 per script where one is delegated, the fallback where not, and what the machine
lets the process use (CPU affinity and quota)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from pytest_parallel_hypotheses.engine import machine
from pytest_parallel_hypotheses.engine.cgroup import (
    RUNNER_LEAF,
    CgroupParent,
    ScriptCgroup,
    claim,
    delegated_parent,
    memory_parent,
    parent_giving,
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


#: Controllers that the kernel lets a cgroup give its children only while it holds no process.
DOMAIN_CONTROLLERS = ("memory", "io", "hugetlb", "rdma", "misc")


class Delegated:
    """A cgroup marked as systemd marks one it delegates, a controller it may give its
    children, and the processes a test started in it."""

    def __init__(self, path: Path, controller: str) -> None:
        self.path = path
        self.controller = controller
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: str) -> subprocess.Popen[bytes]:
        """``command`` started in the cgroup."""
        proc = start_in(ScriptCgroup(self.path), command)
        self.started.append(proc)
        return proc

    def remove(self) -> None:
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for folder in (self.path / RUNNER_LEAF, self.path):
            deadline = time.monotonic() + 10
            while folder.exists():
                try:
                    folder.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)


@pytest.fixture
def delegated() -> Iterator[Delegated]:
    """A delegated cgroup under this process's, given a controller of those that a cgroup
    with processes may not give (a threaded one, such as cpuset, it may). The cgroup above
    gives it to its children while a test of any session needs it: the first that found it
    not given marks its cgroup, and the last marked one to end takes it back."""
    assert PARENT is not None
    offered = (PARENT.path / "cgroup.controllers").read_text().split()
    controller = next((name for name in DOMAIN_CONTROLLERS if name in offered), None)
    if controller is None:
        pytest.skip(f"{PARENT.path} has none of {DOMAIN_CONTROLLERS} to give")
    giving, _ = parent_giving(PARENT, controller, claim_delegated=False)
    base = PARENT.path if giving is None else giving.path  # above a leaf a claim made
    with _locked(base):
        given = controller in (base / "cgroup.subtree_control").read_text().split()
        restore = not given or any(base.glob(f"{RESTORES}*"))
        try:
            if not given:
                (base / "cgroup.subtree_control").write_text(f"+{controller}")
        except OSError as error:
            pytest.skip(f"cannot give the children of {base} {controller}: {error}")
        prefix = RESTORES if restore else "delegated-"
        made = Delegated(base / f"{prefix}{os.getpid()}-{uuid.uuid4().hex}", controller)
        made.path.mkdir()
    try:
        os.setxattr(made.path, "trusted.delegate", b"1")
        yield made
    finally:
        with _locked(base):
            made.remove()
            if restore and not any(base.glob(f"{RESTORES}*")):
                (base / "cgroup.subtree_control").write_text(f"-{controller}")


#: The start of the name of a test's cgroup whose controller is to be taken back.
RESTORES = "delegated-restore-"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder``, which every pytest session sees."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def members_of(folder: Path) -> set[int]:
    return {int(pid) for pid in (folder / "cgroup.procs").read_text().split()}


@needs_cgroup
def test_a_delegated_cgroup_moves_its_processes_into_a_leaf_to_give_its_children_a_controller(
    delegated: Delegated,
) -> None:
    path, controller = delegated.path, delegated.controller
    sleeper = delegated.start("exec sleep 30")

    parent = claim(path, controller)

    assert members_of(path / RUNNER_LEAF) == {sleeper.pid}
    assert members_of(path) == set()
    assert parent == CgroupParent(path, frozenset({controller}), path / RUNNER_LEAF)
    assert controller in (path / "cgroup.subtree_control").read_text().split()


@needs_cgroup
def test_a_claim_holds_while_a_process_of_the_cgroup_keeps_forking(
    delegated: Delegated,
) -> None:
    path, controller = delegated.path, delegated.controller
    delegated.start("while :; do /bin/true & done")

    parent = claim(path, controller)

    assert controller in parent.controllers
    assert members_of(path) == set()


@needs_cgroup
@pytest.mark.parametrize(
    ("marked", "claim_delegated", "why"),
    [
        (False, True, "is not delegated to this process"),
        (True, False, "only a run that limits memory claims it"),
    ],
)
def test_a_cgroup_keeps_its_processes_unless_it_is_delegated_and_a_run_claims_it(
    delegated: Delegated, marked: bool, claim_delegated: bool, why: str
) -> None:
    path, controller = delegated.path, delegated.controller
    if not marked:
        os.removexattr(path, "trusted.delegate")
    sleeper = delegated.start("exec sleep 30")

    parent, reason = parent_giving(
        CgroupParent(path, frozenset()), controller, claim_delegated=claim_delegated
    )

    assert parent is None
    assert why in reason
    assert members_of(path) == {sleeper.pid}


@needs_cgroup
def test_a_claim_that_gave_up_is_made_again_from_its_leaf(delegated: Delegated) -> None:
    path, controller = delegated.path, delegated.controller
    (path / RUNNER_LEAF).mkdir()  # what a claim that gave up left: a leaf, and processes
    sleeper = delegated.start("exec sleep 30")

    parent, _ = parent_giving(
        CgroupParent(path / RUNNER_LEAF, frozenset()), controller, claim_delegated=True
    )

    assert parent == CgroupParent(path, frozenset({controller}), path / RUNNER_LEAF)
    assert members_of(path / RUNNER_LEAF) == {sleeper.pid}


@needs_cgroup
def test_a_process_in_the_leaf_of_a_claim_makes_its_cgroups_beside_that_leaf(
    delegated: Delegated,
) -> None:
    path, controller = delegated.path, delegated.controller
    claim(path, controller)

    parent, _ = parent_giving(
        CgroupParent(path / RUNNER_LEAF, frozenset()), controller, claim_delegated=False
    )

    assert parent == CgroupParent(path, frozenset({controller}), path / RUNNER_LEAF)


def start_in(cgroup: ScriptCgroup, command: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["sh", "-c", command], preexec_fn=cgroup.joiner(), start_new_session=True
    )
    cgroup.release_joiner()
    return proc


def members(cgroup: ScriptCgroup) -> set[int]:
    return members_of(cgroup.path)


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
        f"the cgroup v2 {own} has processes of its own and is not delegated to this process "
        "(as systemd's Delegate=yes does), so the kernel lets it give its children no memory "
        "controller"
    )


def test_the_oom_count_follows_the_process_into_the_cgroup_another_moved_it_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, kills in (("job", 3), (f"job/{RUNNER_LEAF}", 7)):
        folder = tmp_path / "unified" / name
        folder.mkdir(parents=True)
        (folder / "memory.events.local").write_text(f"low 0\noom_kill {kills}\n")
    fake_proc(
        monkeypatch,
        tmp_path,
        "0::/job",
        f"41 31 0:38 / {tmp_path / 'unified'} rw,relatime - cgroup2 cgroup2 rw",
    )
    before = machine.oom_kills()

    (tmp_path / "cgroup").write_text(f"0::/job/{RUNNER_LEAF}\n")  # another process's claim

    assert (before, machine.oom_kills()) == (3, 7)


def test_the_usable_cpus_are_at_most_those_of_the_affinity_mask() -> None:
    usable = machine.usable_cpus()

    assert 1 <= usable.count <= len(os.sched_getaffinity(0))
    assert "CPU" in usable.reason
