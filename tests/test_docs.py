"""The documentation matches the code: its examples run, and every option and name it promises
exists (and the other way round).

The Sphinx build (``tox -e docs``) runs the same examples; running them here as well keeps them
honest in every test run, where Sphinx is not installed.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List, Set, Tuple

import pytest

import pytest_parallel_hypotheses

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHANGELOG = ROOT / "CHANGELOG.md"

_DIRECTIVE = re.compile(r"^\.\. (testsetup|testcode|testoutput|testcleanup|doctest)::")
_OPTION = re.compile(r"--hypotheses(?:-[a-z]+)*")
_INI_KEY = re.compile(r"^\s+(hypotheses_[a-z_]+)\s*\(", re.MULTILINE)

Block = Tuple[str, str]
MakeWorktree = Callable[[str], Path]
WriteScript = Callable[..., Path]


def example_blocks(text: str) -> List[Block]:
    """The example directives of a reST page, in order, as (kind, dedented body)."""
    lines = text.splitlines()
    blocks: List[Block] = []
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        index += 1
        if match is None:
            continue
        body: List[str] = []
        while index < len(lines) and (not lines[index].strip() or lines[index][0].isspace()):
            body.append(lines[index])
            index += 1
        code = textwrap.dedent("\n".join(body)).strip("\n")
        blocks.append((match.group(1), _without_options(code)))
    return blocks


def _without_options(code: str) -> str:
    lines = code.splitlines()
    while lines and lines[0].startswith(":"):
        lines.pop(0)
    return "\n".join(lines).strip("\n")


def pages_with_examples() -> List[Path]:
    return [page for page in sorted(DOCS.glob("*.rst")) if example_blocks(page.read_text())]


def run_examples(page: Path) -> List[str]:
    """Run a page's examples as Sphinx's doctest builder does; return the mismatches."""
    blocks = example_blocks(page.read_text())
    namespace: Dict[str, object] = {"__name__": f"docs_{page.stem}"}
    problems: List[str] = []
    for kind, code in blocks:
        if kind == "testsetup":
            exec(compile(code, f"{page.name} (setup)", "exec"), namespace)
    try:
        for position, (kind, code) in enumerate(blocks):
            if kind == "testcode":
                got = _run_code(code, page, namespace)
                following = blocks[position + 1] if position + 1 < len(blocks) else None
                if following is not None and following[0] == "testoutput":
                    want = following[1] + "\n"
                    if not doctest.OutputChecker().check_output(want, got, 0):
                        problems.append(f"{page.name}: expected\n{want}got\n{got}")
            elif kind == "doctest":
                problems.extend(_run_doctest(code, page, namespace))
    finally:
        for kind, code in blocks:
            if kind == "testcleanup":
                exec(compile(code, f"{page.name} (cleanup)", "exec"), namespace)
    return problems


def _run_code(code: str, page: Path, namespace: Dict[str, object]) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, page.name, "exec"), namespace)
    return output.getvalue()


def _run_doctest(code: str, page: Path, namespace: Dict[str, object]) -> List[str]:
    test = doctest.DocTestParser().get_doctest(code, namespace, page.stem, page.name, 0)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=0)
    runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)
    return [report.getvalue()] if runner.failures else []


@pytest.mark.parametrize("page", pages_with_examples(), ids=lambda page: page.stem)
def test_examples_of_page_give_the_output_shown(page: Path) -> None:
    assert run_examples(page) == []


def test_every_public_class_has_an_api_entry() -> None:
    documented = set(re.findall(r"^\.\. autoclass:: (\w+)", (DOCS / "api.rst").read_text(), re.M))
    public = set(pytest_parallel_hypotheses.__all__) - {"__version__"}
    assert public - documented == set()


def test_changelog_names_the_package_version_as_its_latest_release() -> None:
    releases = re.findall(r"^## \[([^\]]+)\]", CHANGELOG.read_text(), re.MULTILINE)
    latest = next(release for release in releases if release != "Unreleased")
    assert latest == pytest_parallel_hypotheses.__version__


@pytest.fixture(scope="module")
def plugin_help() -> str:
    """``pytest --help`` with the plugin installed, as a user sees it."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def _documented_text() -> str:
    pages = [page.read_text() for page in sorted(DOCS.glob("*.rst"))]
    return "\n".join([*pages, CHANGELOG.read_text()])


