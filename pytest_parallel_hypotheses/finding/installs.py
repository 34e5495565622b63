"""The project's development installs: which import locations of the environment that runs
the scripts lie in the hypotheses' repository, and how each maps into a worktree.

An editable install points the environment at one checkout, so every worktree's script would
import that checkout's code and test the wrong thing. What an environment imports from where
is written in files: PEP 610 ``direct_url.json``, ``.pth`` path entries, the finder modules of
setuptools and ``editables`` (hatchling, PDM) with their mappings, and legacy ``.egg-link``.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import site
import sys
from dataclasses import dataclass, field, replace
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES
from importlib.metadata import PathDistribution
from pathlib import Path
from typing import (
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
)
from urllib.parse import unquote, urlparse

from ..core.listing import some_of
from ..core.tested import OWN_VENV_ADVICE, StaleBuilds
from .git import GitError, list_worktrees, run_git
from .layout import WORKTREE_VENV

#: Entries walked at most per location when looking for extension modules built in place.
_WALK_LIMIT = 20000
_IMPORT_LINE = re.compile(r"^import[ \t]+([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class InstalledLocation:
    """One import location of a development install, inside one checkout of the repository."""

    distribution: str
    #: The location as the environment imports it (a ``sys.path`` entry).
    source: Path
    #: The checkout that holds it, and every checkout of the same repository.
    checkout: Path
    repository: FrozenSet[Path]
    #: The folders under ``source`` that hold the installed code (``source`` itself for a path
    #: entry; the mapped packages for a finder).
    code: Tuple[Path, ...]
    #: Extension modules under ``code``: built in place, never committed.
    extensions: Tuple[Path, ...] = ()
    #: Python modules under ``code`` that git ignores in the checkout: written there by a
    #: build or an install (the version file of setuptools-scm or hatch-vcs), so in no
    #: worktree that was not built too.
    generated: Tuple[Path, ...] = ()

    @property
    def relative(self) -> Path:
        return self.source.relative_to(self.checkout)

    @property
    def mapped_builds(self) -> Tuple[Path, ...]:
        """The top-level extension modules a finder maps to their files (pyrsistent's
        ``pvectorc``): builds in place, never committed, like :attr:`extensions`."""
        return tuple(code for code in self.code if code.name.endswith(_BUILT))


@dataclass(frozen=True)
class WorktreeImports:
    """What a worktree's scripts import instead: the locations, and what could not move."""

    locations: Tuple[Tuple[InstalledLocation, Path], ...] = ()
    warnings: Tuple[str, ...] = ()
    #: The dotted names of the generated modules the worktree's packages lack.
    missing_modules: Tuple[str, ...] = ()
    #: The worktree's ``src/`` packages, which nothing installed points its scripts at.
    unreachable_packages: Tuple[str, ...] = ()
    #: The dotted names of the extension modules built in place in the installed checkout
    #: that the worktree's packages lack.
    unbuilt_extensions: Tuple[str, ...] = ()


class Listings:
    """The folders one look at a run's worktrees lists, each listed once: every worktree of
    a run asks about the same other checkouts (a run of N worktrees would otherwise list N²
    folders), and the two questions about a worktree, asked one after the other, about the
    same folders of it. What is kept is bounded: the modules built in each folder of the
    checkouts, and the last worktree's folders."""

    def __init__(self) -> None:
        self._last: Tuple[Optional[Path], List[_ModuleFolder]] = (None, [])
        self._holders: Dict[Tuple[FrozenSet[Path], str, bool], Dict[str, Set[Path]]] = {}

    def module_folders(self, worktree: Path) -> List[_ModuleFolder]:
        """The folders of the worktree that hold its modules (:func:`_module_folders`)."""
        if self._last[0] != worktree:
            self._last = (worktree, list(_module_folders(worktree)))
        return self._last[1]

    def built_elsewhere(
        self, root: Path, checkouts: FrozenSet[Path], inside: str, *, tagged: bool = False
    ) -> Set[str]:
        """The modules built in the folder ``inside`` of one of the ``checkouts`` other than
        ``root``; with ``tagged``, only builds named as only an extension module is."""
        key = (checkouts, inside, tagged)
        holders = self._holders.get(key)
        if holders is None:
            holders = self._holders[key] = {}
            for checkout in checkouts:
                names = _files(checkout / inside)
                if tagged:
                    names = [name for name in names if name.endswith(_TAGGED)]
                for module in _built_modules(names):
                    holders.setdefault(module, set()).add(checkout)
        return {module for module, where in holders.items() if where != {root}}


