"""Collection under ``--hypotheses``: the hypotheses found under DIR instead of Python tests.

It replaces pytest's file walk but keeps the rest of a normal collection (collect reports,
``pytest_collection_modifyitems`` for ``-k``, ``--deselect`` and ``--lf``, and
``pytest_collection_finish``), so selection and ``--co`` behave as usual.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, Tuple, TypeVar

import pytest

from ..core.sizes import format_size
from ..finding.discovery import (
    DiscoveryError,
    FoundHypothesis,
    discover_in,
    find_worktrees,
)
from ..finding.git import Worktree
from ..finding.layout import METADATA_PATTERN, SCRIPT_PATTERN, config_path
from ..report.runsettings import header_words, memory_enforcement
from .items import HypothesesRoot, HypothesisItem, node_id
from .options import HypothesesSettings

#: How messages name the folder searched when ``--hypotheses`` has no value.
CURRENT_REPOSITORY = "the git repository of the current directory"


class HypothesisCollection:
    """The plugin part that finds the hypotheses and turns them into items."""

    def __init__(self, settings: HypothesesSettings) -> None:
        self._settings = settings
        self._worktrees: List[Worktree] = []
        self._found: List[FoundHypothesis] = []
        self._own_limits: List[str] = []

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
        selected = [item.found for item in session.items if isinstance(item, HypothesisItem)]
        self._own_limits = own_limits(selected, self._settings)
        hook.pytest_collection_finish(session=session)
        session.testscollected = len(session.items)
        return True

    def pytest_report_header(self) -> str:
        return report_header(self._settings)

    def pytest_report_collectionfinish(self) -> Optional[List[str]]:
        if not self._found:
            return nothing_found_message(self._settings.directory, self._worktrees)
        return self._own_limits or None

    def _discover(self) -> None:
        self._worktrees = worktrees_to_search(self._settings)
        self._found = discover_in(self._worktrees)


def select_named(found: List[FoundHypothesis], config: pytest.Config) -> List[FoundHypothesis]:
    """The hypotheses the command line's positional arguments name, as pytest's own collection
    does: a node id (``<worktree>::<id>``, as ``--co`` lists them) names one hypothesis, a
    folder every hypothesis of the worktrees inside it (or of the worktree whose scripts it
    holds), a script or a metadata file its hypothesis. Paths are taken from the current
    directory, as pytest takes them; a node id as pytest prints it is taken as it is too.
    Without such arguments (none given, or ``testpaths``), all of them; one that names
    nothing is a usage error, as in pytest."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return found
    base = config.invocation_params.dir
    selectors = [_Selector.parse(argument, base) for argument in config.args]
    places = [_Places.of(hypothesis, config.rootpath) for hypothesis in found]
    named = [[selector.names(place) for selector in selectors] for place in places]
    unmatched = [s.argument for i, s in enumerate(selectors) if not any(n[i] for n in named)]
    if unmatched:
        raise pytest.UsageError(
            f"not found: {', '.join(unmatched)} (under --hypotheses, a positional argument is "
            "a hypothesis's node id, <worktree>::<id> as --co lists them, a worktree or a "
            "folder holding worktrees, or a test script)"
        )
    return [hypothesis for hypothesis, names in zip(found, named) if any(names)]


@dataclass(frozen=True)
class _Places:
    """Where one hypothesis is, as arguments may name it: its node id, its worktree and
    scripts folder (resolved), and its script and metadata files (their folder resolved, not
    the files: a script that links to another hypothesis's is still its own)."""

    hypothesis_id: str
    nodeid: str
    worktree: Path
    folder: Path
    files: Tuple[Path, Path]

    @classmethod
    def of(cls, found: FoundHypothesis, rootpath: Path) -> _Places:
        worktree = _real(found.worktree)
        folder = _real(found.script.parent)
        metadata = config_path(found.worktree, found.hypothesis_id).name
        return cls(
            found.hypothesis_id,
            node_id(rootpath, found),
            worktree,
            folder,
            (folder / found.script.name, folder / metadata),
        )


@dataclass(frozen=True)
class _Selector:
    """One positional argument: the folder and the file it may mean and, for a node id, a
    hypothesis id."""

    argument: str
    folder: Path
    file: Path
    hypothesis_id: Optional[str]

    @classmethod
    def parse(cls, argument: str, base: Path) -> _Selector:
        location, separator, hypothesis_id = argument.partition("::")
        path = base / location
        file = _real(path.parent) / path.name
        return cls(argument, _real(path), file, hypothesis_id if separator else None)

    def names(self, place: _Places) -> bool:
        if self.argument == place.nodeid:
            return True
        if self.hypothesis_id is not None:
            return self.hypothesis_id == place.hypothesis_id and self.folder == place.worktree
        if self.file in place.files:
            return True
        return (
            self.folder in (place.worktree, place.folder) or self.folder in place.worktree.parents
        )


def worktrees_to_search(settings: HypothesesSettings) -> List[Worktree]:
    """The worktrees the settings name; a folder that cannot be searched is a usage error."""
    try:
        return find_worktrees(settings.directory)
    except DiscoveryError as error:
        raise pytest.UsageError(f"{settings.directory_source}: {error}") from None


def report_header(settings: HypothesesSettings, per_xdist_worker: bool = False) -> str:
    """The header line that shows where hypotheses are searched and the engine's settings;
    repeats and the stop condition only when set, as they change how a run goes
    (``per_xdist_worker``: see :func:`header_words`)."""
    where = settings.directory or CURRENT_REPOSITORY
    return f"hypotheses: {where} ({header_words(settings.falsification, per_xdist_worker)})"


def own_limits(found: Sequence[FoundHypothesis], settings: HypothesesSettings) -> List[str]:
    """The timeouts and memory limits the ``found`` hypotheses' metadata set, which the
    header's do not show: ``timeouts set by their metadata: 6 at 30s``."""
    lines = []
    timeouts = Counter(each.timeout for each in found if each.timeout is not None)
    if timeouts:
        lines.append(f"timeouts set by their metadata: {_counted(timeouts, '{:g}s'.format)}")
    memory = Counter(each.memory for each in found if each.memory is not None)
    if memory:
        counted = _counted(memory, format_size)
        enforced = "" if settings.falsification.memory_limit else f", {memory_enforcement()}"
        lines.append(f"memory limits set by their metadata: {counted}{enforced}")
    return lines


Limit = TypeVar("Limit", int, float)


def _counted(values: Mapping[Limit, int], shown: Callable[[Limit], str]) -> str:
    """``1 at 7.5s, 2 at 30s``: how many hypotheses have each value, smallest value first."""
    return ", ".join(f"{count} at {shown(value)}" for value, count in sorted(values.items()))


def nothing_found_message(directory: Optional[Path], worktrees: Sequence[Worktree]) -> List[str]:
    """Where the search looked and which file names it wanted, for an empty collection."""
    where = directory or CURRENT_REPOSITORY
    lines = [
        f"no hypothesis scripts found in {where}: looked for {SCRIPT_PATTERN} "
        f"(with optional metadata {METADATA_PATTERN}) in {len(worktrees)} worktree(s):"
    ]
    lines += [f"  {worktree.path}" for worktree in worktrees]
    return lines


def _real(path: Path) -> Path:
    """``path`` absolute, with its symbolic links resolved."""
    return Path(os.path.realpath(path))
