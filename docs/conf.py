"""Sphinx configuration of the pytest-parallel-hypotheses documentation.

The version comes from the installed package, and the field tables of the configuration
reference are generated from the dataclasses themselves, so neither can drift from the code.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from typing import Any, Dict, List, Set

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from pytest_parallel_hypotheses import __version__

project = "pytest-parallel-hypotheses"
author = "pytest-parallel-hypotheses developers"
copyright = "the pytest-parallel-hypotheses developers"
release = __version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3  # so Markdown pages can link to their own sections

html_theme = "furo"
html_title = f"{project} {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

doctest_default_flags = 0  # compare output exactly; examples print only what is stable

logger = logging.getLogger(__name__)


class DataclassFields(SphinxDirective):
    """A table of a dataclass's fields with their types and defaults, read from the class.

    The content gives one ``field: description`` entry per field; a field without a
    description, or a description of a field that does not exist, is a build warning (an
    error under ``-W``), so the table always matches the code.
    """

    required_arguments = 1
    has_content = True

    def run(self) -> List[nodes.Node]:
        fields = dataclasses.fields(_import_object(self.arguments[0]))
        descriptions = self._descriptions()
        self._check({f.name for f in fields}, set(descriptions))
        rows = [
            [
                f"``{field.name}``",
                f"``{field.type}``",
                f"``{_default_of(field)}``",
                descriptions.get(field.name, ""),
            ]
            for field in fields
        ]
        return self._table(rows)

    def _check(self, fields: Set[str], described: Set[str]) -> None:
        """Warn about every field without a description and every description without a field."""
        for name in sorted(fields - described):
            self._warn(f"field {name!r} of {self.arguments[0]} has no description")
        for name in sorted(described - fields):
            self._warn(f"{self.arguments[0]} has no field {name!r} to describe")

    def _warn(self, message: str) -> None:
        logger.warning(message, location=self.get_location())

    def _descriptions(self) -> Dict[str, str]:
        entries: Dict[str, str] = {}
        name = None
        for line in self.content:
            if line and not line[0].isspace():
                name, _, text = line.partition(":")
                name = name.strip()
                entries[name] = text.strip()
            elif name is not None and line.strip():
                entries[name] += " " + line.strip()
        return entries

    def _table(self, rows: List[List[str]]) -> List[nodes.Node]:
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 22 18 14 46",
            "",
            "   * - Field",
            "     - Type",
            "     - Default",
            "     - Meaning",
        ]
        for row in rows:
            lines.append(f"   * - {row[0]}")
            lines.extend(f"     - {cell}" for cell in row[1:])
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), 0, container)
        return container.children


def _import_object(dotted: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def _default_of(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "(required)"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def setup(app: Sphinx) -> Dict[str, Any]:
    app.add_directive("dataclass-fields", DataclassFields)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