@dataclass(frozen=True)
class DevelopmentInstalls:
    """The development installs of one run's environment that come from its repositories."""

    locations: Tuple[InstalledLocation, ...] = ()
    #: Run-wide problems: plain copies of the project, mappings no import path reproduces.
    warnings: Tuple[str, ...] = ()
    #: Each known checkout root and the roots of its repository.
    repositories: Mapping[Path, FrozenSet[Path]] = field(default_factory=dict)
    #: The site directories of the environment: a build of the project installed there
    #: (a plain copy) is one that a worktree without its own build does not run.
    sites: Tuple[Path, ...] = ()
    #: The environments read (see :func:`development_installs`), resolved.
    environments: Tuple[Path, ...] = ()
    #: The runner's virtual environment, when it holds a development install of the project
    #: and the scripts' ``python3`` would be one of no virtual environment (pytest started by
    #: its path, the environment not activated): the scripts run with it activated.
    runner_venv: Optional[Path] = None
    #: The folders of the checkouts, listed once for the worktrees of one look.
    listings: Listings = field(default_factory=Listings, compare=False)

    def afresh(self) -> DevelopmentInstalls:
        """The same installs, for a look at worktrees after some were built."""
        return replace(self, listings=Listings())

    def for_worktree(self, worktree: Path) -> WorktreeImports:
        """The same locations inside ``worktree``, with a warning for each that is missing
        there or lacks an extension module built in place in the installed checkout."""
        root, project = self._project_in(worktree)
        if root is None or not project:
            root = worktree if root is None else root
            return _uninstalled(root, self._checkouts(root), self.sites, self.listings)
        moved: List[Tuple[InstalledLocation, Path]] = []
        warnings: List[str] = []
        lacking: List[str] = []
        unbuilt_names: List[str] = []
        for location in project:
            target = root / location.relative
            absent = [code for code in location.code if not _moved(code, location, root).exists()]
            mapped = location.mapped_builds
            top_level = [code for code in absent if code in mapped]
            missing = [code for code in absent if code not in top_level]  # unbuilt, not moved
            if missing:
                warnings.append(_missing_warning(location, root, missing))
                continue
            moved.append((location, target))
            names = {
                module: _extension_name(module, location.source) for module in location.extensions
            }
            names.update((module, _module_stem(module)) for module in top_level)
            built = {names[m] for m in location.extensions if _moved(m, location, root).exists()}
            unbuilt = [module for module in location.extensions if names[module] not in built]
            unbuilt += top_level
            if unbuilt:  # no build of that name at all (one for another Python counts)
                warnings.append(_unbuilt_warning(location, root, unbuilt))
                unbuilt_names += [names[module] for module in unbuilt]
            ungenerated = [g for g in location.generated if _lacks(root, g, location)]
            if ungenerated:
                warnings.append(_ungenerated_warning(location, root, ungenerated))
                lacking += [_dotted(module, location.source) for module in ungenerated]
        unsourced = unbuilt_from_source(root, self._checkouts(root), self.sites, self.listings)
        fresh = {name: source for name, source in unsourced.items() if name not in unbuilt_names}
        if fresh:
            warnings.append(_unbuilt_source_warning(root, fresh))
        return WorktreeImports(
            tuple(moved),
            tuple(warnings),
            tuple(lacking),
            unbuilt_extensions=tuple(dict.fromkeys([*unbuilt_names, *fresh])),
        )

    def stale_builds(self, worktree: Path) -> Optional[StaleBuilds]:
        """The worktree's in-place builds of extension modules, in each top-level package
        where a native source that the worktree tracks there (C, C++, Cython, Rust, or a
        module's own ``.py`` that mypyc or Cython compiles) changed after every build of that
        package: built, then the source changed (a commit, a checkout, an edit), and nothing
        built again. The builds are those of the modules the installed checkout has; where
        no install in this environment is of the worktree's repository, those found in the
        worktree's own packages, which its own ``.venv``, or a Python importing from the
        worktree, runs. A build after the change vouches for its package (a build tool
        leaves untouched what the change did not concern). Times compare exactly: an
        in-place copy that cut its time to the second, as setuptools' does, counts as older
        than a source saved later in that second, which a build may or may not have seen."""
        root, project = self._project_in(worktree)
        if root is None or not project:
            return _stale_packages(worktree, _builds_in_packages(self.listings, worktree), worktree)
        packages: PackageBuilds = {}
        for location in project:
            top = root / location.relative
            for module in (*location.extensions, *location.mapped_builds):
                path = _moved(module, location, root)
                when = _file_time(path)
                if when is not None:
                    package = top / path.relative_to(top).parts[0] if path.parent != top else top
                    packages.setdefault(package, []).append(
                        (_extension_name(path, top), path, when)
                    )
        return _stale_packages(root, packages, worktree)

    def venv_imports(self, worktree: Path, venv: Path) -> WorktreeImports:
        """What the worktree's own environment leaves its scripts without: an install of
        the project that the runner's environment has in development mode (an unfinished
        setup step leaves none), and builds of the extension modules whose source the
        worktree holds beside no build, where the environment has them installed (a plain
        ``pip install .`` there: a script run in the worktree imports its package, which
        runs a pure-Python fallback)."""
        root, project = self._project_in(worktree)
        root = worktree if root is None else root
        sites = _venv_sites(venv)
        unbuilt = unbuilt_from_source(root, self._checkouts(root), sites, self.listings)
        warnings = [_unbuilt_source_warning(root, unbuilt)] if unbuilt else []
        if project and not _installs_from(sites, root, self.repositories):
            names = ", ".join(sorted({location.distribution for location in project}))
            warnings.insert(
                0,
                f"the worktree's own environment {venv} holds no install of {names} from the "
                f"worktree (an unfinished setup step?), so its scripts do not test the "
                f"worktree's code; install it there ({venv}/bin/pip install -e ...) or remove "
                f"{venv}",
            )
        return WorktreeImports(warnings=tuple(warnings), unbuilt_extensions=tuple(unbuilt))

    def _checkouts(self, root: Path) -> FrozenSet[Path]:
        """The checkouts of the repository that ``root`` is a checkout of (none if unknown)."""
        return self.repositories.get(root, frozenset())

    def _project_in(self, worktree: Path) -> Tuple[Optional[Path], List[InstalledLocation]]:
        """The checkout root holding ``worktree`` and the install locations of its
        repository (None and none for a worktree of no known repository)."""
        known = self.repositories  # none: no resolving of the path
        root = _checkout_of(worktree.resolve(), known) if known else None
        if root is None:
            return None, []
        return root, [location for location in self.locations if root in location.repository]


#: The builds of the extension modules of each top-level package of a checkout: the module's
#: dotted name, its file and that file's time.
PackageBuilds = Dict[Path, List[Tuple[str, Path, float]]]


def _stale_packages(root: Path, packages: PackageBuilds, worktree: Path) -> Optional[StaleBuilds]:
    """The builds of the ``packages`` of the checkout ``root`` that a tracked native source
    of their package changed after (see :meth:`DevelopmentInstalls.stale_builds`), as the
    builds of ``worktree``."""
    stale: List[str] = []
    last: Optional[Tuple[str, float]] = None
    own = {
        package: _tracked_native_sources(root, package)
        for package in packages
        if _is_package(str(package.parent), package.name)
    }
    outside: Optional[Set[str]] = None
    for package, builds in packages.items():
        tracked = own.get(package, set())
        if tracked == set():  # a top-level module, or a package whose sources are elsewhere
            outside = _sources_outside(root, list(own)) if outside is None else outside
            tracked = outside  # (ujson's python/ and lib/)
        if tracked is None:
            continue
        built_at = max(when for *_, when in builds)
        change = _newest_native_source(root, tracked, [path for _, path, _ in builds])
        if change is None or built_at >= change[1]:
            change = _ungenerated_cython(root, tracked, built_at)
        if change is None:
            continue
        stale += [name for name, _, _ in builds]
        last = change if last is None or change[1] > last[1] else last
    if last is None:
        return None
    return StaleBuilds(tuple(dict.fromkeys(stale)), last[0], last[1], str(worktree))


