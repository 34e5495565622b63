"""Whether a script's Python tried to import a compiled extension its worktree has no build of.

An extension module built in place in the installed checkout is ignored by git, so no other
worktree has it. A package with a pure-Python fallback then runs the fallback without a word,
and a script that tests the compiled code passes or fails on other code: its verdict would be
wrong. A script that never imports the extension is not concerned, so the scripts of such a
worktree are watched: a ``sitecustomize`` module first on ``PYTHONPATH`` notes each attempt to
import one of the missing modules in a file of the attempt's own, then runs the
``sitecustomize`` it hides, if there is one. Every Python of the script's tree inherits the
watch; a Python started with ``-S`` or ``-I`` reads no ``sitecustomize`` and is not watched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

#: The modules to watch, comma-separated.
WATCHED_VARIABLE = "HYPOTHESES_WATCHED_IMPORTS"
#: The file that each attempt to import one of them is noted in, a line each.
NOTES_VARIABLE = "HYPOTHESES_IMPORTS_NOTED"

#: The watching ``sitecustomize``: plain enough for any Python 3, and silent whatever fails
#: in it, except the module it hides, whose errors ``site`` reports as it would have.
SITECUSTOMIZE = f"""\
# Written by pytest-parallel-hypotheses for the scripts of one run: notes each attempt to
# import a compiled extension that the script's worktree has no build of, then runs the
# sitecustomize module that this one hides, if there is one.
import os
import sys


def _watch():
    watched = frozenset(filter(None, os.environ.get("{WATCHED_VARIABLE}", "").split(",")))
    notes = os.environ.get("{NOTES_VARIABLE}")
    if not watched or not notes:
        return

    class ExtensionImports(object):
        def find_spec(self, name, path=None, target=None):
            if name in watched:
                try:
                    with open(notes, "a") as noted:
                        noted.write(name + "\\n")
                except OSError:
                    pass
            return None

    sys.meta_path.insert(0, ExtensionImports())


def _run_hidden():
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(module_from_spec(spec))


_watch()
_run_hidden()
"""


class ImportWatch:
    """The watching ``sitecustomize`` of one run and the notes of its attempts, in a folder
    made when a worktree first needs it and removed by :meth:`close`."""

    def __init__(self) -> None:
        self._folder: Optional[Path] = None

    def environment(
        self, env: Mapping[str, str], watched: Sequence[str], key: str
    ) -> Tuple[Dict[str, str], Path]:
        """``env`` with the watch of the ``watched`` modules for the attempts of one
        hypothesis (``key``), and the file their notes go to."""
        folder = self._made()
        notes = folder / f"imports-{key}"
        python_path = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
        watching = {
            "PYTHONPATH": python_path,
            WATCHED_VARIABLE: ",".join(watched),
            NOTES_VARIABLE: str(notes),
        }
        return {**env, **watching}, notes

    @staticmethod
    def take(notes: Path) -> Tuple[str, ...]:
        """The modules noted since the last call, once each, in the order first noted."""
        try:
            text = notes.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ()
        notes.unlink(missing_ok=True)
        return tuple(dict.fromkeys(line for line in text.splitlines() if line))

    def close(self) -> None:
        """Remove the folder, if it was made."""
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _made(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="hypotheses-imports-"))
            (self._folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        return self._folder
