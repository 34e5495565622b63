"""The plugin's options: declared once, each with an ini twin, and resolved in one place.

A value on the command line wins over the ini file; an invalid value from either is a
``pytest.UsageError`` that names where it came from, what it was and what is accepted.
"""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import pytest

from .models import MAX_REPEATS, STOP_ON_VALUES, FalsificationConfig
from .sharding import Shard

DIR_OPTION = "--hypotheses"
DIR_INI = "hypotheses_dir"
REPORT_OPTION = "--hypotheses-report"
REPORT_INI = "hypotheses_report"
SHARD_OPTION = "--hypotheses-shard"
SHARD_INI = "hypotheses_shard"

#: Open files one running script may hold (pipes, their transports, a process handle), with
#: room to spare; ``auto`` workers keep the whole run under the open-files limit.
FILES_PER_SCRIPT = 8
#: Open files kept for pytest itself when ``auto`` divides the limit.
FILES_FOR_PYTEST = 64
#: The open-files budget assumed when the limit is infinite.
UNLIMITED_FILES = 65536

#: The value of ``--hypotheses-workers`` that sizes the pool from the open-files limit.
AUTO = "auto"

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


@dataclass(frozen=True)
class HypothesesSettings:
    """Everything a hypotheses run needs from the options, resolved once."""

    #: The folder to search; None for the git repository of the current directory.
    directory: Optional[Path]
    #: How the user gave the folder, to name it in error messages.
    directory_source: str
    #: Where to write the JSON report, if anywhere.
    report_path: Optional[Path]
    #: The engine's settings: timeout, concurrency, kill grace and output cap.
    falsification: FalsificationConfig
    #: The part of the hypotheses this job runs, for a CI matrix; None for all of them.
    shard: Optional[Shard] = None


@dataclass(frozen=True)
class _EngineOption:
    """A command-line option and its ini twin (also its ``dest``) that set one field of the
    engine's settings."""

    option: str
    ini: str
    field: str
    metavar: str
    parse: Callable[[str], Optional[Any]]
    expected: str
    help: str
    #: The text used when neither the command line nor the ini file sets it (None: the
    #: engine's own default).
    default: Optional[str] = None


def _positive_seconds(text: str) -> Optional[float]:
    value = _seconds(text)
    return value if value is not None and value > 0 else None


def _seconds(text: str) -> Optional[float]:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _workers(text: str) -> Optional[int]:
    if text.strip().lower() == AUTO:
        return auto_workers()
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 1 else None


def _byte_count(text: str) -> Optional[int]:
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = cleaned[-1:] if cleaned[-1:] in _SIZE_UNITS else ""
    try:
        value = int(cleaned[: len(cleaned) - len(unit)]) * _SIZE_UNITS[unit]
    except ValueError:
        return None
    return value if value >= 2 else None


_ENGINE_OPTIONS = (
    _EngineOption(
        option="--hypotheses-timeout",
        ini="hypotheses_timeout",
        field="test_timeout",
        metavar="SECONDS",
        parse=_positive_seconds,
        expected="a number of seconds greater than 0",
        help="stop a hypothesis script (its whole process tree) after SECONDS, unless its "
        f"metadata sets its own 'timeout' (default {FalsificationConfig.test_timeout:g})",
    ),
    _EngineOption(
        option="--hypotheses-workers",
        ini="hypotheses_workers",
        field="max_concurrent_tests",
        metavar="N|auto",
        parse=_workers,
        expected=f"a whole number of at least 1, or {AUTO!r}",
        default=AUTO,
        help="run at most N hypothesis scripts at once; 'auto' (the default) starts them all "
        "at once, within the open-files limit",
    ),
    _EngineOption(
        option="--hypotheses-grace",
        ini="hypotheses_grace",
        field="kill_grace",
        metavar="SECONDS",
        parse=_seconds,
        expected="a number of seconds of at least 0",
        help="after SIGTERM, wait SECONDS before SIGKILL when stopping a script "
        f"(default {FalsificationConfig.kill_grace:g})",
    ),
    _EngineOption(
        option="--hypotheses-max-output",
        ini="hypotheses_max_output",
        field="max_output_bytes",
        metavar="BYTES",
        parse=_byte_count,
        expected="a whole number of bytes of at least 2, optionally with K, M or G",
        help="keep at most BYTES of each script's stdout and of its stderr, its head and "
        f"tail (default {FalsificationConfig.max_output_bytes})",
    ),
)


# Repeats and halting: how often each script runs, and when the run may stop early.


def _repeats(text: str) -> Optional[int]:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 1 <= value <= MAX_REPEATS else None


def _stop_on(text: str) -> Optional[str]:
    value = text.strip().lower()
    return value if value in STOP_ON_VALUES else None