def _sources_outside(root: Path, packages: List[Path]) -> Optional[Set[str]]:
    """The native sources the checkout tracks outside the folders of ``packages`` (those with
    sources and builds of their own): where the sources of a top-level module, or of a
    package that holds none, may be (``csrc/``, PyYAML's ``_yaml.pyx`` beside ``lib/yaml``,
    ujson's ``python/`` and ``lib/``); None if git cannot tell. Any of them may go into the
    build, which only its ``setup.py`` says: all count."""
    tracked = _tracked_native_sources(root, root)
    if tracked is None:
        return None
    inside = [package.relative_to(root).as_posix() + "/" for package in packages]
    return {name for name in tracked if not name.startswith(tuple(inside))}


def _builds_in_packages(listings: Listings, worktree: Path) -> PackageBuilds:
    """The extension modules built in place in the worktree: in its regular packages, by
    top-level package, and top-level ones, by the base they are in (:data:`_BASE_FOLDERS`)."""
    packages: PackageBuilds = {}
    for folder in listings.module_folders(worktree):
        for name in folder.files:
            if name.endswith(_BUILT):
                path = Path(folder.path, name)
                when = _file_time(path)
                if when is not None:
                    built = (_extension_name(path, Path(folder.base)), path, when)
                    packages.setdefault(Path(folder.top), []).append(built)
    return packages


def _installs_from(
    sites: Iterable[Path], root: Path, known: Mapping[Path, FrozenSet[Path]]
) -> bool:
    """True when a virtual environment's ``sites`` hold a distribution installed from the
    checkout ``root`` (PEP 610 ``direct_url.json``, which pip writes for every install from
    a folder)."""
    records = (record for site in sites for record in site.glob("*.dist-info"))
    for record in records:
        installed = _direct_url_folder(record / "direct_url.json")
        if installed is not None and _checkout_of(installed[0].resolve(), known) == root:
            return True
    return False


def worktree_venv(worktree: Path, name: str = WORKTREE_VENV) -> Optional[Path]:
    """The worktree's own virtual environment (``name`` holding a ``pyvenv.cfg``), if any."""
    venv = os.path.join(worktree, name)  # strings: this look runs per worktree of a run
    return Path(venv) if os.path.isfile(os.path.join(venv, "pyvenv.cfg")) else None


def development_installs(
    worktrees: Iterable[Path], environ: Mapping[str, str]
) -> DevelopmentInstalls:
    """The development installs, from the repositories of ``worktrees``, of the interpreter
    running this code and of the virtual environments first on ``environ``'s ``PATH``."""
    repositories = _repositories(worktrees)
    pythons = _path_pythons(environ)
    environments = _environments(environ, pythons)
    sites = tuple(_site_directories(environments))
    if not repositories:
        return DevelopmentInstalls(sites=sites, environments=tuple(environments))
    scan = _Scan(repositories, environments)
    own = set(_site_directories(environments[:1]))
    holds = False
    for directory in sites:
        before = len(scan.locations)
        scan.read(directory)
        holds = holds or (directory in own and len(scan.locations) > before)
    scan.finish()
    return DevelopmentInstalls(
        tuple(scan.locations),
        tuple(scan.warnings),
        repositories,
        sites,
        tuple(environments),
        _not_activated(environ, pythons) if holds else None,
    )


def _not_activated(environ: Mapping[str, str], pythons: Iterable[Optional[Path]]) -> Optional[Path]:
    """The runner's virtual environment, when one of ``pythons`` (the ``python3`` and
    ``python`` of ``environ``'s ``PATH``) is of no virtual environment: a development install
    redirected into a worktree is then of no use to the scripts, which would run the
    worktree's code on a Python without the project's dependencies. In new-user trials on
    attrs and marshmallow, a runner started by its path (``.venv/bin/pytest``) refuted
    working fixes so."""
    if sys.prefix == sys.base_prefix or environ.get("VIRTUAL_ENV") or environ.get("CONDA_PREFIX"):
        return None  # not a virtual environment, or the user activated one (conda's too)
    return None if all(map(_is_venv, pythons)) else Path(sys.prefix)


def _repositories(worktrees: Iterable[Path]) -> Dict[Path, FrozenSet[Path]]:
    """Every checkout root of the repositories the worktrees belong to."""
    repositories: Dict[Path, FrozenSet[Path]] = {}
    plain: Set[str] = set()
    for worktree in _real_paths(worktrees):
        if _checkout_of(worktree, repositories) is not None:
            continue
        if not _may_be_in_a_checkout(worktree, plain) or not worktree.is_dir():
            continue  # asking git would cost a process per plain folder
        try:
            roots = frozenset(entry.path.resolve() for entry in list_worktrees(worktree))
        except GitError:
            continue  # not a git checkout: nothing of it can be installed from a repository
        repositories.update(dict.fromkeys(roots, roots))
    return repositories


def _real_paths(paths: Iterable[Path]) -> Set[Path]:
    """The paths resolved, those that are no link in a folder resolved once for all: a run's
    worktrees are mostly siblings, and resolving each path anew looks at every folder above
    it again."""
    folders: Dict[str, str] = {}
    real: Set[Path] = set()
    for path in map(os.fspath, paths):
        folder, name = os.path.split(path)
        if name in ("", os.curdir, os.pardir) or os.path.islink(path):
            real.add(Path(os.path.realpath(path)))
            continue
        if folder not in folders:
            folders[folder] = os.path.realpath(folder)
        real.add(Path(folders[folder], name))
    return real


def _may_be_in_a_checkout(path: Path, plain: Set[str]) -> bool:
    """Whether git may find a repository at ``path``: a ``.git`` there or in a folder above
    (git runs without the ``GIT_*`` variables that could point it elsewhere). ``plain``
    gathers the folders known to have none up to the root: siblings look only once."""
    walked = []
    folder, above = str(path), os.path.dirname(path)
    while folder not in plain:
        if os.path.lexists(os.path.join(folder, ".git")):
            return True
        walked.append(folder)
        if folder == above:
            break  # the root
        folder, above = above, os.path.dirname(above)
    plain.update(walked)
    return False


