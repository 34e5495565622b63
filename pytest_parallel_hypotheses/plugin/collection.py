"""Collection under ``--hypotheses``: the hypotheses found under DIR instead of Python tests.

It replaces pytest's file walk but keeps the rest of a normal collection (collect reports,
``pytest_collection_modifyitems`` for ``-k``, ``--deselect`` and ``--lf``, and
``pytest_collection_finish``), so selection and ``--co`` behave as usual.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest

from ..finding.discovery import (
    DiscoveryError,
    FoundHypothesis,
    discover_in,
    find_worktrees,
)
from ..finding.git import Worktree
from ..finding.layout import METADATA_PATTERN, SCRIPT_PATTERN
from ..report.runsettings import header_words
from .items import HypothesesRoot, node_id
from .options import HypothesesSettings

#: How messages name the folder searched when ``--hypotheses`` has no value.
CURRENT_REPOSITORY = "the git repository of the current directory"


class HypothesisCollection:
    """The plugin part that finds the hypotheses and turns them into items."""

    def __init__(self, settings: HypothesesSettings) -> None:
        self._settings = settings
        self._worktrees: List[Worktree] = []
        self._found: List[FoundHypothesis] = []

    @pytest.hookimpl
    def pytest_collection(self, session: pytest.Session) -> bool:
        """Collect the hypotheses instead of walking the file system; returning True stops
        pytest's own collection."""
        self._discover()
        named = select_named(self._found, session.config)
        root = HypothesesRoot.for_session(session, named)
        session.items = list(session.genitems(root))
        hook = session.config.hook
        session.config.pluginmanager.check_pending()
        hook.pytest_collection_modifyitems(
            session=session, config=session.config, items=session.items
        )
        hook.pytest_collection_finish(session=session)
        session.testscollected = len(session.items)
        return True

    def pytest_report_header(self) -> str:
        return report_header(self._settings)

    def pytest_report_collectionfinish(self) -> Optional[List[str]]:
        if self._found:
            return None
        return nothing_found_message(self._settings.directory, self._worktrees)

    def _discover(self) -> None:
        self._worktrees = worktrees_to_search(self._settings)
        self._found = discover_in(self._worktrees)


def select_named(found: List[FoundHypothesis], config: pytest.Config) -> List[FoundHypothesis]:
    """The hypotheses the command line's positional arguments name, as pytest's own collection
    does: a node id (``<worktree>::<id>``, as ``--co`` lists them) names one hypothesis, a
    folder every hypothesis of the worktrees inside it, a script its hypothesis. Paths are
    taken from the current directory, or else from the rootdir, which node ids start from.
    Without such arguments (none given, or ``testpaths``), all of them; one that names
    nothing is a usage error, as in pytest."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return found
    bases = (config.invocation_params.dir, config.rootpath)
    selectors = [_Selector.parse(argument, bases) for argument in config.args]
    named = [[s.names(hypothesis, config.rootpath) for s in selectors] for hypothesis in found]
    unmatched = [s.argument for i, s in enumerate(selectors) if not any(n[i] for n in named)]
    if unmatched:
        raise pytest.UsageError(
            f"not found: {', '.join(unmatched)} (under --hypotheses, a positional argument is "
            "a hypothesis's node id, <worktree>::<id> as --co lists them, a worktree or a "
            "folder holding worktrees, or a test script)"
        )
    return [hypothesis for hypothesis, names in zip(found, named) if any(names)]


@dataclass(frozen=True)
class _Selector:
    """One positional argument: the paths it may mean and, for a node id, a hypothesis id."""

    argument: str
    paths: Tuple[Path, ...]
    hypothesis_id: Optional[str]

    @classmethod
    def parse(cls, argument: str, bases: Sequence[Path]) -> _Selector:
        location, separator, hypothesis_id = argument.partition("::")
        paths = tuple(_real(base / location) for base in bases)
        return cls(argument, paths, hypothesis_id if separator else None)

    def names(self, found: FoundHypothesis, rootpath: Path) -> bool:
        if node_id(rootpath, found) == self.argument:
            return True
        worktree = _real(found.worktree)
        if self.hypothesis_id is not None:
            return self.hypothesis_id == found.hypothesis_id and worktree in self.paths
        return any(
            path in (worktree, _real(found.script)) or path in worktree.parents
            for path in self.paths
        )


def _real(path: Path) -> Path:
    """``path`` absolute, with its symbolic links resolved."""
    return Path(os.path.realpath(path))


def worktrees_to_search(settings: HypothesesSettings) -> List[Worktree]:
    """The worktrees the settings name; a folder that cannot be searched is a usage error."""
    try:
        return find_worktrees(settings.directory)
    except DiscoveryError as error:
        raise pytest.UsageError(f"{settings.directory_source}: {error}") from None


def report_header(settings: HypothesesSettings) -> str:
    """The header line that shows where hypotheses are searched and the engine's settings;
    repeats and the stop condition only when set, as they change how a run goes."""
    where = settings.directory or CURRENT_REPOSITORY
    return f"hypotheses: {where} ({header_words(settings.falsification)})"


def nothing_found_message(directory: Optional[Path], worktrees: Sequence[Worktree]) -> List[str]:
    """Where the search looked and which file names it wanted, for an empty collection."""
    where = directory or CURRENT_REPOSITORY
    lines = [
        f"no hypothesis scripts found in {where}: looked for {SCRIPT_PATTERN} "
        f"(with optional metadata {METADATA_PATTERN}) in {len(worktrees)} worktree(s):"
    ]
    lines += [f"  {worktree.path}" for worktree in worktrees]
    return lines
