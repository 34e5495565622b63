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
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Set, Tuple

from ..core.tested import CodeUnderTest, Redirect, StaleBuilds
from ..finding.installs import (
    DevelopmentInstalls,
    WorktreeImports,
    development_installs,
    worktree_venv,
)
from ..finding.layout import PathLike
from .events import TOLD_ELSEWHERE, reporting_logger
from .importwatch import DISTRIBUTIONS_VARIABLE, ENVIRONMENTS_VARIABLE, REDIRECTED_VARIABLE

logger = reporting_logger(__name__)


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
    """The code each worktree of one run tests: the environment's development installs read
    once, then each worktree looked at once, when the run first needs it. Its looks read
    files and run git: ask them off the loop."""

    def __init__(self, base_env: Mapping[str, str]) -> None:
        self._base_env = dict(base_env)
        self._installs = DevelopmentInstalls()
        self._unread: Optional[CodeUnderTest] = None
        self._logged: Set[str] = set()
        self._looked: Dict[Path, WorktreeCode] = {}
        #: Each looked-at worktree's code without its stale builds: a setup step may build
        #: again, so the look after it judges them anew.
        self._unjudged: Dict[Path, WorktreeCode] = {}
        self._after_setup: Dict[Path, WorktreeCode] = {}

    def read_installs(self, worktrees: Iterable[PathLike]) -> None:
        """Read the development installs of the environment from the repositories of
        ``worktrees``. Never raises: if they cannot be read, every worktree's code says so."""
        try:
            self._installs = development_installs(map(Path, worktrees), self._base_env)
        except Exception as error:  # a bug of ours must not cost the run its results
            logger.exception("cannot read the development installs", extra=TOLD_ELSEWHERE)
            self._unread = CodeUnderTest(warnings=(f"development installs not read: {error!r}",))

    def look_at(self, worktree: PathLike) -> WorktreeCode:
        """The code of ``worktree``, each of its warnings logged once per run. Never raises:
        if it cannot be read, the code says so."""
        path = Path(worktree)
        if path not in self._looked:
            code, stale = self._look(path)
            self._unjudged[path] = code
            self._looked[path] = _logged(code.with_stale(stale), self._logged)
        return self._looked[path]

    def _look(self, path: Path) -> Tuple[WorktreeCode, Optional[StaleBuilds]]:
        """The worktree's code, and its builds older than its sources."""
        if self._unread is None:
            try:
                code = worktree_code(path, self._installs, self._base_env)
                return code, self._installs.stale_builds(path)
            except Exception as error:  # as if the installs could not be read
                logger.exception("cannot look at the code of %s", path, extra=TOLD_ELSEWHERE)
                unread = f"development installs not read: {error!r}"
                return _own_venv(path, self._base_env, CodeUnderTest(warnings=(unread,))), None
        return _own_venv(path, self._base_env, self._unread), None

    def after_setup(self, worktree: PathLike) -> WorktreeCode:
        """The code of ``worktree`` once its setup step is done, which may have made a venv,
        installed the project into one it had, or built its extensions: looked at again,
        with what the steps of other worktrees built since. One look per worktree and run
        suffices."""
        path = Path(worktree)
        if path not in self._after_setup:
            self.look_at(path)
            code = self._unjudged[path]
            installs = self._installs.afresh()
            venv = worktree_venv(path)
            if venv is not None:
                code = venv_code(venv, self._base_env, installs.venv_imports(path, venv))
            elif _built_by_a_step(code):
                code = self._looked_again(path, code, installs)
            self._after_setup[path] = code.with_stale(installs.stale_builds(path))
        return self._after_setup[path]

    def _looked_again(
        self, path: Path, before: WorktreeCode, installs: DevelopmentInstalls
    ) -> WorktreeCode:
        """The worktree's code as a setup step left it; as before the step if it cannot be
        read (a bug of ours must not cost the hypothesis its result)."""
        try:
            return worktree_code(path, installs, self._base_env)
        except Exception:
            logger.exception("cannot look at %s again after its setup step", path)
            return before


def _logged(code: WorktreeCode, logged: Set[str]) -> WorktreeCode:
    """``code``, its warnings logged unless they are among those ``logged`` already."""
    for warning in code.tested.warnings:
        if warning not in logged:
            logged.add(warning)
            logger.warning("%s", warning, extra=TOLD_ELSEWHERE)
    return code


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
    env = redirected_environment(imports, base_env, installs.environments)
    if not imports.locations or installs.runner_venv is None:
        return WorktreeCode(env, tested)
    env.update(venv_environment(installs.runner_venv, base_env))
    activated = dataclasses.replace(tested, activated=str(installs.runner_venv))
    return WorktreeCode(env, activated, ("PYTHONHOME",))  # as for an activated environment


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