def _checkout_of(path: Path, repositories: Mapping[Path, FrozenSet[Path]]) -> Optional[Path]:
    """The deepest known checkout root that holds ``path`` (worktrees may nest): looked up
    from ``path`` upwards, since every worktree of a large run asks."""
    if not repositories:
        return None
    return next((folder for folder in (path, *path.parents) if folder in repositories), None)


def _path_pythons(environ: Mapping[str, str]) -> List[Optional[Path]]:
    """The prefixes of the ``python3`` and ``python`` that ``environ``'s ``PATH`` finds (the
    folder above their ``bin``; None where it finds none): what a script's ``python`` is."""
    path = environ.get("PATH", os.defpath)
    found = (shutil.which(name, path=path) for name in ("python3", "python"))
    return [None if executable is None else Path(executable).parent.parent for executable in found]


def _is_venv(prefix: Optional[Path]) -> bool:
    """Whether ``prefix`` is a virtual environment's (None: there is no such Python)."""
    return prefix is not None and (prefix / "pyvenv.cfg").is_file()


def _environments(environ: Mapping[str, str], pythons: Iterable[Optional[Path]]) -> List[Path]:
    """This interpreter's prefix, then the virtual environments a script's ``python`` may be
    (``pythons``: those of ``PATH``)."""
    found = [Path(sys.prefix).resolve()]
    named = environ.get("VIRTUAL_ENV")
    candidates = [Path(named)] if named else []
    for candidate in [*candidates, *(python for python in pythons if python is not None)]:
        resolved = candidate.resolve() if _is_venv(candidate) else None
        if resolved is not None and resolved not in found:
            found.append(resolved)
    return found