def _options_in(text: str) -> Set[str]:
    return set(_OPTION.findall(text))


def test_every_plugin_option_is_in_the_configuration_reference(plugin_help: str) -> None:
    reference = (DOCS / "configuration.rst").read_text()
    options = _options_in(plugin_help)
    assert options, "the plugin declares no --hypotheses option"
    assert options - _options_in(reference) == set()


def test_every_plugin_ini_key_is_in_the_configuration_reference(plugin_help: str) -> None:
    reference = (DOCS / "configuration.rst").read_text()
    keys = set(_INI_KEY.findall(plugin_help))
    assert keys, "the plugin declares no hypotheses_* ini key"
    assert {key for key in keys if f"``{key}``" not in reference} == set()


def test_docs_name_only_options_the_plugin_has(plugin_help: str) -> None:
    assert _options_in(_documented_text()) - _options_in(plugin_help) == set()


def code_block(page: str, caption: str) -> str:
    """The Python code block of ``page`` with this caption, dedented."""
    pattern = (
        r"^\.\. code-block:: python\n   :caption: " + re.escape(caption) + r"\n\n((?:   .*\n|\n)+)"
    )
    match = re.search(pattern, (DOCS / page).read_text(), re.MULTILINE)
    assert match is not None, f"{page} has no python code block captioned {caption!r}"
    return textwrap.dedent(match.group(1))


def run_hypotheses(pytester: pytest.Pytester, worktree: Path) -> Dict[str, Any]:
    """``pytest --hypotheses`` on the worktree's repository, in a subprocess; its JSON report."""
    pytester.runpytest_subprocess(
        f"--hypotheses={worktree}", "--hypotheses-report=report.json", "-p", "no:cacheprovider"
    )
    report: Dict[str, Any] = json.loads((pytester.path / "report.json").read_text())
    return report


def records_by_id(report: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {record["hypothesis_id"]: record for record in report["hypotheses"]}


@pytest.fixture
def hooks_example_report(
    pytester: pytest.Pytester, make_worktree: MakeWorktree, write_script: WriteScript
) -> Dict[str, Any]:
    """A run with the conftest.py of the hook reference: one harness failure, one quick pass."""
    worktree = make_worktree("hooks")
    write_script(worktree, "harness", "exit 3")
    write_script(worktree, "quick", "exit 0")
    (worktree / ".falsification" / "config_quick.json").write_text('{"estimated_test_time": 60}')
    pytester.makeconftest(code_block("hooks.rst", "conftest.py"))
    return run_hypotheses(pytester, worktree)


def test_hooks_example_classifies_the_harness_exit_status_as_a_skip(
    hooks_example_report: Dict[str, Any],
) -> None:
    harness = records_by_id(hooks_example_report)["harness"]
    assert (harness["result"], harness["status"]) == ("skip", "inconclusive")


def test_hooks_example_distrusts_a_run_far_quicker_than_its_estimate(
    hooks_example_report: Dict[str, Any],
) -> None:
    quick = records_by_id(hooks_example_report)["quick"]
    assert (quick["status"], quick["confidence"]) == ("falsified", 0.1)


def test_hooks_example_logs_each_finished_hypothesis(
    hooks_example_report: Dict[str, Any], pytester: pytest.Pytester
) -> None:
    lines = (pytester.path / "hypotheses.log").read_text().splitlines()
    assert sorted(line.split()[1:] for line in lines) == [
        ["falsified", "0.10"],
        ["inconclusive", "0.00"],
    ]


def test_every_json_report_key_is_in_the_configuration_reference(
    pytester: pytest.Pytester, make_worktree: MakeWorktree, write_script: WriteScript
) -> None:
    worktree = make_worktree("report")
    write_script(worktree, "one", "exit 1")
    report = run_hypotheses(pytester, worktree)
    run = report["run"]
    keys = {*report, *run, *run["settings"], *report["counts"], *report["hypotheses"][0]}
    reference = (DOCS / "configuration.rst").read_text()
    assert {key for key in keys if f"``{key}``" not in reference} == set()
