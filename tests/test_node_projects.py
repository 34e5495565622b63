"""Node.js projects: a script that node refuses, or whose worktree lacks the packages its
package.json declares, tested nothing, so it is inconclusive whatever its exit status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

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


def test_a_file_of_the_project_that_node_refuses_still_decides(git_repo: Path) -> None:
    """The script ran: a TypeScript file that node will not load can be the bug."""
    package(git_repo)
    (git_repo / "lib.ts").write_text("export const x: number = 1\n")
    write_node_script(
        git_repo,
        "import('../lib.ts').catch((error) => { console.error(error); process.exit(1) })\n",
    )

    result = run(git_repo)

    assert "ERR_UNKNOWN_FILE_EXTENSION" in result.stderr
    assert result.status is HypothesisStatus.SUPPORTED, result.error_message


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
    assert "did not find left-pad, which the worktree's package.json requires" in (
        result.error_message
    )


#: Worktrees where a package is missing and its absence can be the bug: what the worktree's
#: package.json says, the folders it has, and the package the script loads.
STILL_DECIDES: Dict[str, Tuple[Dict[str, Any], Tuple[str, ...], str]] = {
    "never declared": ({"dependencies": {}}, (), "left-pad"),
    "optional": ({"optionalDependencies": {"left-pad": "1.3.0"}}, (), "left-pad"),
    "installed without it": (DECLARED, ("node_modules/other",), "left-pad"),
    "a file of an installed package": (DECLARED, (), "left-pad/lib/pad"),
}


@pytest.mark.parametrize("case", sorted(STILL_DECIDES))
def test_a_missing_package_that_can_be_the_bug_still_decides(
    git_repo: Path, write_script: WriteScript, case: str
) -> None:
    manifest, folders, loaded = STILL_DECIDES[case]
    package(git_repo, **manifest)
    for folder in folders:
        (git_repo / folder).mkdir(parents=True)
    write_script(git_repo, "h", f"node -e \"require('{loaded}')\"")

    result = run(git_repo)

    assert "Cannot find module" in result.stderr
    assert result.status is HypothesisStatus.SUPPORTED, result.error_message
