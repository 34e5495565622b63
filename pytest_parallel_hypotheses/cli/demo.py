"""The demo: a tiny project with a planted bug, five hypotheses, one real ``pytest --hypotheses``.

The worktrees are made by the same code as ``pytest-hypotheses new`` and the run is an ordinary
pytest process, so what the demo shows is what a user gets on their own project. The demo
succeeds when each hypothesis gets its planned verdict; pytest itself reports failures, since
a supported hypothesis is a failing test.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, TextIO

from ..core.classification import HypothesisStatus, TestResult
from ..engine.environment import without_pytest_variables
from ..finding.git import run_git
from ..finding.layout import script_path
from .scaffold import Request, create

PROJECT = "shop"
REPORT = "hypotheses-report.json"
#: The identity of the demo project's only commit (the project is throwaway).
DEMO_IDENTITY = ["-c", "user.name=Demo", "-c", "user.email=demo@example.invalid"]

PROJECT_FILES: Mapping[str, str] = {
    "README.md": (
        "# shop\n\n"
        "Bug report: with 11 products shown 5 per page, the 11th product never appears.\n"
        "`test_pagination.py` reproduces it.\n"
    ),
    "pagination.py": (
        '"""Pages of the product listing."""\n\n\n'
        "def page_count(total, per_page):\n"
        '    """How many pages it takes to show ``total`` items, ``per_page`` at a time."""\n'
        "    if per_page <= 0:\n"
        '        raise ValueError("per_page must be positive")\n'
        "    return total // per_page\n\n\n"
        "def page(items, number, per_page):\n"
        '    """The items on page ``number``, counting from 1."""\n'
        "    start = (number - 1) * per_page\n"
        "    return items[start : start + per_page]\n"
    ),
    "test_pagination.py": (
        "from pagination import page_count\n\n\n"
        "def test_eleven_products_need_three_pages():\n"
        "    assert page_count(11, 5) == 3\n"
    ),
    ".gitignore": "__pycache__/\n.pytest_cache/\n",
}


@dataclass(frozen=True)
class Planned:
    """A demo hypothesis and the verdict it is meant to get, with the reason in a phrase."""

    hypothesis_id: str
    description: str
    command: str
    verdict: HypothesisStatus
    result: TestResult
    why: str
    timeout: Optional[float] = None

    def request(self) -> Request:
        return Request(self.hypothesis_id, self.command, self.description, self.timeout)


def planned_hypotheses(python: str) -> List[Planned]:
    """The five hypotheses, their tests run by ``python`` (a quoted interpreter path)."""

    def check(code: str) -> str:
        return f"{python} -c {shlex.quote(code)}"

    return [
        Planned(
            "partial-page",
            "page_count rounds down, so a last, partial page is dropped",
            check("from pagination import page_count; assert page_count(11, 5) == 3"),
            HypothesisStatus.SUPPORTED,
            TestResult.FAIL,
            "its test fails: this is the bug",
        ),
        Planned(
            "empty-listing",
            "page_count breaks on an empty listing",
            check("from pagination import page_count; assert page_count(0, 5) == 0"),
            HypothesisStatus.FALSIFIED,
            TestResult.PASS,
            "its test passes",
        ),
        Planned(
            "slice-offset",
            "page() starts each page one item too late",
            check("from pagination import page; assert page(list(range(11)), 3, 5) == [10]"),
            HypothesisStatus.FALSIFIED,
            TestResult.PASS,
            "its test passes",
        ),
        Planned(
            "indexing-race",
            "a background indexing job races with the listing",
            "sleep 300 &  # the indexing job, left running in the background\nwait",
            HypothesisStatus.INCONCLUSIVE,
            TestResult.TIMEOUT,
            "it hangs until its 2 s timeout; its background job is stopped too",
            timeout=2.0,
        ),
        Planned(
            "stale-cache",
            "a stale cache serves old page counts",
            f"./clear_cache.sh && {check('import pagination')}",
            HypothesisStatus.INCONCLUSIVE,
            TestResult.ERROR,
            "its script is broken: clear_cache.sh does not exist",
        ),
    ]


def run(*, clean: bool = False, out: TextIO = sys.stdout) -> int:
    """Build the demo in a new temporary folder, run it, and return 0 if it went as planned.

    The steps are told on ``out``; pytest's own output goes straight to the terminal.
    """
    folder = Path(tempfile.mkdtemp(prefix="pytest-hypotheses-demo-")).resolve()
    try:
        return _run_in(folder, clean=clean, out=out)
    finally:
        if clean:
            shutil.rmtree(folder, ignore_errors=True)


def build_project(folder: Path) -> Path:
    """The demo project: a git repository with one commit that holds the planted bug."""
    repository = folder / PROJECT
    repository.mkdir()
    for name, text in PROJECT_FILES.items():
        (repository / name).write_text(text, encoding="utf-8")
    run_git(["init", "-q"], repository)
    run_git(["add", "--all"], repository)
    options = [*DEMO_IDENTITY, "-c", "commit.gpgsign=false"]
    run_git([*options, "commit", "-q", "--no-verify", "-m", "The shop's pagination"], repository)
    return repository


def pytest_command(repository: Path, report: Path) -> List[str]:
    """The pytest run the demo makes: verbose, with a JSON report to check the verdicts."""
    return [
        sys.executable,
        "-m",
        "pytest",
        f"--hypotheses={repository}",
        f"--hypotheses-report={report}",
        "-v",
    ]


def _run_in(folder: Path, *, clean: bool, out: TextIO) -> int:
    plans = planned_hypotheses(shlex.quote(sys.executable))
    repository = _build(folder, plans, out)
    problems = _test(folder, repository, plans, out)
    _say(out)
    if problems:
        for problem in problems:
            sys.stderr.write(f"pytest-hypotheses demo: {problem}\n")
        return 1
    _say(out, "4. The demo worked: each hypothesis got its planned verdict.")
    for line in _next_steps(folder, repository, plans, clean=clean):
        _say(out, line)
    return 0


def _say(out: TextIO, line: str = "") -> None:
    out.write(line + "\n")


def _build(folder: Path, plans: Sequence[Planned], out: TextIO) -> Path:
    """Steps 1 and 2: the project, then one worktree per hypothesis, as ``new`` makes them."""
    _say(out, f"1. A small project with a planted bug, as a git repository: {folder / PROJECT}")
    _say(out, "   page_count(11, 5) returns 2 but the shop needs 3 pages for 11 products.")
    repository = build_project(folder)
    _say(out, "2. Five hypotheses about the cause, each in its own worktree (as `new` makes them):")
    width = max(len(plan.hypothesis_id) for plan in plans)
    for plan in plans:
        create(repository, plan.request())
        _say(out, f"   {plan.hypothesis_id:<{width}}  {plan.description}")
        _say(out, f"   {'':<{width}}  expect {plan.verdict.value.upper()}: {plan.why}")
    return repository


def _test(folder: Path, repository: Path, plans: Sequence[Planned], out: TextIO) -> List[str]:
    """Step 3: the pytest run, in front of the user; returns what did not go as planned."""
    report = folder / REPORT
    command = pytest_command(repository, report)
    _say(out, f"3. Testing them all at once: {shlex.join(command)}")
    out.flush()  # before pytest writes to the same terminal
    exit_status = _run_pytest(command, folder)
    return _check(plans, report, exit_status)


def _run_pytest(command: Sequence[str], cwd: Path) -> int:
    """Run pytest with the terminal's output; on Ctrl-C let it stop its scripts and report.

    The terminal sends SIGINT to pytest as well, so waiting for it (instead of killing it)
    is what lets it stop every script it started.
    """
    environment = without_pytest_variables()
    process = subprocess.Popen(command, cwd=cwd, env=environment, stdin=subprocess.DEVNULL)
    interrupted = False
    while True:
        try:
            exit_status = process.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
    return exit_status


def _check(plans: Sequence[Planned], report: Path, exit_status: int) -> List[str]:
    """What did not go as planned, one sentence each (nothing: the demo worked)."""
    try:
        records = json.loads(report.read_text(encoding="utf-8"))["hypotheses"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"pytest (exit status {exit_status}) wrote no usable report {report}: {error}"]
    got: Dict[str, Mapping[str, object]] = {r["hypothesis_id"]: r for r in records}
    problems = []
    for plan in plans:
        record = got.get(plan.hypothesis_id)
        if record is None:
            problems.append(f"hypothesis {plan.hypothesis_id} is missing from {report}")
        elif (record["status"], record["result"]) != (plan.verdict.value, plan.result.value):
            problems.append(
                f"hypothesis {plan.hypothesis_id} was planned {plan.verdict.value} "
                f"({plan.result.value}) but came out {record['status']} ({record['result']})"
            )
    return problems


def _next_steps(
    folder: Path, repository: Path, plans: Sequence[Planned], *, clean: bool
) -> List[str]:
    if clean:
        return [f"   The demo folder {folder} has been removed (--clean)."]
    python = shlex.quote(sys.executable)
    supported = plans[0]
    worktree = f"../worktrees/{PROJECT}-hyp-{supported.hypothesis_id}"
    return [
        f"   Everything is left in {folder} for you to look at. Try:",
        f"     cd {shlex.quote(str(repository))}",
        f"     cat {script_path(worktree, supported.hypothesis_id).as_posix()}",
        f"     {python} -m pytest_parallel_hypotheses list",
        f"     {python} -m pytest --hypotheses -k {supported.hypothesis_id}",
        f"     {python} -m pytest_parallel_hypotheses clean",
        f"     rm -rf {shlex.quote(str(folder))}",
        "   (or run the demo with --clean to remove the folder at the end)",
    ]
