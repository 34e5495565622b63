"""What code a hypothesis script was pointed at: a verdict is only worth what it tested.

A script that imports the project from the main checkout instead of its own worktree tests
the wrong code and still looks as confident as any other, so each result says which import
locations were redirected into its worktree, or that the worktree's own virtual environment was
used, or that nothing needed either, and what could not be redirected.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

#: What to do so that a worktree's scripts test its own code, said wherever they cannot.
OWN_VENV_ADVICE = (
    "give each worktree its own .venv with the project installed in development mode "
    "(.venv/bin/pip install -e ., by hand or with a setup step)"
)
#: A line that names an exception: ``ModuleNotFoundError: ...``, ``E   AssertionError``.
_EXCEPTION = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")


#: What Python says when ``python -m NAME`` finds no module NAME, or no package on its way.
_NO_MODULE_TO_RUN = re.compile(
    r"^(?:.*/)?(?:python|pypy)[\w.]*: (?:No module named (?P<name>\S+)|Error while finding "
    r"module specification for '(?P<dotted>[^']+)' \(ModuleNotFoundError.*)$"
)


def _last_exception(output: str) -> Optional[str]:
    """The last line of ``output`` that names an exception (None if none does)."""
    return next((line for line in reversed(output.splitlines()) if _EXCEPTION.search(line)), None)


_NO_MODULE = re.compile(r"No module named '([^'.]+)'")


def missing_top_level(*streams: str) -> Optional[str]:
    """The top-level module whose failed import ended the script, as the last exception of
    each of its output ``streams`` that names one says it (they must agree); None when that
    exception is another, or a submodule is what was missing."""
    last = [line for line in map(_last_exception, streams) if line is not None]
    said = [_NO_MODULE.search(line) for line in last]
    named = {match.group(1) for match in said if match is not None}
    return named.pop() if said and None not in said and len(named) == 1 else None


def missing_module_to_run(stderr: str) -> Optional[Tuple[str, str]]:
    """Python's complaint when the script ended on a ``python -m NAME`` whose interpreter has
    no module NAME, and NAME's top-level package: a test runner its environment lacks means
    the script ran no test, as a shell's ``command not found`` says. None when the last line
    of ``stderr`` says anything else."""
    last = stderr.rstrip().rpartition("\n")[2]
    said = _NO_MODULE_TO_RUN.match(last)
    if said is None:
        return None
    return last, (said.group("name") or said.group("dotted")).partition(".")[0]


class NoTestsBecause(str, enum.Enum):
    """Why a test runner ran no test."""

    #: What the script selects is not there.
    SELECTION = "selection"
    #: A test module could not be imported.
    COLLECTION = "collection"
    #: An option it does not know or take.
    USAGE = "usage"


@dataclass(frozen=True)
class NoTestRun:
    """A test runner's own words for having run no test, and why it ran none."""

    words: str
    why: NoTestsBecause


