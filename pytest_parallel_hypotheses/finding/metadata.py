"""What a hypothesis's optional metadata file may say, checked field by field.

``.falsification/config_<id>.json`` holds the :class:`~.models.Hypothesis` fields plus the
optional per-hypothesis ``timeout``, ``setup``, ``setup_timeout``, ``polarity`` and ``memory``.
A typo or a wrong type must stop that one hypothesis with a sentence naming the file, not
surface later as a confusing crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..core.classification import HypothesisStatus, Polarity
from ..core.models import Hypothesis
from ..core.numbers import is_number, number_at_least
from ..core.setup import (
    SETUP_EXPECTED,
    SETUP_TIMEOUT_EXPECTED,
    is_setup_command,
    is_setup_timeout,
)
from ..core.sizes import MAX_SIZE, MIN_LIMIT, parse_limit

#: How deep a metadata file may nest its values: far beyond any written by hand, and far
#: below Python's recursion limit, which copying the values into the reports would reach.
MAX_NESTING = 100

#: The key that sets a per-hypothesis deadline; every other key is a Hypothesis field, or one
#: of the run keys below.
TIMEOUT_KEY = "timeout"
#: The key that keeps a hypothesis out of the verdict cache (``false``: its script depends on
#: the network or the clock, so unchanged inputs do not mean an unchanged outcome).
CACHE_KEY = "cache"
#: The keys of how the hypothesis is run: its worktree's setup step and its script's polarity.
SETUP_KEY = "setup"
SETUP_TIMEOUT_KEY = "setup_timeout"
POLARITY_KEY = "polarity"
#: The polarity values a metadata file may name.
POLARITY_VALUES = tuple(polarity.value for polarity in Polarity)
#: The key that sets a per-hypothesis memory limit of the script's tree: bytes, or a size
#: such as "500M".
MEMORY_KEY = "memory"


class MetadataError(Exception):
    """A metadata file that cannot be used; the message names the file and the fault."""


@dataclass(frozen=True)
class Metadata:
    """A hypothesis as its metadata describes it, and how it asks to be run: its own deadline,
    its worktree's setup step and the polarity of its script, where it sets them."""

    hypothesis: Hypothesis
    timeout: Optional[float]
    setup: Optional[str] = None
    setup_timeout: Optional[float] = None
    polarity: Polarity = Polarity.DISPROVE
    memory: Optional[int] = None
    #: False when the metadata keeps the hypothesis out of the verdict cache.
    cache: bool = True


def read_metadata(path: Path, hypothesis_id: str) -> Metadata:
    """Read and check ``path``; a missing file gives a hypothesis with only its id."""
    if not path.exists():
        return Metadata(Hypothesis(id=hypothesis_id, description=""), None)
    data = _load_object(path)
    runs = {key: data.pop(key) for key in _RUN_RULES if key in data}
    for key in _RUN_DEFAULT_IF_NULL:  # null: the run's, as the legacy null timeout meant
        if key in runs and runs[key] is None:
            del runs[key]
    for name, value in runs.items():
        _check(path, name, value, _RUN_RULES[name])
    timeout = runs.get(TIMEOUT_KEY)
    setup_timeout = runs.get(SETUP_TIMEOUT_KEY)
    cache = data.pop(CACHE_KEY, True)
    if not isinstance(cache, bool):
        raise MetadataError(
            f"metadata file {path}: {CACHE_KEY!r} must be true or false, got {cache!r}"
        )
    if data.setdefault("id", hypothesis_id) != hypothesis_id:
        raise MetadataError(
            f"metadata file {path}: 'id' is {data['id']!r} but the file is for "
            f"hypothesis {hypothesis_id!r}"
        )
    data.setdefault("description", "")
    for name, value in data.items():
        _check_field(path, name, value)
    try:
        hypothesis = Hypothesis.from_dict(data)
    except (TypeError, ValueError) as error:
        raise MetadataError(f"metadata file {path}: {error}") from None
    return Metadata(
        hypothesis,
        None if timeout is None else float(timeout),
        runs.get(SETUP_KEY),
        None if setup_timeout is None else float(setup_timeout),
        Polarity(runs.get(POLARITY_KEY, Polarity.DISPROVE.value)),
        _memory_bytes(runs.get(MEMORY_KEY)),
        cache,
    )


