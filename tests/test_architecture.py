"""The package's rooms import one way: core <- finding <- engine <- report <- plugin <- distributed
<- cli. Every import statement counts, those under ``TYPE_CHECKING`` and inside functions too."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

import pytest_parallel_hypotheses

PACKAGE = Path(pytest_parallel_hypotheses.__file__).parent
NAME = "pytest_parallel_hypotheses"

#: The rooms from the bottom up: a room may import only the rooms before it, and itself.
ROOMS = ("core", "finding", "engine", "report", "plugin", "distributed", "cli")

Edge = Tuple[str, str, int]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[Tuple[str, int]]:
    """Every module of the package that ``path`` imports, with the line of the import."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = _module_path(candidate) is not None
                yield (candidate if is_module else base), node.lineno


def _module_path(name: str) -> Path | None:
    if not name.startswith(NAME):
        return None
    relative = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / relative.with_suffix(".py"), PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def room_of(module: str) -> str | None:
    """The room of a module; None for the package's front door (its top-level modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def package_edges() -> Dict[str, List[Edge]]:
    edges: Dict[str, List[Edge]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        edges[source] = [
            (source, target, line)
            for target, line in imports_of(path)
            if target.startswith(NAME) and target != source
        ]
    return edges


def test_every_module_lives_in_a_room_or_is_the_front_door() -> None:
    loose = [
        module_name(path) for path in PACKAGE.glob("*.py") if module_name(path) not in _FRONT_DOOR
    ]
    assert loose == []


_FRONT_DOOR = {
    NAME,
    f"{NAME}.__main__",
    # documented module paths of earlier versions, kept as thin re-exports
    f"{NAME}.classification",
    f"{NAME}.halting",
}


def test_no_room_imports_a_room_above_it_or_the_front_door() -> None:
    wrong = []
    for source, edges in package_edges().items():
        here = room_of(source)
        if here is None:
            continue  # the front door may use every room
        for _, target, line in edges:
            there = room_of(target)
            if there is None or ROOMS.index(there) > ROOMS.index(here):
                wrong.append(f"{source}:{line} imports {target}")
    assert wrong == []


def test_no_import_cycle_between_modules() -> None:
    graph = {
        source: {target for _, target, _ in edges if target in _all_modules()}
        for source, edges in package_edges().items()
    }
    assert _cycles(graph) == []


def _all_modules() -> Set[str]:
    return {module_name(path) for path in PACKAGE.rglob("*.py")}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Each cycle found by a depth-first search, as the list of modules along it."""
    found: List[List[str]] = []
    state: Dict[str, int] = {}

    def visit(node: str, trail: List[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if target == node.rpartition(".")[0]:
                continue  # a module's own package is imported before it in any case
            if state.get(target) == 1:
                found.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("pytest_parallel_hypotheses.engine.executor", "pytest_parallel_hypotheses.core", True),
        ("pytest_parallel_hypotheses.core.models", "pytest_parallel_hypotheses.engine", False),
    ],
)
def test_the_direction_rule_itself_tells_up_from_down(
    source: str, target: str, expected: bool
) -> None:
    here, there = room_of(source), room_of(target)
    assert here is not None
    assert there is not None
    assert (ROOMS.index(there) <= ROOMS.index(here)) is expected


@pytest.mark.parametrize(
    ("old_path", "name"),
    [
        ("pytest_parallel_hypotheses.classification", "classify_exit"),
        ("pytest_parallel_hypotheses.classification", "wilson_lower_bound"),
        ("pytest_parallel_hypotheses.halting", "StopOn"),
        ("pytest_parallel_hypotheses.halting", "stop_reason"),
    ],
)
def test_earlier_documented_module_paths_still_import(old_path: str, name: str) -> None:
    module = importlib.import_module(old_path)
    new = importlib.import_module(old_path.replace(NAME, f"{NAME}.core"))
    assert getattr(module, name) is getattr(new, name)


def test_both_entry_points_load() -> None:
    from importlib.metadata import entry_points

    loaded = {ep.name: ep.load() for ep in entry_points(group="pytest11") if NAME in ep.value}
    assert set(loaded) == {"parallel_hypotheses", "parallel_hypotheses_distributed"}