#: What a test runner says when it ran no test, by the exit status it says it with, and why:
#: pytest's 2 (errors while collecting: it runs no test at all), 4 (a test id or path it
#: cannot find; a conftest.py it cannot import, which a Python without the project's
#: dependencies gives; any other usage error, its own or argparse's ``pytest: error:
#: unrecognized arguments: -n``, which a Python without pytest-xdist gives) and 5 (nothing
#: collected or everything deselected; its summary then counts no test, only what was
#: deselected and the warnings, which is all that pytest-xdist counts), and unittest's 5
#: (since Python 3.12).
#: The first pattern a line matches tells why.
_NO_TESTS = {
    2: (
        (
            re.compile(r"^!*\s*Interrupted: \d+ errors? during collection\b"),
            NoTestsBecause.COLLECTION,
        ),
    ),
    4: (
        (re.compile(r"^ERROR: (?:file or directory )?not found: "), NoTestsBecause.SELECTION),
        # a conftest.py it could not import, its traceback after these words
        (re.compile(r"^ImportError while loading conftest '"), NoTestsBecause.COLLECTION),
        # argparse's words, under a program name that says pytest (python -m pytest,
        # py.test, __main__.py): a script's own "ERROR: ..." or "cc: error: ..." is its own
        (
            re.compile(r"^(?:[^:\s][^:]*[\s/])?(?:py\.?test|__main__\.py): error: "),
            NoTestsBecause.USAGE,
        ),
    ),
    5: (
        (
            re.compile(
                r"^=*\s*(?:no tests (?:ran|collected)\b"
                r"|\d+ (?:deselected|warnings?)(?:, \d+ (?:deselected|warnings?))* in \d)"
                r"|^NO TESTS RAN\b"
            ),
            NoTestsBecause.SELECTION,
        ),
    ),
}
#: How many of the last lines of each stream may hold those words (pytest prints the usage
#: error's details after it).
_NO_TESTS_LINES = 5
#: Colour codes, which ``--color=yes`` or ``PY_COLORS=1`` put around pytest's summary.
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def ran_no_tests(
    exit_code: Optional[int], worktree: str, *streams: str, lacking: bool = False
) -> Optional[NoTestRun]:
    """The words in which a test runner said it ran no test, when the script ended with the
    status the runner says it with (a mistyped test id, a ``-k`` that selects nothing, a
    test the worktree does not have, a test module that cannot be imported, an option the
    script's Python has no plugin for); None otherwise, and None for a collection stopped by
    an error the ``worktree``'s own code raised, which can be the bug itself, unless that
    error is a module missing that the worktree does not hold (``lacking``: the script's
    Python lacks a dependency). The first stream that has them tells (give stderr first:
    pytest names the test id it cannot find there)."""
    said = _NO_TESTS.get(exit_code, ()) if exit_code is not None else ()
    for stream in streams if said else ():
        for line in _last_words(_COLOUR.sub("", stream)):
            words = line.strip()
            why = next((why for pattern, why in said if pattern.match(words)), None)
            if (
                why is NoTestsBecause.COLLECTION
                and not lacking
                and any(_raised_in_own_code(worktree, s) for s in streams)
            ):
                return None
            if why is not None:
                return NoTestRun(words.strip("=! "), why)
    return None


def _last_words(stream: str) -> List[str]:
    """The last lines of ``stream``, and the line before the traceback it ends with, if it
    ends with one: pytest says why it could not start before that traceback."""
    lines = stream.rstrip().splitlines()
    end = len(lines)
    while end and _in_traceback(lines[end - 1]):
        end -= 1
    before = lines[end - 1 : end] if end < len(lines) else []
    return [*before, *lines[-_NO_TESTS_LINES:]]


def _in_traceback(line: str) -> bool:
    """Whether ``line`` is one of a traceback as pytest prints it: a frame, its source line
    (indented), or the exception (``E   ...``)."""
    return bool(_FRAME.match(line)) or line.startswith((" ", _RAISED))


#: A frame of a traceback as pytest prints it: ``pkg/core.py:12: in <module>``.
_FRAME = re.compile(r"^(?P<path>[^\s:][^:]*\.py):\d+: in ")
#: What pytest's report of an exception starts with: ``E   ImportError: ...``.
_RAISED = "E   "
#: The file a syntax error is in, in pytest's report of it: ``E     File "pkg/core.py", ...``.
_SYNTAX_FILE = re.compile(r'^E\s+File "(?P<path>[^"]+\.py)", line \d+')
#: Files of tests, not of the code under test.
_TEST_FILE = re.compile(r"^(?:test_.*|.*_test|conftest)\.py$")
#: Folders of tests or of installed packages, not of the code under test.
_NOT_OWN_FOLDERS = frozenset({"tests", "test", "testing", "site-packages", "dist-packages"})


