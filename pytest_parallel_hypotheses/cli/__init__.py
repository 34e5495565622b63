"""The ``pytest-hypotheses`` command: make hypothesis worktrees, list them, clean up, run a demo,
merge the reports of CI shards.

A mistake a user can make ends in one plain sentence on stderr and a non-zero exit status,
never in a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ..core.classification import Polarity
from ..core.listing import some_of
from ..core.numbers import parse_number
from ..core.sizes import LIMIT_EXPECTED, format_size, parse_limit
from ..distributed import merge
from ..finding.cache import stores_of
from ..finding.discovery import DiscoveryError, FoundHypothesis, discover, find_worktrees
from ..finding.git import GitError
from ..finding.installs import development_installs
from ..finding.layout import METADATA_PATTERN, SCRIPT_PATTERN
from ..report.terminal import summary_lines
from . import demo
from .scaffold import CleanReport, Created, Registered, Request, ScaffoldError, clean, create

PROG = "pytest-hypotheses"
#: Exit status of a refused or failed command (argparse uses 2 for a malformed command line).
FAILURE = 1
INTERRUPTED = 130
#: Exit status when the reader of the output went away: a shell's for death by SIGPIPE.
READER_GONE = 128 + signal.SIGPIPE
#: Exit status of a refused merge: pytest's for a usage error, apart from its 0, 1 and 5.
MERGE_REFUSED = 4

Handler = Callable[[argparse.Namespace], int]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = _parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        status = handler(args)
        sys.stdout.flush()  # a reader that went away shows here, not at the exit
        return status
    except BrokenPipeError:
        _drop_output()
        return READER_GONE
    except (ScaffoldError, DiscoveryError, GitError, OSError) as error:
        _fail(str(error))
        return FAILURE
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return INTERRUPTED


def _drop_output() -> None:
    """Send what is left of stdout to /dev/null: the reader (``| head``) has all it wanted,
    and Python would otherwise report the failed flush as it exits."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Make git worktrees for debugging hypotheses, each with a script that tries "
        "to disprove it; run them all with `pytest --hypotheses`.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_new(commands)
    _add_list(commands)
    _add_clean(commands)
    _add_demo(commands)
    _add_merge(commands)
    _add_cache(commands)
    return parser


def _add_new(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    new = commands.add_parser(
        "new",
        help="create a worktree and test script for a hypothesis",
        description="Create a git worktree on a new branch hyp-ID with an executable "
        f"{SCRIPT_PATTERN.replace('<id>', 'ID')} that runs COMMAND at the worktree's root, and "
        f"{METADATA_PATTERN.replace('<id>', 'ID')} with the metadata; both are committed on the "
        "branch.",
    )
    new.add_argument("hypothesis_id", metavar="ID", help="a name: letters, digits, '.', '_', '-'")
    new.add_argument(
        "--run",
        required=True,
        metavar="COMMAND",
        help="the shell command that tries to disprove the hypothesis (exit 0 = falsified; "
        "with --confirm, exit 0 = supported)",
    )
    new.add_argument(
        "--confirm",
        action="store_true",
        help="the command is written to confirm the hypothesis, as a test that a fix works: "
        "exit 0 supports it and a genuine failure falsifies it (metadata 'polarity')",
    )
    new.add_argument(
        "--setup",
        metavar="CMD",
        help="a shell command run at the worktree's root before the first attempt, such as "
        "making a worktree-local virtual environment (metadata 'setup')",
    )
    new.add_argument(
        "--setup-timeout",
        type=_seconds,
        metavar="S",
        help="seconds before the setup command is stopped (metadata 'setup_timeout')",
    )
    new.add_argument("--description", default="", help="what the hypothesis claims")
    new.add_argument(
        "--timeout", type=_seconds, metavar="S", help="seconds before the test is stopped"
    )
    new.add_argument(
        "--memory",
        type=_size,
        metavar="SIZE",
        help="the most resident memory the script's process tree may use, such as 500M or 2G "
        "(metadata 'memory')",
    )
    new.add_argument(
        "--base",
        metavar="REF",
        help="commit to branch from (default: the current HEAD, which must have no "
        "uncommitted changes)",
    )
    new.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="folder of the new worktree (default: ../worktrees/<repo>-hyp-ID next to the "
        "repository)",
    )
    new.set_defaults(handler=_new)


