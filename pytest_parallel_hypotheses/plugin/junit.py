"""The JUnit XML ``classname`` of a hypothesis: its worktree as a dotted path, never with
leading dots.

pytest derives the classname from the node id, whose worktree part is a path from the rootdir:
a worktree beside the repository (``../worktrees/shop-hyp-x``) would become
``...worktrees.shop-hyp-x``, which CI dashboards show as an empty package. pytest keeps
attributes set on a test case's reporter before its first report, so the plugin sets its own.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Optional

import pytest
from _pytest.junitxml import xml_key


def classname_for(label: str, rootdir_name: str, prefix: Optional[str]) -> str:
    """The dotted classname of a worktree label (its path from the rootdir); the rootdir's own
    name when the worktree is the rootdir, after the ``--junit-prefix`` if any."""
    parts = [part for part in PurePosixPath(label).parts if part not in ("..", ".", "/")]
    names = [prefix] if prefix else []
    names += parts or [rootdir_name]
    return ".".join(names)


def set_classname(config: pytest.Config, report: pytest.TestReport) -> None:
    """Give the report's JUnit test case the plugin's classname (when ``--junitxml`` is on)."""
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    label = report.nodeid.rpartition("::")[0]
    classname = classname_for(label, config.rootpath.name, xml.prefix)
    xml.node_reporter(report).add_attribute("classname", classname)
