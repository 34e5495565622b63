"""Where a pytest run writes its scripts' output: beside the report, which points to it.

The plugin always spills (see :mod:`..engine.spill`): a run of any size then holds only an
excerpt of each stream. Beside the JSON report (else the HTML report) the files travel with
the report that names them; without either, a folder in pytest's own temporary folder of the
session holds them, kept and removed as pytest keeps and removes those. Under pytest-xdist
the controller decides the folder, by the same rule, and tells its workers: every process of
the session then finds every script's files (see :mod:`..engine.spilled`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional

import pytest

from ..core.config import FalsificationConfig
from ..engine.spill import place_temporary_output, spill_folder
from ..finding.atomic import writes_through

#: What is appended to a report's name to name its output folder.
SUFFIX = ".output"


def output_folder(report: Optional[Path], html: Optional[Path]) -> Optional[Path]:
    """``<report>.output`` beside the JSON report, else beside the HTML report, else None. A
    report written to a device or a FIFO (``/dev/null``) has no folder beside it: ``/dev``
    is no place for the scripts' output."""
    beside = next((path for path in (report, html) if path and not writes_through(path)), None)
    return None if beside is None else beside.with_name(beside.name + SUFFIX)


def spilling(engine: FalsificationConfig, run: Mapping[str, Any]) -> FalsificationConfig:
    """The engine's settings with output spilled to the run's output folder."""
    folder = output_folder(run.get("report_path"), run.get("html_path"))
    return dataclasses.replace(
        engine, spill_output=True, output_folder=None if folder is None else str(folder)
    )


def session_folder(engine: FalsificationConfig) -> Optional[Path]:
    """The one output folder of this session, as an absolute path (the same each time it is
    asked: a temporary one is made once per process); None when output stays in memory."""
    folder = spill_folder(engine)
    return None if folder is None else folder.absolute()


def writing_to(engine: FalsificationConfig, folder: Optional[str]) -> FalsificationConfig:
    """The engine's settings with output spilled to ``folder``, when one is given."""
    return engine if folder is None else dataclasses.replace(engine, output_folder=folder)


class TemporaryOutput:
    """Puts this session's temporary output folder in pytest's temporary folder of the session
    (``--basetemp``, else ``pytest-of-<user>/pytest-<N>``), made only when a run needs it, and
    back in the system's temporary folder when the session ends."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        place_temporary_output(self._root)

    def pytest_unconfigure(self) -> None:
        place_temporary_output(None)

    def _root(self) -> Optional[Path]:
        """pytest's temporary folder of the session; None, the system's, when pytest's is off
        (``-p no:tmpdir``)."""
        factory = getattr(self._config, "_tmp_path_factory", None)
        return None if factory is None else factory.getbasetemp()