def _add_list(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lister = commands.add_parser(
        "list",
        help="show the hypotheses that `pytest --hypotheses=DIR` would run",
        description="Show the hypotheses that `pytest --hypotheses=DIR` would run, found the "
        "same way: DIR is a repository or one of its worktrees (every worktree is searched), "
        "or a folder holding worktrees; without DIR, the repository of the current folder.",
    )
    lister.add_argument("directory", nargs="?", type=Path, metavar="DIR")
    lister.set_defaults(handler=_list)


def _add_clean(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cleaner = commands.add_parser(
        "clean",
        help="remove the worktrees and branches that `new` created",
        description="Remove the worktrees and branches that `new` created (never others), "
        "then prune git's worktree list. DIR is read as `pytest --hypotheses=DIR` reads it: "
        "a repository or one of its worktrees, or a folder holding worktrees.",
    )
    cleaner.add_argument("directory", nargs="?", type=Path, metavar="DIR")
    cleaner.add_argument(
        "--force",
        action="store_true",
        help="also remove worktrees with uncommitted changes, and branches with new commits",
    )
    cleaner.set_defaults(handler=_clean)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo_parser = commands.add_parser(
        "demo",
        help="see it work: a small project with a planted bug and five hypotheses",
        description="Build a small git repository with a planted bug in a new temporary "
        "folder, create five hypothesis worktrees, and run `pytest --hypotheses` on them. "
        "The exit status is 0 when every hypothesis gets its planned verdict.",
    )
    demo_parser.add_argument(
        "--clean", action="store_true", help="remove the demo folder at the end"
    )
    demo_parser.set_defaults(handler=_demo)


def _add_merge(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    merger = commands.add_parser(
        "merge",
        help="merge the JSON reports of a run's shards into one report",
        description="Merge the JSON reports that `pytest --hypotheses-shard=K/N "
        "--hypotheses-report=...` wrote in each job of a CI matrix, print the combined "
        "summary and verdict, and write the merged report (the same layout as one run's) to "
        "OUT. Exit status as pytest's: 0 every hypothesis passed, 1 some did not, 5 none "
        f"found, {MERGE_REFUSED} the reports cannot be merged.",
    )
    merger.add_argument("reports", nargs="+", type=Path, metavar="REPORT")
    merger.add_argument(
        "-o", "--output", type=Path, metavar="OUT", help="write the merged report to OUT"
    )
    merger.add_argument(
        "--html",
        type=Path,
        metavar="PAGE",
        help="also write the merged report as a self-contained HTML page to PAGE",
    )
    merger.set_defaults(handler=_merge)


def _add_cache(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = commands.add_parser(
        "cache",
        help="manage the verdict cache of `pytest --hypotheses-reuse`",
        description="Manage the verdict cache that `pytest --hypotheses-reuse` keeps under "
        "git's common directory, shared by every worktree of the repository.",
    )
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    clear = actions.add_parser(
        "clear",
        help="remove every stored verdict",
        description="Remove every stored verdict of the repositories of DIR, read as "
        "`pytest --hypotheses=DIR` reads it; without DIR, the repository of the current folder.",
    )
    clear.add_argument("directory", nargs="?", type=Path, metavar="DIR")
    clear.set_defaults(handler=_cache_clear)


def _cache_clear(args: argparse.Namespace) -> int:
    for store in stores_of(worktree.path for worktree in find_worktrees(args.directory)):
        removed = store.clear()
        print(f"removed {removed} stored verdict{'' if removed == 1 else 's'} from {store.folder}")
    return 0


def _seconds(text: str) -> float:
    value = parse_number(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _size(text: str) -> str:
    if parse_limit(text) is None:
        raise argparse.ArgumentTypeError(f"expected {LIMIT_EXPECTED}, got {text!r}")
    return text


def _new(args: argparse.Namespace) -> int:
    request = Request(
        hypothesis_id=args.hypothesis_id,
        command=args.run,
        description=args.description,
        timeout=args.timeout,
        base=args.base,
        folder=args.dir,
        setup=args.setup,
        setup_timeout=args.setup_timeout,
        memory=args.memory,
        polarity=Polarity.CONFIRM if args.confirm else Polarity.DISPROVE,
    )
    created = create(Path.cwd(), request)
    for line in _describe_created(created):
        print(line)
    if request.setup is None:  # a setup step is where the worktree's code gets built
        for warning in _code_warnings(created.worktree):
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def _code_warnings(worktree: Path) -> Tuple[str, ...]:
    """What keeps the new worktree's scripts from testing its code as the project's
    development install would (a compiled extension it has no build of, say): told now,
    before any verdict depends on it."""
    installs = development_installs([worktree], os.environ)
    return installs.for_worktree(worktree).warnings if installs.locations else ()


def _merge(args: argparse.Namespace) -> int:
    command = ["merge", *map(str, args.reports)]
    if args.output is not None:
        command += ["--output", str(args.output)]
    if args.html is not None:
        command += ["--html", str(args.html)]
    try:
        merge.check_outputs(args.reports, [args.output, args.html])
        merged = merge.merge_files(args.reports, command)
        if args.output is not None:
            merge.write(args.output, merged)
        if args.html is not None:
            merge.write(args.html, merged, html=True)
    except merge.MergeError as error:
        _fail(str(error))
        return MERGE_REFUSED
    records = merged["hypotheses"]
    print(f"{_count(len(args.reports), 'report', 'reports')}, {len(records)} hypotheses")
    for line, _markup in summary_lines(records, Path.cwd()):
        print(line)
    if args.output is not None:
        print(f"merged report: {args.output}")
    if args.html is not None:
        print(f"merged HTML report: {args.html}")
    exit_status: int = merged["run"]["exit_status"]
    return exit_status


def _demo(args: argparse.Namespace) -> int:
    return demo.run(clean=args.clean)


def _describe_created(created: Created) -> List[str]:
    lines = [
        f"Created hypothesis {created.hypothesis_id!r} in {created.worktree}",
        f"  branch    {created.branch} (from commit {created.base[:12]})",
        f"  test      {created.script}",
        f"  metadata  {created.config}",
    ]
    if created.inherited_ids:
        names = ", ".join(created.inherited_ids)
        lines.append(f"  note      its base commit also has the tests of: {names}")
    lines.append("Edit the test as you like, then run every hypothesis: pytest --hypotheses")
    return lines


def _list(args: argparse.Namespace) -> int:
    found = discover(args.directory)
    where = "this repository" if args.directory is None else str(args.directory)
    if not found:
        print(f"No hypotheses in {where}: each worktree's hypotheses are {SCRIPT_PATTERN} files.")
        return 0
    hypotheses = _count(len(found), "hypothesis", "hypotheses")
    worktrees = _count(len({hypothesis.worktree for hypothesis in found}), "worktree", "worktrees")
    print(f"{hypotheses} in {worktrees} of {where}:")
    width = max(len(hypothesis.hypothesis_id) for hypothesis in found)
    for hypothesis in found:
        for line in _describe_found(hypothesis, width):
            print(line)
    return 0


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _describe_found(found: FoundHypothesis, width: int) -> List[str]:
    timeout = "" if found.timeout is None else f", timeout {found.timeout:g} s"
    memory = "" if found.memory is None else f", memory limit {format_size(found.memory)}"
    confirm = ", written to confirm" if found.polarity is Polarity.CONFIRM else ""
    limits = f"{timeout}{memory}{confirm}"
    branch = found.branch or "detached HEAD"
    lines = [f"  {found.hypothesis_id:<{width}}  {found.worktree} ({branch}{limits})"]
    indent = " " * (width + 4)
    if found.hypothesis is not None and found.hypothesis.description:
        lines.append(f"{indent}{found.hypothesis.description}")
    if found.setup is not None:
        lines.append(f"{indent}setup: {found.setup}")
    if found.problem is not None:
        lines.append(f"{indent}will be an error: {found.problem}")
    return lines


def _clean(args: argparse.Namespace) -> int:
    report = clean(args.directory, force=args.force)
    for line in _describe_clean(report):
        print(line)
    for failure in report.failures:
        _fail(failure)
    for entry in report.kept_dirty:
        shown = some_of(report.changes.get(entry.worktree, []))
        _fail(
            f"kept {entry.worktree}: it has uncommitted changes ({shown}; commit or discard "
            "them, or run clean --force to delete them)"
        )
    return FAILURE if report.kept_dirty or report.failures else 0


def _describe_clean(report: CleanReport) -> List[str]:
    lines = [_removed(entry, report.kept_branches) for entry in report.removed]
    for entry in report.kept_branches:
        lines.append(
            f"Kept branch {entry.branch}: it has commits made after `new` "
            f"(delete it with: git branch -D {entry.branch})"
        )
    if not (report.removed or report.kept_dirty or report.failures):
        lines.append("Nothing to clean: no worktree created by `pytest-hypotheses new` here.")
    return lines


def _removed(entry: Registered, kept_branches: List[Registered]) -> str:
    if entry in kept_branches:
        return f"Removed worktree {entry.worktree}"
    return f"Removed worktree {entry.worktree} and branch {entry.branch}"
