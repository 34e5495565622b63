"""Whether a script's Python imported a compiled extension other than its worktree's build.

An extension module built in place in the installed checkout is ignored by git, so no other
worktree has it. Importing it there then finds the installed checkout's build (through an
editable install's finder), or none, and a package with a pure-Python fallback runs the
fallback without a word: a script that tests the compiled code passes or fails on other code,
and its verdict would be wrong. A script that never imports the extension is not concerned,
nor is one whose worktree was built meanwhile (by its setup step, or by the script itself).
So the scripts of such a worktree are watched: a ``sitecustomize`` module first on
``PYTHONPATH`` asks the other finders, at each import of one of those modules, what the import
will load, and notes it in a file of the attempt's own unless it is an extension module inside
the worktree; then it runs the ``sitecustomize`` it hides, if there is one. Every Python of the
script's tree inherits the watch; a Python started with ``-S``, ``-E`` or ``-I`` does not read
it (nor ``PYTHONPATH``, for the last two), and an extension loaded from its file without an
import (``importlib.util.spec_from_file_location``) is not seen. A script whose own text
replaces ``PYTHONPATH`` (``PYTHONPATH=lib python ...``, natural for a ``lib/`` layout) hides the
watch from what it runs: :func:`hiding_line` finds the line, and such a script's pass or
failure tells nothing while its worktree has modules to watch.

The same ``sitecustomize`` serves the redirection of a development install into the worktree
(``PYTHONPATH``, which every Python of the script's tree inherits): a Python of a virtual
environment other than the runner's whose own first install of the project is a plain one,
such as a release that a script runs on purpose, is left to it, its worktree entries taken
off its path before anything is imported (and, testing none of the worktree's code, it is not
watched). The runner's environments, and a Python of no virtual environment (the ``python3``
that ``PATH`` finds when the runner's is not activated), keep them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

from .spill import temporary_root

#: The modules to watch, comma-separated.
WATCHED_VARIABLE = "HYPOTHESES_WATCHED_IMPORTS"
#: The worktree whose own builds of them are no concern.
WORKTREE_VARIABLE = "HYPOTHESES_WATCHED_WORKTREE"
#: When the worktree's native sources changed last (a file time): an older build is stale.
CHANGED_VARIABLE = "HYPOTHESES_SOURCES_CHANGED_AT"
#: The file that each import of one of them from elsewhere is noted in, a line each.
NOTES_VARIABLE = "HYPOTHESES_IMPORTS_NOTED"
#: The worktree locations put on ``PYTHONPATH`` for development installs, the distribution of
#: each (in the same order) and the runner's environments, whose Pythons keep them all: a
#: Python of another virtual environment whose own first install of one of those
#: distributions is a plain one (a release, installed there on purpose) drops its locations.
REDIRECTED_VARIABLE = "HYPOTHESES_REDIRECTED_PATHS"
DISTRIBUTIONS_VARIABLE = "HYPOTHESES_REDIRECTED_DISTRIBUTIONS"
ENVIRONMENTS_VARIABLE = "HYPOTHESES_RUNNER_ENVIRONMENTS"
#: How a note says that a Python kept its own install (``<mark><distribution> in <prefix>``):
#: no module's name starts so.
OWN_INSTALL_MARK = "!own "

#: A shell line that sets ``PYTHONPATH`` (``PYTHONPATH=..., export PYTHONPATH=...``), with the
#: value, or removes it (``unset PYTHONPATH``, ``env -u PYTHONPATH``, ``env -i``).
_SETS = re.compile(r"(?<![\w$])PYTHONPATH=(\"[^\"]*\"|'[^']*'|\S*)")
_REMOVES = re.compile(
    r"\bunset\s+(?:-v\s+)?PYTHONPATH\b|\benv\s+(?:-\w+\s+)*(?:-u\s*PYTHONPATH|-i)\b"
)
#: The longest line of a script shown in a message.
SHOWN_CHARS = 80

#: The watching ``sitecustomize``, for Python 3.5 and later: it raises nothing of its own,
#: and the module it hides runs as ``sitecustomize``, whose errors ``site`` reports as it
#: would have.
SITECUSTOMIZE = f"""\
# Written by pytest-parallel-hypotheses for the scripts of one run: leaves a Python with its
# own plain install of the project to it, notes each import of a compiled extension that
# does not load a build of it in the worktree newer than the worktree's native sources, then
# runs the sitecustomize module that this one hides, if any.
import os
import sys


def _leave_own_copies():
    paths = os.environ.get("{REDIRECTED_VARIABLE}")
    names = os.environ.get("{DISTRIBUTIONS_VARIABLE}")
    runners = os.environ.get("{ENVIRONMENTS_VARIABLE}", "").split(os.pathsep)
    if not paths or not names or sys.prefix == getattr(sys, "base_prefix", sys.prefix):
        return False  # not a virtual environment: a python3 found on PATH keeps the worktree
    if os.path.realpath(sys.prefix) in runners:
        return False
    import site

    def normal(name):
        return "_".join(filter(None, name.lower().replace("-", "_").replace(".", "_").split("_")))

    def editable(record):
        import json

        try:
            with open(os.path.join(record, "direct_url.json")) as described:
                return bool(json.load(described).get("dir_info", {{}}).get("editable"))
        except Exception:
            return False

    owned = {{}}
    for name, path in zip(names.split(os.pathsep), paths.split(os.pathsep)):
        owned.setdefault(normal(name), set()).add(os.path.abspath(path))
    first = {{}}
    folders = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    for folder in folders:
        try:
            entries = sorted(os.listdir(folder))
        except OSError:
            continue
        for entry in entries:
            stem, dot, kind = entry.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            name = normal(stem.split("-", 1)[0])
            if name in owned and name not in first:
                first[name] = editable(os.path.join(folder, entry))
    plain = [name for name in owned if first.get(name) is False]
    gone = set().union(*(owned[name] for name in plain))
    sys.path[:] = [entry for entry in sys.path if not entry or os.path.abspath(entry) not in gone]
    _note("".join("{OWN_INSTALL_MARK}%s in %s\\n" % (name, sys.prefix) for name in plain))
    return len(plain) == len(owned)


