"""Each script imports its own worktree's code: the environment additions that point the
script's Python there, found once per run.

A development install makes every Python of the environment import the project from one
checkout. A script in another worktree gets the same locations inside its own worktree first
on ``PYTHONPATH`` (they then come before the ``.pth`` entries and editable finders of
site-packages), unless the worktree holds its own virtual environment, which is activated
instead.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Tuple

from ..core.tested import CodeUnderTest, Redirect, StaleBuilds
from ..finding.installs import (
    DevelopmentInstalls,
    WorktreeImports,
    development_installs,
    worktree_venv,
)
from ..finding.layout import PathLike
from .events import TOLD_ELSEWHERE
from .importwatch import DISTRIBUTIONS_VARIABLE, ENVIRONMENTS_VARIABLE, REDIRECTED_VARIABLE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorktreeCode:
    """What a worktree's scripts get: variables to set, and what that makes them test."""

    environment: Dict[str, str] = field(default_factory=dict)
    tested: CodeUnderTest = field(default_factory=CodeUnderTest)
    #: Variables to remove from the script's environment.
    removed: Tuple[str, ...] = ()

    def with_stale(self, builds: Optional[StaleBuilds]) -> WorktreeCode:
        """This code, with the worktree's builds that are older than its sources, if any
        (each is also a warning)."""
        if builds is None:
            return self
        tested = dataclasses.replace(
            self.tested, warnings=(*self.tested.warnings, builds.warning), stale=builds
        )
        return dataclasses.replace(self, tested=tested)

    def applied_to(self, base_env: Mapping[str, str]) -> Dict[str, str]:
        """``base_env`` with this worktree's variables set and removed."""
        env = {**base_env, **self.environment}
        return {name: value for name, value in env.items() if name not in self.removed}


class RunCode:
    """The code each worktree of one run tests, found once and looked up per script."""

    def __init__(
        self,
        worktrees: Mapping[Path, WorktreeCode],
        base_env: Mapping[str, str],
        installs: DevelopmentInstalls,
        stale: Optional[Mapping[Path, Optional[StaleBuilds]]] = None,
    ) -> None:
        self._worktrees = dict(worktrees)
        self._base_env = dict(base_env)
        self._installs = installs
        self._looked_up: Dict[Tuple[Path, bool], WorktreeCode] = {
            (path, False): code.with_stale((stale or {}).get(path))
            for path, code in self._worktrees.items()
        }

    @classmethod
    def find(cls, worktrees: Iterable[PathLike], base_env: Mapping[str, str]) -> RunCode:
        """Read the environment's development installs and log each warning once. Never
        raises: if the installs cannot be read, every result says so."""
        unique = sorted({Path(worktree) for worktree in worktrees})
        installs = DevelopmentInstalls()
        stale: Dict[Path, Optional[StaleBuilds]] = {}
        try:
            installs = development_installs(unique, base_env)
            found = {tree: worktree_code(tree, installs, base_env) for tree in unique}
            stale = {tree: installs.stale_builds(tree) for tree in unique}
        except Exception as error:  # a bug of ours must not cost the run its results
            logger.exception("cannot read the development installs", extra=TOLD_ELSEWHERE)
            unread = CodeUnderTest(warnings=(f"development installs not read: {error!r}",))
            found = {tree: _own_venv(tree, base_env, unread) for tree in unique}
        run_code = cls(found, base_env, installs, stale)
        logged = set()
        for tree in unique:
            for warning in run_code.of(tree).tested.warnings:
                if warning not in logged:
                    logged.add(warning)
                    logger.warning("%s", warning, extra=TOLD_ELSEWHERE)
        return run_code

    def of(self, worktree: PathLike, *, after_setup: bool = False) -> WorktreeCode:
        """The code of ``worktree`` (unchanged for a worktree this run did not know); after
        a setup step, its venv and its builds are looked at again: the step may have made
        a venv, installed the project into one it had, or built its extensions (a look that
        runs git: ask it off the loop). Asked once the worktree's setup step is done, so one
        look per worktree and run suffices."""
        key = (Path(worktree), after_setup)
        if key not in self._looked_up:
            path = key[0]
            code = self._worktrees.get(path, WorktreeCode())
            venv = worktree_venv(path) if after_setup else None
            if venv is not None:
                code = venv_code(venv, self._base_env, self._installs.venv_imports(path, venv))
            elif after_setup and _built_by_a_step(code):
                code = self._looked_again(path, code)
            stale = self._installs.stale_builds(path) if after_setup else None
            self._looked_up[key] = code.with_stale(stale)
        return self._looked_up[key]

    def _looked_again(self, path: Path, before: WorktreeCode) -> WorktreeCode:
        """The worktree's code as a setup step left it; as before the step if it cannot be
        read (a bug of ours must not cost the hypothesis its result)."""
        try:
            return worktree_code(path, self._installs, self._base_env)
        except Exception:
            logger.exception("cannot look at %s again after its setup step", path)
            return before