def _load_object(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MetadataError(f"cannot read metadata file {path}: {error}") from None
    too_deep = MetadataError(
        f"metadata file {path} nests its values more than {MAX_NESTING} levels deep"
    )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(
            f"metadata file {path} is not valid JSON: {error.msg} "
            f"(line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:  # the decoder's own limit, near Python's recursion limit
        raise too_deep from None
    if _nesting(data) > MAX_NESTING:  # copying it into the report would pass that limit
        raise too_deep
    if not isinstance(data, dict):
        raise MetadataError(
            f"metadata file {path} must hold a JSON object, found {type(data).__name__}"
        )
    return data


def _nesting(value: object) -> int:
    """How many levels of objects and arrays ``value`` nests (a plain value: none), counted
    without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _is_positive_number(value: object) -> bool:
    return number_at_least(value, 0, inclusive=False)


def _is_text_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


_STATUSES = frozenset(status.value for status in HypothesisStatus)

#: A test of a JSON value, and the words that say what it must be.
Rule = Tuple[Callable[[object], bool], str]

#: For each run key, its rule; ``null`` is refused, but for the keys of
#: :data:`_RUN_DEFAULT_IF_NULL`: leave a key out to use its default.
_RUN_RULES: Mapping[str, Rule] = {
    TIMEOUT_KEY: (_is_positive_number, "a number of seconds > 0"),
    SETUP_KEY: (is_setup_command, SETUP_EXPECTED),
    SETUP_TIMEOUT_KEY: (is_setup_timeout, SETUP_TIMEOUT_EXPECTED),
    POLARITY_KEY: (
        lambda v: isinstance(v, str) and v in POLARITY_VALUES,
        f"one of {', '.join(map(repr, POLARITY_VALUES))}",
    ),
    MEMORY_KEY: (
        lambda v: _memory_bytes(v) is not None,
        'a whole number of bytes >= 1048576 (1 MiB) or a size such as "500M" (K, M, G or T)',
    ),
}


#: The run keys whose ``null`` means the run's setting: the deadline and the memory limit,
#: which the run has one of for every script (a setup step or a polarity null would be
#: ambiguous: none, or the run's).
_RUN_DEFAULT_IF_NULL = (TIMEOUT_KEY, MEMORY_KEY)


def _memory_bytes(value: object) -> Optional[int]:
    """The ``memory`` value in bytes (a whole number, or a string such as "500M"), or None
    when there is none or it is not one."""
    if isinstance(value, str):
        return parse_limit(value)
    if isinstance(value, int) and not isinstance(value, bool) and MIN_LIMIT <= value <= MAX_SIZE:
        return value
    return None


#: For each field, a test of its JSON value and the words that say what it must be.
_FIELD_RULES: Mapping[str, Rule] = {
    "id": (lambda v: isinstance(v, str), "a string"),
    "description": (lambda v: isinstance(v, str), "a string"),
    "test_strategy": (lambda v: isinstance(v, str), "a string"),
    "expected_behavior": (lambda v: isinstance(v, str), "a string"),
    "estimated_test_time": (is_number, "a number of seconds"),
    "probability": (is_number, "a number"),
    "impact": (is_number, "a number"),
    "test_complexity": (is_number, "a number"),
    "status": (
        lambda v: isinstance(v, str) and v in _STATUSES,
        f"one of {', '.join(sorted(_STATUSES))}",
    ),
    "test_results": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "confidence_score": (lambda v: v is None or is_number(v), "a number or null"),
    "dependencies": (_is_text_list, "a list of strings"),
}


def _check_field(path: Path, name: str, value: object) -> None:
    rule = _FIELD_RULES.get(name)
    if rule is None:
        return  # unknown names are refused by Hypothesis.from_dict, with the full list
    _check(path, name, value, rule)


def _check(path: Path, name: str, value: object, rule: Rule) -> None:
    accepts, expected = rule
    if not accepts(value):
        raise MetadataError(f"metadata file {path}: {name!r} must be {expected}, got {value!r}")