def _note(lines):
    notes = os.environ.get("{NOTES_VARIABLE}")
    if lines and notes:
        try:
            with open(notes, "a") as noted:
                noted.write(lines)
        except Exception:
            pass


def _watch():
    watched = frozenset(filter(None, os.environ.get("{WATCHED_VARIABLE}", "").split(",")))
    worktree = os.environ.get("{WORKTREE_VARIABLE}", "")
    notes = os.environ.get("{NOTES_VARIABLE}")
    if not watched or not worktree or not notes:
        return
    inside = os.path.join(os.path.realpath(worktree), "")
    changed_at = float(os.environ.get("{CHANGED_VARIABLE}") or 0)

    def built_here(spec):
        from importlib.machinery import ExtensionFileLoader

        origin = os.path.realpath(spec.origin or "")
        if not isinstance(spec.loader, ExtensionFileLoader) or not origin.startswith(inside):
            return False
        return os.stat(origin).st_mtime >= changed_at

    class ExtensionImports(object):
        def loads_a_current_build(self, name, path, target):
            for finder in sys.meta_path:
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        return built_here(spec)
            return False

        def find_spec(self, name, path=None, target=None):
            if name not in watched:
                return None
            try:
                current = self.loads_a_current_build(name, path, target)
            except Exception:
                current = False  # unknown: the import may load anything
            if not current:
                _note(name + "\\n")
            return None

    sys.meta_path.insert(0, ExtensionImports())


def _run_hidden():
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


try:
    _elsewhere = _leave_own_copies()
except Exception:
    _elsewhere = False
if not _elsewhere:  # a Python that tests none of the worktree's code has nothing to watch
    _watch()
_run_hidden()
"""


def hiding_line(script: Path) -> Optional[str]:
    """The first line of a shell script that replaces or removes ``PYTHONPATH`` rather than
    adding to it (its value does not name ``$PYTHONPATH``), shortened; None if there is none
    or the script cannot be read. Comments do not count."""
    try:
        text = script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#!") else ""
        replaced = any("PYTHONPATH" not in value for value in _SETS.findall(code))
        if replaced or _REMOVES.search(code):
            shown = line.strip()
            return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 3] + "..."
    return None


class Noted(NamedTuple):
    """What the Pythons of a script noted: the watched modules they imported without a
    current build in the worktree, and the installs of their own they kept
    (``<distribution> in <environment>``), leaving the worktree's code untested."""

    modules: Tuple[str, ...] = ()
    own_installs: Tuple[str, ...] = ()


class ImportWatch:
    """The watching ``sitecustomize`` of one run and the notes of its attempts, in a folder
    made when a worktree first needs it and removed by :meth:`close`."""

    def __init__(self) -> None:
        self._folder: Optional[Path] = None

    def environment(
        self,
        env: Mapping[str, str],
        watched: Sequence[str],
        worktree: Path,
        key: str,
        *,
        changed_at: float = 0.0,
    ) -> Tuple[Dict[str, str], Path]:
        """``env`` with the run's ``sitecustomize`` first on ``PYTHONPATH`` and the watch of
        the ``watched`` modules (none: only the redirection's exceptions) for the attempts of
        one hypothesis (``key``) in ``worktree``, whose builds older than ``changed_at`` (a
        file time) are stale, and the file their notes go to."""
        folder = self._made()
        notes = folder / f"imports-{key}"
        python_path = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
        watching = {
            "PYTHONPATH": python_path,
            WATCHED_VARIABLE: ",".join(watched),
            WORKTREE_VARIABLE: str(worktree.resolve()),  # the script runs inside it
            CHANGED_VARIABLE: repr(changed_at),
            NOTES_VARIABLE: str(notes),
        }
        return {**env, **watching}, notes

    @staticmethod
    def take(notes: Path) -> Noted:
        """What was noted since the last call, each once, in the order first noted. The
        notes move aside before they are read: one written meanwhile starts a new file."""
        taken = notes.with_name(f"{notes.name}.taken")
        try:
            os.replace(notes, taken)
        except FileNotFoundError:
            return Noted()
        try:
            text = taken.read_text(encoding="utf-8", errors="replace")
        finally:
            taken.unlink(missing_ok=True)
        lines = list(dict.fromkeys(line for line in text.splitlines() if line))
        own = [line[len(OWN_INSTALL_MARK) :] for line in lines if line.startswith(OWN_INSTALL_MARK)]
        modules = [line for line in lines if not line.startswith(OWN_INSTALL_MARK)]
        return Noted(tuple(modules), tuple(own))

    def close(self) -> None:
        """Remove the folder, if it was made."""
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _made(self) -> Path:
        if self._folder is None:
            self._folder = Path(
                tempfile.mkdtemp(prefix="hypotheses-imports-", dir=temporary_root())
            )
            (self._folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        return self._folder