def _built_by_a_step(code: WorktreeCode) -> bool:
    """True when the worktree lacked what a setup step builds or generates (an extension
    module built in place, a version file), so its code is worth looking at again."""
    return bool(code.tested.unbuilt_extensions or code.tested.missing_modules)


def worktree_code(
    worktree: Path, installs: DevelopmentInstalls, base_env: Mapping[str, str]
) -> WorktreeCode:
    """The worktree's own virtual environment activated if it has one, else the
    development installs redirected into it."""
    venv = worktree_venv(worktree)
    if venv is not None:
        return venv_code(venv, base_env, installs.venv_imports(worktree, venv))
    imports = installs.for_worktree(worktree)
    tested = CodeUnderTest(
        _redirects(imports),
        warnings=installs.warnings + imports.warnings,
        missing_modules=imports.missing_modules,
        unreachable_packages=imports.unreachable_packages,
        unbuilt_extensions=imports.unbuilt_extensions,
    )
    return WorktreeCode(redirected_environment(imports, base_env, installs.environments), tested)


def _own_venv(
    worktree: Path, base_env: Mapping[str, str], otherwise: CodeUnderTest
) -> WorktreeCode:
    """The worktree's own virtual environment, which needs no development installs, else
    ``otherwise``."""
    venv = worktree_venv(worktree)
    return WorktreeCode(tested=otherwise) if venv is None else venv_code(venv, base_env)


def venv_code(
    venv: Path, base_env: Mapping[str, str], lacking: Optional[WorktreeImports] = None
) -> WorktreeCode:
    """The worktree's own virtual environment, activated, and nothing redirected; with what
    it leaves the scripts without (``lacking``: warnings, and extension modules to watch)."""
    lacking = lacking or WorktreeImports()
    tested = CodeUnderTest(
        venv=str(venv), warnings=lacking.warnings, unbuilt_extensions=lacking.unbuilt_extensions
    )
    return WorktreeCode(venv_environment(venv, base_env), tested, ("PYTHONHOME",))


def venv_environment(venv: Path, base_env: Mapping[str, str]) -> Dict[str, str]:
    """The variables of an activated virtual environment: ``VIRTUAL_ENV`` and its scripts
    first on ``PATH`` (``PYTHONHOME`` would override it, so the caller removes it)."""
    scripts = venv / "bin" if (venv / "bin").is_dir() else venv / "Scripts"
    return {"VIRTUAL_ENV": str(venv), "PATH": _prepend([str(scripts)], base_env.get("PATH"))}


def redirected_environment(
    imports: WorktreeImports, base_env: Mapping[str, str], environments: Iterable[Path] = ()
) -> Dict[str, str]:
    """``PYTHONPATH`` with the worktree's locations first, the user's own after them; and
    what the run's ``sitecustomize`` needs to leave a Python of another environment, with
    its own plain install of the project, to it (those locations, their distributions, and
    the runner's ``environments``)."""
    if not imports.locations:
        return {}
    moved = {str(target): location.distribution for location, target in imports.locations}
    return {
        "PYTHONPATH": _prepend(moved, base_env.get("PYTHONPATH")),
        REDIRECTED_VARIABLE: os.pathsep.join(moved),
        DISTRIBUTIONS_VARIABLE: os.pathsep.join(moved.values()),
        ENVIRONMENTS_VARIABLE: os.pathsep.join(map(str, environments)),
    }


def _redirects(imports: WorktreeImports) -> Tuple[Redirect, ...]:
    return tuple(
        Redirect(location.distribution, str(location.source), str(target))
        for location, target in imports.locations
    )


def _prepend(first: Iterable[str], existing: Optional[str]) -> str:
    return os.pathsep.join([*first, *([existing] if existing else [])])
