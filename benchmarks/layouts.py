"""Where benchmark scripts live: plain folders, or a real git repository with worktrees.

The executor only needs ``<worktree>/.falsification/test_<id>.sh``, so most workloads use plain
folders (cheap to make by the hundred); the plugin discovers hypotheses through git, so its
workload gets a real repository with one worktree per hypothesis.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

SCRIPT_DIR = ".falsification"


@dataclass(frozen=True)
class Job:
    """One hypothesis script in one worktree."""

    hypothesis_id: str
    worktree: Path

    @property
    def script(self) -> Path:
        return self.worktree / SCRIPT_DIR / f"test_{self.hypothesis_id}.sh"


def write_script(job: Job, body: str) -> None:
    """Write an executable ``#!/bin/sh`` script for ``job``."""
    job.script.parent.mkdir(parents=True, exist_ok=True)
    job.script.write_text("#!/bin/sh\n" + body + "\n")
    job.script.chmod(job.script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def folder_jobs(root: Path, bodies: Sequence[str]) -> List[Job]:
    """One plain folder per script under ``root``, in the order of ``bodies``."""
    jobs = []
    for index, body in enumerate(bodies):
        job = Job(f"h{index:04d}", root / f"wt-{index:04d}")
        write_script(job, body)
        jobs.append(job)
    return jobs


def worktree_jobs(root: Path, bodies: Sequence[str]) -> List[Job]:
    """A git repository in ``root/repo`` with one real worktree per script, under ``root/wt``.

    The scripts stay uncommitted: discovery lists the worktrees through git and then only
    reads files, and a commit per worktree would triple the set-up time.
    """
    repo = git_repository(root / "repo")
    jobs = []
    for index, body in enumerate(bodies):
        job = Job(f"h{index:04d}", root / "wt" / f"hyp-{index:04d}")
        _git(repo, "worktree", "add", "-q", "-b", f"hyp-{index:04d}", str(job.worktree))
        write_script(job, body)
        jobs.append(job)
    return jobs


def git_repository(repo: Path) -> Path:
    """A new git repository at ``repo`` with one commit."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("benchmark repository\n")
    _git(repo, "add", "README")
    _git(repo, "commit", "-q", "-m", "initial")
    return repo


def _git(cwd: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="Benchmark",
        GIT_AUTHOR_EMAIL="benchmark@example.invalid",
        GIT_COMMITTER_NAME="Benchmark",
        GIT_COMMITTER_EMAIL="benchmark@example.invalid",
    )
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