def _raised_in_own_code(worktree: str, output: str) -> bool:
    """Whether an error pytest reports (while collecting) was raised in a source file of the
    worktree that is not a test, a conftest or an installed package: a module of the project
    that no longer imports may be what the hypothesis is about."""
    frame = None
    for line in _COLOUR.sub("", output).splitlines():
        match = _FRAME.match(line) or _SYNTAX_FILE.match(line)
        if match is not None:
            frame = match.group("path")
        elif line.startswith(_RAISED) and frame is not None:
            if _is_own_source(worktree, frame):
                return True
            frame = None
    return False


def _is_own_source(worktree: str, path: str) -> bool:
    """Whether ``path`` (as pytest prints it: from its rootdir, in the worktree, or absolute)
    is a source file of the worktree's code, not of its tests or of a virtual environment."""
    file = PurePosixPath(path)
    if file.is_absolute():
        try:
            file = file.relative_to(worktree)
        except ValueError:
            return False
    folders = file.parts[:-1]
    return not (
        _TEST_FILE.match(file.name)
        or _NOT_OWN_FOLDERS.intersection(folders)
        or any(folder.startswith(".") for folder in folders)
    )


@dataclass(frozen=True)
class Redirect:
    """One import location of a development install, moved into the worktree."""

    distribution: str
    #: Where the environment imports it from (a location in another checkout).
    installed_from: str
    #: Where the script imports it from instead (the same place in its worktree).
    import_path: str

    def to_dict(self) -> Dict[str, str]:
        return {
            "distribution": self.distribution,
            "installed_from": self.installed_from,
            "import_path": self.import_path,
        }


#: Sources a tool turns into C before a build compiles them (Cython's ``.pyx``, ``.pxd`` and
#: ``.pxi``, and the ``.py`` beside a build of Cython's pure-Python mode or mypyc): a build
#: newer than such a source may still hold what was generated from it before it changed.
GENERATED_FROM = (".pyx", ".pxd", ".pxi", ".py")


def is_generated_from(source: str) -> bool:
    """True when a build compiles what a tool generated from ``source``, not ``source``."""
    return source.endswith(GENERATED_FROM)


def older_than(source: str) -> str:
    """Why a build is stale, in words that name Cython only where ``source`` is Cython's or
    mypyc's (a plain C project's user would not know what was meant)."""
    generated = (
        " (or compiled from what Cython generated before)" if is_generated_from(source) else ""
    )
    return f"older than {source}, which changed after it{generated}"