_RUN_CONTROL_OPTIONS = (
    _EngineOption(
        option="--hypotheses-repeat",
        ini="hypotheses_repeat",
        field="repeats",
        metavar="N",
        parse=_repeats,
        expected=f"a whole number from 1 to {MAX_REPEATS}",
        help="run each hypothesis script N times, one after the other in its worktree; the "
        "confidence grows with agreeing runs, and passes mixed with failures make the "
        "verdict inconclusive (flaky) (default 1)",
    ),
    _EngineOption(
        option="--hypotheses-stop-on",
        ini="hypotheses_stop_on",
        field="stop_on",
        metavar="VERDICT",
        parse=_stop_on,
        expected=f"one of {', '.join(STOP_ON_VALUES)}",
        help="as soon as one hypothesis is supported, falsified, or either ('first'), stop "
        "the scripts still running and start no more; they are reported as skipped",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    """Declare every option of the plugin and its ini twin."""
    group = parser.getgroup("hypotheses", "testing debugging hypotheses in git worktrees")
    group.addoption(
        DIR_OPTION,
        dest=DIR_INI,
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="run the hypothesis scripts (.falsification/test_<id>.sh) of every git worktree "
        "of DIR, a repository or a folder of worktrees, instead of Python tests; without DIR: "
        f"the ini option {DIR_INI}, else the git repository of the current directory",
    )
    parser.addini(DIR_INI, f"folder searched by {DIR_OPTION} when given without a value")
    for engine_option in (*_ENGINE_OPTIONS, *_RUN_CONTROL_OPTIONS):
        group.addoption(
            engine_option.option,
            dest=engine_option.ini,
            metavar=engine_option.metavar,
            default=None,
            help=engine_option.help,
        )
        parser.addini(engine_option.ini, f"default of {engine_option.option}")
    group.addoption(
        REPORT_OPTION,
        dest=REPORT_INI,
        metavar="PATH",
        default=None,
        help="write a JSON report of every hypothesis to PATH (also when interrupted)",
    )
    parser.addini(REPORT_INI, f"default of {REPORT_OPTION}")
    _add_shard_option(group, parser)


def _add_shard_option(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    group.addoption(
        SHARD_OPTION,
        dest=SHARD_INI,
        metavar="K/N",
        default=None,
        help="run only part K of N (K from 1 to N) of the hypotheses, for the N jobs of a CI "
        "matrix: every job computes the same split, balanced by each hypothesis's "
        "estimated_test_time; merge their reports with `python -m pytest_parallel_hypotheses "
        "merge`",
    )
    parser.addini(SHARD_INI, f"default of {SHARD_OPTION}")


def resolve(config: pytest.Config) -> Optional[HypothesesSettings]:
    """The settings of this run, or None when ``--hypotheses`` was not given."""
    if config.getoption(DIR_INI) is None:
        return None
    directory, source = _path_value(config, DIR_INI, DIR_OPTION)
    return HypothesesSettings(
        directory=directory,
        directory_source=source,
        report_path=_report_path(config),
        falsification=FalsificationConfig(**_engine_fields(config)),
        shard=_shard(config),
    )


def _shard(config: pytest.Config) -> Optional[Shard]:
    text, source = _raw_value(config, SHARD_INI, SHARD_OPTION)
    if text is None:
        return None
    shard = Shard.parse(text)
    if shard is None:
        raise pytest.UsageError(
            f"{source} is not valid: expected K/N, two whole numbers with 1 <= K <= N, such as "
            f"1/3 (got {text!r})"
        )
    return shard


def auto_workers() -> int:
    """How many scripts may run at once without exhausting the open-files limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = UNLIMITED_FILES if soft == resource.RLIM_INFINITY else soft
    return max(1, (budget - FILES_FOR_PYTEST) // FILES_PER_SCRIPT)


def _engine_fields(config: pytest.Config) -> Dict[str, Any]:
    fields: Dict[str, Any] = {}
    for engine_option in (*_ENGINE_OPTIONS, *_RUN_CONTROL_OPTIONS):
        text, source = _raw_value(config, engine_option.ini, engine_option.option)
        if text is None:
            text = engine_option.default
        if text is None:
            continue
        value = engine_option.parse(text)
        if value is None:
            raise pytest.UsageError(
                f"{source} is not valid: expected {engine_option.expected} (got {text!r})"
            )
        fields[engine_option.field] = value
    return fields


def _raw_value(config: pytest.Config, name: str, option: str) -> Tuple[Optional[str], str]:
    """The text of a setting and where it came from: the command line, else the ini file.

    An empty value counts as not given (``--hypotheses`` without DIR stores one).
    """
    cli = config.getoption(name)
    if cli:
        return str(cli), f"{option}={cli}"
    ini = str(config.getini(name) or "").strip()
    if ini:
        return ini, f"ini option {name} = {ini}"
    return None, option


def _path_value(config: pytest.Config, name: str, option: str) -> Tuple[Optional[Path], str]:
    """A path setting: relative to the invocation folder on the command line, to the ini
    file's folder in the ini file."""
    text, source = _raw_value(config, name, option)
    if text is None:
        return None, source
    base = config.invocation_params.dir if config.getoption(name) else _ini_base(config)
    return base / text, source


def _report_path(config: pytest.Config) -> Optional[Path]:
    path, source = _path_value(config, REPORT_INI, REPORT_OPTION)
    if path is None:
        return None
    if path.is_dir():
        raise pytest.UsageError(
            f"{source} is not valid: expected the path of a file, but {path} is a directory"
        )
    folder = _nearest_existing(path.parent)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise pytest.UsageError(
            f"{source} is not valid: the report cannot be written there, "
            f"because {folder} is not a folder this user may write to"
        )
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists: where the report's folders would start."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _ini_base(config: pytest.Config) -> Path:
    """Relative paths in the ini file are relative to the ini file's folder."""
    return config.inipath.parent if config.inipath is not None else config.rootpath