def _site_directories(environments: List[Path]) -> List[Path]:
    directories = [Path(d) for d in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        directories.append(Path(site.getusersitepackages()))
    for venv in environments[1:]:
        directories += _venv_sites(venv)
    unique: Dict[Path, None] = {}
    for directory in directories:
        if directory.is_dir():
            unique.setdefault(directory.resolve())
    return list(unique)


def _venv_sites(venv: Path) -> List[Path]:
    """The site directories of a virtual environment."""
    return [*sorted(venv.glob("lib*/python3*/site-packages")), *venv.glob("Lib/site-packages")]


class _Scan:
    """The reading of site directories: locations found, and what to warn about."""

    def __init__(
        self, repositories: Mapping[Path, FrozenSet[Path]], environments: List[Path]
    ) -> None:
        self._repositories = repositories
        self._environments = environments
        self._owners: Dict[Path, str] = {}
        self._editable: Dict[str, Path] = {}
        self._seen: Set[Tuple[Path, Tuple[Path, ...]]] = set()
        self._warned: Set[str] = set()
        self.locations: List[InstalledLocation] = []
        self.warnings: List[str] = []

    def read(self, directory: Path) -> None:
        for dist_info in sorted(directory.glob("*.dist-info")):
            self._read_distribution(dist_info)
        for egg_link in sorted(directory.glob("*.egg-link")):  # before easy-install.pth:
            self._read_egg_link(egg_link)  # it names the distribution
        for pth in sorted(directory.glob("*.pth")):
            self._read_pth(directory, pth)

    def _read_distribution(self, dist_info: Path) -> None:
        installed = _direct_url_folder(dist_info / "direct_url.json")
        if installed is None or self._inside(installed[0]) is None:
            return
        source, editable = installed
        name = PathDistribution(dist_info).metadata["Name"] or dist_info.stem
        if not editable:
            self.warnings.append(_copy_warning(name, source))
            return
        self._editable[name] = source
        for line in _lines(dist_info / "RECORD"):
            self._owners[(dist_info.parent / line.split(",")[0]).resolve()] = name

    def _read_pth(self, directory: Path, pth: Path) -> None:
        owner = self._owners.get(pth.resolve(), pth.name)
        for line in _lines(pth):
            imported = _IMPORT_LINE.match(line)
            if imported is not None:
                finder = directory / f"{imported.group(1)}.py"
                for name, path in _finder_mapping(finder):
                    self._add_mapped(self._owners.get(finder.resolve(), owner), name, path)
            elif not line.startswith("#"):
                self._add_path(owner, directory / line)

    def _read_egg_link(self, egg_link: Path) -> None:
        lines = _lines(egg_link)
        if lines:
            self._add_path(egg_link.stem, egg_link.parent / lines[0])

    def _add_path(self, owner: str, entry: Path) -> None:
        if entry.is_dir():
            self._add(owner, entry.resolve(), (entry.resolve(),))

    def _add_mapped(self, owner: str, name: str, path: Path) -> None:
        """A finder's ``name -> path``: its import root is ``path`` minus the name's parts."""
        parts = name.split(".")
        code = path.parent if path.name == "__init__.py" else _existing_module(path)
        if code is None:
            return  # a stale mapping: nothing imports from it
        stem = _module_stem(code) if code.suffix in _SUFFIXES else code.name
        tail = [*code.parent.parts[len(code.parent.parts) - len(parts) + 1 :], stem]
        if self._inside(code) is None:
            return  # not the project's code
        if tail != parts:
            self.warnings.append(_mapping_warning(owner, name, code))
            self._warned.add(owner)  # said once: no second warning that nothing was read
            return
        self._add(owner, code.parents[len(parts) - 1].resolve(), (code,))

    def _add(self, owner: str, source: Path, code: Tuple[Path, ...]) -> None:
        checkout = self._inside(source)
        if checkout is None or (source, code) in self._seen:
            return
        self._seen.add((source, code))
        repository = self._repositories[checkout]
        built = tuple(_extensions(code))
        generated = tuple(m for m in _generated_modules(checkout, code) if _importable(m, source))
        self.locations.append(
            InstalledLocation(owner, source, checkout, repository, code, built, generated)
        )

    def _inside(self, path: Path) -> Optional[Path]:
        """The checkout holding ``path``, unless it lies in an environment (a ``.venv`` in
        the checkout is not the project's code)."""
        resolved = path.resolve()
        if any(env == resolved or env in resolved.parents for env in self._environments):
            return None
        return _checkout_of(resolved, self._repositories)

    def finish(self) -> None:
        """Warn of each editable install of the project whose import locations none of the
        known mechanisms showed (a build backend's own loader, for example)."""
        found = {location.distribution for location in self.locations}
        for name, source in self._editable.items():
            if name not in found and name not in self._warned:
                self._warned.add(name)
                self.warnings.append(_unread_warning(name, source))


_SUFFIXES = tuple(SOURCE_SUFFIXES) + tuple(EXTENSION_SUFFIXES)


def _direct_url_folder(path: Path) -> Optional[Tuple[Path, bool]]:
    """The local folder a distribution was installed from, and whether it is editable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = urlparse(str(data.get("url", "")))
    dir_info = data.get("dir_info")
    if url.scheme != "file" or not isinstance(dir_info, dict):
        return None
    return Path(unquote(url.path)), bool(dir_info.get("editable", False))


def _finder_mapping(finder: Path) -> List[Tuple[str, Path]]:
    """The ``name -> path`` pairs of a setuptools (``MAPPING``) or ``editables``
    (``map_module``) finder module; none for any other module."""
    try:
        tree = ast.parse(finder.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return []
    pairs: List[Tuple[str, Path]] = []
    for node in ast.walk(tree):
        pairs += _setuptools_mapping(node) + _editables_mapping(node)
    return pairs


def _setuptools_mapping(node: ast.AST) -> List[Tuple[str, Path]]:
    targets: List[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    if not any(isinstance(t, ast.Name) and t.id == "MAPPING" for t in targets):
        return []
    try:
        mapping = ast.literal_eval(value)
    except ValueError:
        return []
    if not isinstance(mapping, dict):
        return []
    return [(str(name), Path(str(path))) for name, path in mapping.items()]


def _editables_mapping(node: ast.AST) -> List[Tuple[str, Path]]:
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "map_module"
        and len(node.args) == 2
        and all(isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in node.args)
    ):
        return []
    name, path = (arg.value for arg in node.args if isinstance(arg, ast.Constant))
    return [(str(name), Path(str(path)))]


def _existing_module(path: Path) -> Optional[Path]:
    """The package folder or module file a finder maps a name to (setuptools leaves out
    a module's suffix), or None if nothing is there."""
    if path.exists():
        return path
    return next((p for p in map(path.with_name, _module_names(path.name)) if p.exists()), None)


def _module_names(stem: str) -> List[str]:
    return [stem + suffix for suffix in _SUFFIXES]


def _lines(path: Path) -> List[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def _moved(path: Path, location: InstalledLocation, root: Path) -> Path:
    return root / path.relative_to(location.checkout)


def _lacks(root: Path, module: Path, location: InstalledLocation) -> bool:
    """True when the worktree has the module's package but not the module (a package the
    worktree does not have at all is gone from its commit: nothing to say of its modules)."""
    there = _moved(module, location, root)
    return there.parent.is_dir() and not there.exists()


def _importable(module: Path, source: Path) -> bool:
    """True for a module at the import location's top or inside a package (not a script in
    a folder such as ``docs``)."""
    return module.parent == source or (module.parent / "__init__.py").is_file()


def _dotted(module: Path, source: Path) -> str:
    """The name ``import`` knows ``module`` by, from its import location ``source``."""
    parts = module.relative_to(source).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _extension_name(module: Path, source: Path) -> str:
    """The name ``import`` knows an extension module by: ``pkg/_speedups.cpython-311-x86_64-
    linux-gnu.so`` is ``pkg._speedups``, whatever Python it was built for (its name has no
    dot of its own)."""
    parts = module.relative_to(source).parent.parts
    return ".".join([*parts, _module_stem(module)])


def _module_stem(module: Path) -> str:
    """A module file's name without its suffixes: ``_speedups.cpython-311-x86_64-linux-gnu.so``
    is ``_speedups`` (a module's name has no dot of its own)."""
    return module.name.split(".", 1)[0]


#: The sources of compiled extension modules, as git pathspecs (a ``*`` also matches ``/``).
_NATIVE_SOURCES = (
    "*.c",
    "*.h",
    "*.cc",
    "*.hh",
    "*.cpp",
    "*.hpp",
    "*.cxx",
    "*.hxx",
    "*.inc",
    "*.ipp",
    "*.pyx",
    "*.pxd",
    "*.pxi",
    "*.rs",
)


def _file_time(path: Path) -> Optional[float]:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _tracked_native_sources(
    root: Path, package: Path, patterns: Iterable[str] = _NATIVE_SOURCES
) -> Optional[Set[str]]:
    """The native sources (by default; else the files ``patterns`` name) the worktree tracks
    under ``package`` (paths from ``root``), from one git call; None if git cannot tell."""
    scope = package.relative_to(root).as_posix()
    specs = [pattern if scope == "." else f"{scope}/{pattern}" for pattern in patterns]
    try:
        listed = run_git(["ls-files", "-z", "--", *specs], root)
    except GitError:
        return None
    return {name for name in listed.split("\0") if name}


def _newest_native_source(
    root: Path, tracked: Iterable[str], builds: Iterable[Path]
) -> Optional[Tuple[str, float]]:
    """The source that changed last, and when: the ``tracked`` native sources, and the
    ``.py`` module of the same name beside each build (None if there is none)."""
    names = list(tracked)
    names += [
        os.fspath(companion.relative_to(root))
        for companion in (build.with_name(f"{_module_stem(build)}.py") for build in builds)
        if companion.is_file()
    ]
    newest: Optional[Tuple[str, float]] = None
    for name in names:
        when = _file_time(root / name)
        if when is not None and (newest is None or when > newest[1]):
            newest = (name, when)
    return newest


#: How the C or C++ file that Cython generates from a ``.pyx`` begins.
_CYTHON_MARK = b"/* Generated by Cython"


def _ungenerated_cython(
    root: Path, tracked: Set[str], built_at: float
) -> Optional[Tuple[str, float]]:
    """A ``.pyx`` among the ``tracked`` native sources that changed after the C file Cython
    generated from it beside it, and the time of the builds: a build compiles that file, so
    one made after the change still runs the code of before it (msgpack's ``setup.py``
    compiles the generated file it finds, without running Cython again). Only a build newer
    than the ones there now vouches for the package (one made once Cython generated the
    file again)."""
    for name in (name for name in tracked if name.endswith(".pyx")):
        source = root / name
        generated = [source.with_suffix(ext) for ext in (".c", ".cpp")]
        # a tracked one is what the commit holds: a checkout writes it and the .pyx in
        # either order, and only a change of the .pyx since would make it old
        untracked = [path for path in generated if path.relative_to(root).as_posix() not in tracked]
        if any(_generated_before(source, path) for path in untracked):
            return name, math.nextafter(built_at, math.inf)  # the builds there now are old
    return None


def _generated_before(source: Path, generated: Path) -> bool:
    """True if ``generated`` is what Cython made of ``source`` before it last changed."""
    changed, made = _file_time(source), _file_time(generated)
    if changed is None or made is None or made >= changed:
        return False
    try:
        with generated.open("rb") as opened:
            return opened.read(len(_CYTHON_MARK)) == _CYTHON_MARK
    except OSError:
        return False


def _generated_modules(checkout: Path, code: Iterable[Path]) -> Iterator[Path]:
    """The Python modules under the installed code that git ignores in the checkout, from one
    git call per location and run (a folder git ignores whole, a ``.venv`` or ``build``, is
    one entry, not its files)."""
    folders = [os.fspath(folder.relative_to(checkout)) for folder in code]
    command = ["ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"]
    try:
        listed = run_git([*command, "--", *folders], checkout)
    except GitError:
        return  # not a git checkout after all: nothing known to be generated
    for name in listed.split("\0"):
        if name.endswith(tuple(SOURCE_SUFFIXES)):
            yield checkout / name


def _extensions(code: Iterable[Path]) -> Iterator[Path]:
    """Extension modules under the installed code, read once per run (a bounded walk)."""
    seen = 0
    for folder_of_code in code:
        for folder, subfolders, files in os.walk(folder_of_code):
            subfolders[:] = [  # what import can reach: build/lib.linux-x86_64-cpython-311
                name  # holds copies of the builds, under a name no package has
                for name in subfolders
                if name.isidentifier()
                and name not in ("__pycache__", "node_modules")
                and not (Path(folder) / name / "pyvenv.cfg").exists()
            ]
            seen += len(files) + len(subfolders)
            for name in files:
                if name.endswith(tuple(EXTENSION_SUFFIXES)):
                    yield Path(folder) / name
            if seen > _WALK_LIMIT:
                return


#: What to do when an install cannot be mirrored: a worktree venv is never redirected.


def _copy_warning(name: str, source: Path) -> str:
    return (
        f"{name} is installed from {source} as a plain copy (not editable): a script imports "
        "that copy, whatever its worktree holds, unless its Python puts the worktree's root "
        "first on its path (python -m and python -c do); install it in development mode "
        f"(pip install -e {source}) or {OWN_VENV_ADVICE}"
    )


def _mapping_warning(owner: str, name: str, code: Path) -> str:
    return (
        f"{owner} maps the module {name} to {code}, which no import path can reproduce in a "
        f"worktree: scripts import it from there; {OWN_VENV_ADVICE}"
    )


def _unread_warning(name: str, source: Path) -> str:
    return (
        f"{name} is installed in development mode from {source}, but its install does not "
        "show where it is imported from (a build backend's own loader?): scripts may import "
        f"it from there; {OWN_VENV_ADVICE}"
    )


def _missing_warning(location: InstalledLocation, root: Path, missing: List[Path]) -> str:
    names = ", ".join(str(path.relative_to(location.checkout)) for path in missing)
    return (
        f"{location.distribution}: {names} (installed from {location.checkout}) does not exist "
        f"in the worktree {root}, so its scripts import it from {location.checkout}; check the "
        f"worktree's layout, or {OWN_VENV_ADVICE}"
    )


#: Where a ``src`` layout keeps its packages, which Python finds only once installed.
_SRC = "src"
#: The folder of packages of older layouts (PyYAML's ``lib/yaml``).
_LIB = "lib"


def _uninstalled(
    worktree: Path, checkouts: FrozenSet[Path], sites: Iterable[Path], listings: Listings
) -> WorktreeImports:
    """A worktree whose ``src/`` packages no development install of its repository points at:
    its scripts' Python finds them only if installed from somewhere, so a script may test an
    installed copy, or fail to import them, and either way not the worktree's code."""
    unbuilt = unbuilt_from_source(worktree, checkouts, sites, listings)
    built_warning = (_unbuilt_source_warning(worktree, unbuilt),) if unbuilt else ()
    packages = _src_packages(listings.module_folders(worktree))
    if not packages or _pytest_puts_src_on_path(worktree):
        return WorktreeImports(warnings=built_warning, unbuilt_extensions=tuple(unbuilt))
    return WorktreeImports(
        warnings=(_uninstalled_warning(worktree, packages), *built_warning),
        unreachable_packages=packages,
        unbuilt_extensions=tuple(unbuilt),
    )


#: The sources whose module an extension's name can be told from: a Cython module's name is
#: its file's, a C or C++ one's is in its ``PyInit_<name>`` function.
_MODULE_SOURCES = (".pyx", ".c", ".cc", ".cpp", ".cxx")
#: How a C or C++ source defines an extension module: CPython's own ``PyInit_<name>``, or
#: pybind11's and nanobind's macros.
_MODULE_DEFINITION = re.compile(
    rb"\bPyInit_(\w+)\s*\(|\b(?:PYBIND11_MODULE|NB_MODULE)\s*\(\s*(\w+)"
)
#: How the file of a built extension module ends, for any Python.
_BUILT = tuple(EXTENSION_SUFFIXES)
#: The endings that only a Python extension module has (``.cpython-311-x86_64-linux-gnu.so``,
#: ``.abi3.so``): a plain ``.so`` at a checkout's root may be a library of another build.
_TAGGED = tuple(suffix for suffix in EXTENSION_SUFFIXES if suffix.count(".") > 1)
#: How the builds of extension modules, and the sources they are built from, end.
_MODULE_FILES = (*_BUILT, *_MODULE_SOURCES)
#: The most sources read to find which one defines a module.
_READ_LIMIT = 2000


def unbuilt_from_source(
    worktree: Path,
    checkouts: FrozenSet[Path],
    sites: Iterable[Path],
    listings: Listings,
) -> Dict[str, str]:
    """The extension modules whose source the worktree's packages hold beside no build of
    them, while a build of them exists elsewhere, by dotted name, with that source: in place
    in another of the ``checkouts`` of the repository (``listings`` lists them), or installed
    in a site directory (``sites``: a plain ``pip install .``, or a copy from an index).
    There a script runs a pure-Python fallback, or that other build, or fails to import, and
    tests none of the worktree's compiled code, while the project is run compiled. Found
    whatever is installed in development mode (nothing, or a checkout whose builds are
    elsewhere); a project built nowhere runs its fallback everywhere, and is left to it. A
    build for any Python counts."""
    found: Dict[str, str] = {}
    sites = list(sites)
    if checkouts <= {worktree} and not sites:  # no build to tell it from: nothing to look for
        return found
    for folder in listings.module_folders(worktree):
        if not any(name.endswith(_MODULE_SOURCES) for name in folder.files):
            continue  # the look of most folders ends here: no source, no module to name

        def elsewhere(folder: _ModuleFolder = folder) -> Set[str]:
            in_sites = (_built_modules(_files(site / folder.package)) for site in sites)
            return listings.built_elsewhere(worktree, checkouts, folder.inside).union(*in_sites)

        found.update(_unbuilt_in(folder, elsewhere))
    if checkouts - {worktree}:
        found.update(_unbuilt_elsewhere(worktree, checkouts, listings, set(found)))
    return found


@dataclass(frozen=True)
class _ModuleFolder:
    """A folder of a worktree that holds its modules (see :func:`_module_folders`)."""

    path: str
    #: Its files that are builds of extension modules or their sources (:func:`_modules`).
    files: List[str]
    #: The base its modules are named from, and the folder relative to it and to the
    #: worktree.
    base: str
    package: str
    inside: str
    #: The folder its builds are counted under: its base, or its top-level package.
    top: str


def _module_folders(worktree: Path) -> Iterator[_ModuleFolder]:
    """Each folder of the worktree that holds its modules: every base that it has
    (:data:`_BASE_FOLDERS`, for top-level modules), then every folder of its regular
    packages. Each base is listed once, for its files and its packages."""
    root = str(worktree)  # strings: this look runs per worktree of a run
    listed = [(".", root, _entries(root))]
    present = {entry.name for entry in listed[0][2] if entry.is_dir()}
    for name in _BASE_FOLDERS[1:]:
        if name in present:
            listed.append((name, os.path.join(root, name), _entries(os.path.join(root, name))))
    for name, base, entries in listed:
        yield _ModuleFolder(
            base, _modules([entry.name for entry in entries]), base, ".", name, base
        )
    for base_name, base, entries in listed:
        for name in _package_names(base, entries):
            top = os.path.join(base, name)
            for folder, subfolders, files in os.walk(top):
                subfolders[:] = [name for name in subfolders if _is_package(folder, name)]
                package = os.path.join(name, folder[len(top) + 1 :]).rstrip(os.sep)
                inside = os.path.normpath(os.path.join(base_name, package))
                yield _ModuleFolder(folder, _modules(files), base, package, inside, top)


def _modules(files: List[str]) -> List[str]:
    """The ``files`` that are builds of extension modules, or sources they are built from."""
    return [name for name in files if name.endswith(_MODULE_FILES)]


def _unbuilt_elsewhere(
    worktree: Path, checkouts: FrozenSet[Path], listings: Listings, known: Set[str]
) -> Dict[str, str]:
    """The top-level modules built in place in a base of another checkout
    (:data:`_BASE_FOLDERS`) with no build in the same base of the worktree, and not
    ``known``, whose source the worktree tracks in a folder of its own (ujson's
    ``python/ujson.c``): by name, with it."""
    here = {f.inside: f.files for f in listings.module_folders(worktree) if f.package == "."}
    wanted: Set[str] = set()
    for inside in _BASE_FOLDERS:
        elsewhere = listings.built_elsewhere(worktree, checkouts, inside, tagged=True)
        if elsewhere:
            wanted |= elsewhere - _built_modules(here.get(inside, ())) - known
    return _declaring_sources(worktree, wanted) if wanted else {}


def _declaring_sources(worktree: Path, modules: Set[str]) -> Dict[str, str]:
    """The tracked source that defines each of ``modules`` (a ``.pyx`` of its name, or a C
    or C++ file with its ``PyInit_``), wherever it is; at most :data:`_READ_LIMIT` files
    are read."""
    patterns = [f"*{ext}" for ext in _MODULE_SOURCES]
    tracked = _tracked_native_sources(worktree, worktree, patterns) or set()
    found: Dict[str, str] = {}
    for name in sorted(tracked)[:_READ_LIMIT]:
        module = _declared_module(str(worktree / name))
        if module in modules:
            found.setdefault(module, name)
            if len(found) == len(modules):
                break
    return found


def _unbuilt_in(folder: _ModuleFolder, elsewhere: Callable[[], Set[str]]) -> Dict[str, str]:
    """The modules whose sources are files of ``folder``, with no build beside them there
    while the same folder elsewhere has one (``elsewhere``, asked at the first source met):
    by dotted name, with the source's path in the worktree."""
    found: Dict[str, str] = {}
    built = _built_modules(folder.files)
    built_elsewhere: Optional[Set[str]] = None
    prefix = "" if folder.package == "." else f"{folder.package.replace(os.sep, '.')}."
    for name in folder.files:
        module = _declared_module(os.path.join(folder.path, name))
        if module is None or module in built:
            continue
        if built_elsewhere is None:
            built_elsewhere = elsewhere()
        if module in built_elsewhere:
            found.setdefault(f"{prefix}{module}", os.path.join(folder.inside, name))
    return found


def _is_package(folder: str, name: str) -> bool:
    return os.path.isfile(os.path.join(folder, name, "__init__.py"))


def _built_modules(files: Iterable[str]) -> Set[str]:
    return {_module_stem(Path(name)) for name in files if name.endswith(_BUILT)}


def _files(folder: Path) -> List[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _entries(folder: str) -> List[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


#: The folders a project's top-level modules and packages are in, in its checkout: its
#: root, ``src/`` and ``lib/``.
_BASE_FOLDERS = (".", _SRC, _LIB)


def _package_names(base: str, entries: Iterable[os.DirEntry[str]]) -> List[str]:
    """The names of the regular packages among the ``entries`` of the folder ``base``."""
    return [
        entry.name
        for entry in entries
        if entry.name.isidentifier() and entry.is_dir() and _is_package(base, entry.name)
    ]


def _declared_module(path: str) -> Optional[str]:
    """The name of the extension module that a Cython, C or C++ source defines, or None (a C
    file Cython generated is named by its ``.pyx``, and is not read through)."""
    stem, suffix = os.path.splitext(path)
    if suffix not in _MODULE_SOURCES:
        return None
    if suffix == ".pyx":
        return os.path.basename(stem)
    try:
        with open(path, "rb") as source:
            text = source.read()
    except OSError:
        return None
    if text.startswith(_CYTHON_MARK):
        return None
    match = _MODULE_DEFINITION.search(text)
    return None if match is None else (match.group(1) or match.group(2)).decode("ascii", "replace")


def _src_packages(folders: Iterable[_ModuleFolder]) -> Tuple[str, ...]:
    """The regular packages in the worktree's ``src/`` folder, by name, from the folders of
    its modules (none in a flat layout, imported from the worktree itself)."""
    tops = (f for f in folders if f.path == f.top and f.package != ".")
    return tuple(sorted(f.package for f in tops if f.inside == os.path.join(_SRC, f.package)))


#: pytest's configuration files, which may set ``pythonpath``.
_PYTEST_CONFIGS = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
#: A ``pythonpath`` setting, its value on its line or a TOML list over several.
_PYTHONPATH = re.compile(r"^\s*pythonpath\s*=\s*(\[[^\]]*\]|.*)$", re.MULTILINE)
#: ``src`` as one of the folders of that value.
_SRC_ENTRY = re.compile(r"(?:^|[\s\"',\[])(?:\./)?src/?(?:$|[\s\"',\]])")


def _pytest_puts_src_on_path(worktree: Path) -> bool:
    """Whether the worktree's pytest configuration puts ``src/`` on the path itself
    (``pythonpath = src``): its scripts' pytest then imports the worktree's packages."""
    for name in _PYTEST_CONFIGS:
        try:
            with open(os.path.join(worktree, name), encoding="utf-8", errors="replace") as file:
                text = file.read()
        except OSError:
            continue
        if any(_SRC_ENTRY.search(value) for value in _PYTHONPATH.findall(text)):
            return True
    return False


def holds_module(worktree: Path, name: str, *, regular: bool = False) -> bool:
    """Whether the top-level module or package ``name`` is the worktree's own: at its root or
    in its ``src/`` folder; with ``regular``, a folder counts only as a regular package (a
    ``build`` or ``data`` folder does not)."""
    return any(
        (_is_package(folder, name) if regular else os.path.isdir(os.path.join(folder, name)))
        or os.path.isfile(os.path.join(folder, f"{name}.py"))
        for folder in (str(worktree), os.path.join(worktree, _SRC))
    )


def _unbuilt_source_warning(worktree: Path, unbuilt: Mapping[str, str]) -> str:
    names, sources = some_of(list(unbuilt)), ", ".join(list(unbuilt.values())[:3])
    return (
        f"{worktree}: the compiled extension {names} has its source there ({sources}) "
        "and no build beside it, so a script that imports it runs a pure-Python fallback, "
        "a build from elsewhere (another checkout's, or an installed copy's) or nothing, not "
        "the worktree's compiled code, and is "
        f"inconclusive; build it in each worktree: {OWN_VENV_ADVICE}, or build it in place"
    )


def _uninstalled_warning(worktree: Path, packages: Tuple[str, ...]) -> str:
    names = ", ".join(packages)
    what = "the package" if len(packages) == 1 else "the packages"
    return (
        f"{worktree}: {what} {names} in {_SRC}/ can be imported only once installed, and the "
        f"runner's environment has no development install of this repository to point the "
        f"scripts at the worktree's (nor has the worktree its own {WORKTREE_VENV}): a script "
        f"that imports {packages[0]} tests whatever copy its Python has installed, or fails "
        f"to import it, unless it puts {_SRC}/ on its path itself (PYTHONPATH={_SRC}, pytest's "
        f"pythonpath = {_SRC}); run pytest from the environment where the project is installed "
        f"with pip install -e, or {OWN_VENV_ADVICE}"
    )


def _ungenerated_warning(location: InstalledLocation, root: Path, modules: List[Path]) -> str:
    names = some_of([str(path.relative_to(location.checkout)) for path in modules])
    one = len(modules) == 1
    what, were, them = ("the module", "was", "it") if one else ("the modules", "were", "them")
    return (
        f"{location.distribution}: {what} {names} {were} generated in "
        f"{location.checkout} (git ignores {them}; a version file written by setuptools-scm "
        f"or hatch-vcs, say) and {'is' if one else 'are'} missing from the worktree {root}, so "
        f"the worktree's package cannot import {them} and its scripts may fail for that "
        f"alone; {OWN_VENV_ADVICE}"
    )


def _unbuilt_warning(location: InstalledLocation, root: Path, unbuilt: List[Path]) -> str:
    names = some_of([str(path.relative_to(location.checkout)) for path in unbuilt])
    return (
        f"{location.distribution}: the compiled extension {names} was built in place "
        f"in {location.checkout} and is missing from the worktree {root}: unless a setup "
        f"step or the script builds it there first, the package runs the installed "
        f"checkout's build there, or a pure-Python fallback if it has one, and a script "
        f"that imports it is inconclusive; {OWN_VENV_ADVICE}"
    )