@dataclass(frozen=True)
class StaleBuilds:
    """The worktree's own builds of the project's extension modules (dotted names) that are
    older than ``source``, a source of theirs it changed at ``changed_at`` (a file time), or
    compiled from the C code Cython generated from ``source`` before it changed (a build
    newer than ``changed_at`` vouches for them)."""

    modules: Tuple[str, ...]
    source: str
    changed_at: float = 0.0
    #: The worktree whose builds they are, which the warning names: two worktrees with the
    #: same stale build make one warning that names both, not one that names neither.
    worktree: str = ""

    @property
    def warning(self) -> str:
        where = f"{self.worktree}: the" if self.worktree else "the worktree's"
        again = ", generating its C code again" if is_generated_from(self.source) else ""
        return (
            f"{where} build of the compiled extension {', '.join(self.modules)} is "
            f"{older_than(self.source)}: a script that imports it runs compiled code of before "
            f"that change and is inconclusive; build it again{again} (pip install -e . in the "
            "worktree's .venv, say)"
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Optional[StaleBuilds]:
        """The stale builds a stored ``code_under_test`` names, if any (their time is not
        stored: it only serves the run that found them)."""
        modules = tuple(str(name) for name in data.get("stale_extensions", ()))
        return cls(modules, str(data["stale_source"])) if modules else None


@dataclass(frozen=True)
class CodeUnderTest:
    """How a script's Python was pointed at its worktree's code."""

    #: Import locations put first on ``PYTHONPATH``, in order.
    redirects: Tuple[Redirect, ...] = ()
    #: The worktree's own virtual environment, activated instead of any redirection.
    venv: Optional[str] = None
    #: The runner's virtual environment, activated for the script beside the redirection:
    #: it holds the install redirected, and the Python of ``PATH`` belonged to none.
    activated: Optional[str] = None
    #: What could not be redirected, one sentence each (also logged once per run).
    warnings: Tuple[str, ...] = ()
    #: Modules of the project that the worktree's package lacks, by dotted name: generated in
    #: the installed checkout and ignored by git (a version file). A script that fails to
    #: import one failed for that alone.
    missing_modules: Tuple[str, ...] = ()
    #: The worktree's ``src/`` packages that nothing installed points the script at: a
    #: script that fails to import one tested none of the worktree's code.
    unreachable_packages: Tuple[str, ...] = ()
    #: Extension modules of the project, by dotted name, built in place in the installed
    #: checkout and missing from the worktree: a script ran the package without them (on a
    #: pure-Python fallback, if it has one), so its pass or failure decides nothing.
    unbuilt_extensions: Tuple[str, ...] = ()
    #: The worktree's builds of the project's extension modules that are older than a
    #: source it changed afterwards: a script that imports one runs compiled code of before
    #: that change.
    stale: Optional[StaleBuilds] = None
    #: The installs of its own that a Python of another environment kept instead of the
    #: redirection (``<distribution> in <environment>``): that Python tested them, not the
    #: worktree's code.
    own_installs: Tuple[str, ...] = ()

    def kept_by(self, own_installs: Sequence[str]) -> CodeUnderTest:
        """This code, with the installs a script's Pythons kept of their own, if any."""
        return dataclasses.replace(self, own_installs=tuple(own_installs)) if own_installs else self

    @property
    def watched(self) -> Tuple[str, ...]:
        """The extension modules a script's imports of are watched: those the worktree has
        no build of, then those whose build is older than a source it changed."""
        return (*self.unbuilt_extensions, *(() if self.stale is None else self.stale.modules))

    @property
    def mode(self) -> str:
        """``venv``, ``redirected`` or ``unchanged`` (nothing needed redirecting)."""
        if self.venv is not None:
            return "venv"
        return "redirected" if self.redirects else "unchanged"

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "mode": self.mode,
            "redirects": [redirect.to_dict() for redirect in self.redirects],
            "venv": self.venv,
            "activated": self.activated,
            "warnings": list(self.warnings),
            "missing_modules": list(self.missing_modules),
            "unreachable_packages": list(self.unreachable_packages),
            "unbuilt_extensions": list(self.unbuilt_extensions),
            "stale_extensions": [] if self.stale is None else list(self.stale.modules),
            "stale_source": None if self.stale is None else self.stale.source,
            "own_installs": list(self.own_installs),
        }

    def failed_import(self, *streams: str) -> Optional[str]:
        """The missing module whose failed import ended the script, as its output ``streams``
        show it: the last exception that each stream naming one names (a traceback's last
        line, pytest's summary of a collection error). A warning that mentions the module
        earlier, and a failure after it, do not count."""
        last = [line for line in map(_last_exception, streams) if line is not None]
        for module in (*self.missing_modules, *self.unreachable_packages):
            missing = f"No module named '{module}'"
            if last and all(missing in line for line in last):
                return module
        return None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodeUnderTest:
        """The inverse of :meth:`to_dict` (a stored result read back)."""
        return cls(
            redirects=tuple(Redirect(**redirect) for redirect in data["redirects"]),
            venv=data["venv"],
            activated=data.get("activated"),
            warnings=tuple(str(warning) for warning in data["warnings"]),
            missing_modules=tuple(str(name) for name in data.get("missing_modules", ())),
            unreachable_packages=tuple(str(name) for name in data.get("unreachable_packages", ())),
            unbuilt_extensions=tuple(str(name) for name in data.get("unbuilt_extensions", ())),
            stale=StaleBuilds.from_dict(data),
            own_installs=tuple(str(kept) for kept in data.get("own_installs", ())),
        )
