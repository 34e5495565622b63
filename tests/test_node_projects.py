"""Node.js projects: a script that node refuses, or whose worktree lacks the packages its
package.json declares, tested nothing, so it is inconclusive whatever its exit status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from pytest_parallel_hypotheses import (
    FalsificationConfig,
    Hypothesis,
    HypothesisStatus,
    TestExecutionResult,
    TestExecutor,
)
from pytest_parallel_hypotheses.finding.layout import script_path

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")

WriteScript = Callable[..., Path]


def package(worktree: Path, **manifest: Any) -> None:
    (worktree / "package.json").write_text(json.dumps(manifest))


def run(worktree: Path, hypothesis_id: str = "h") -> TestExecutionResult:
    executor = TestExecutor(FalsificationConfig(test_timeout=60))
    return executor.execute_single(Hypothesis(hypothesis_id, "x"), worktree)


def write_node_script(worktree: Path, text: str) -> None:
    script = script_path(worktree, "h")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#!/usr/bin/env node\n" + text)
    script.chmod(0o755)


def test_a_node_script_that_node_refuses_to_run_is_inconclusive(git_repo: Path) -> None:
    """In a package of "type": "module" node runs no file ending in .sh: exit status 1."""
    package(git_repo, type="module")
    write_node_script(git_repo, "process.exit(0)\n")

    result = run(git_repo)

    assert result.status is HypothesisStatus.INCONCLUSIVE
    assert "the script is refused by node" in result.error_message


def test_a_node_script_that_node_runs_still_decides(git_repo: Path) -> None:
    package(git_repo)
    write_node_script(git_repo, "process.exit(1)\n")

    result = run(git_repo)

    assert result.status is HypothesisStatus.SUPPORTED, result.stderr


#: Scripts that load a package the worktree declares, as each kind of module says it is missing.
LOADS = {
    "CommonJS": "node -e \"require('left-pad')\"",
    "ES module": "node --input-type=module -e \"import 'left-pad'\"",
}
DECLARED: Dict[str, Any] = {"dependencies": {"left-pad": "1.3.0"}}


@pytest.mark.parametrize("kind", sorted(LOADS))
def test_a_declared_package_missing_from_node_modules_is_inconclusive(
    git_repo: Path, write_script: WriteScript, kind: str
) -> None:
    """A worktree made by git worktree add has no node_modules: git ignores it."""
    package(git_repo, **DECLARED)
    write_script(git_repo, "h", LOADS[kind])

    result = run(git_repo)

    assert result.status is HypothesisStatus.INCONCLUSIVE, result.stderr
    assert "failed to load left-pad, which the worktree's package.json declares" in (
        result.error_message
    )


def test_a_missing_package_the_worktree_never_declared_still_decides(
    git_repo: Path, write_script: WriteScript
) -> None:
    """A dependency the project forgot to declare can be the bug itself."""
    package(git_repo, dependencies={})
    write_script(git_repo, "h", LOADS["CommonJS"])

    result = run(git_repo)

    assert result.status is HypothesisStatus.SUPPORTED, result.error_message
