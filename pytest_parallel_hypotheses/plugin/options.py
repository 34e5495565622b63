"""The plugin's options: declared once, each with an ini twin, and resolved in one place.

A value on the command line wins over the ini file; an invalid value from either is a
``pytest.UsageError`` that names where it came from, what it was and what is accepted. Paths
are relative to the invocation folder on the command line, to the ini file's folder there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import pytest

from ..core.config import (
    AUTO_REPEAT,
    MAX_REPEATS,
    STOP_ON_VALUES,
    ConflictingSettings,
    FalsificationConfig,
)
from ..core.numbers import parse_number
from ..core.setup import SETUP_EXPECTED, SETUP_TIMEOUT_EXPECTED, is_setup_command
from ..core.shards import Shard
from ..core.sizes import LIMIT_EXPECTED, format_size, parse_limit, parse_size
from ..engine.admission import MEMFREE_SHARE
from ..engine.machine import open_files_ceiling, total_memory
from ..finding.atomic import replaced_path, writes_through
from .outputfolder import spilling

DIR_OPTION = "--hypotheses"
DIR_INI = "hypotheses_dir"

#: The value of ``--hypotheses-workers`` that fits the run to the machine; the open-files
#: limit is its ceiling.
AUTO = "auto"

#: The values of ``--hypotheses-live``.
LIVE_MODES = ("auto", "on", "off")
#: The longest pause between two heartbeat lines: a day (a longer one overflows the clock).
MAX_HEARTBEAT = 86400.0


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
    #: Reuse the verdict of a hypothesis whose inputs have not changed (the verdict cache).
    reuse: bool = False
    #: Whether to show the live status: ``auto`` (on a terminal), ``on`` or ``off``.
    live: str = "auto"
    #: Seconds between two heartbeat lines when the live status is off (0: none).
    heartbeat: float = 60.0
    #: Where to write the event stream (JSON Lines), if anywhere.
    events_path: Optional[Path] = None
    #: Where to write the HTML report, if anywhere.
    html_path: Optional[Path] = None


#: Where the resolved settings of this session are kept, for every part that needs them.
SETTINGS_KEY = pytest.StashKey[HypothesesSettings]()

#: Checks and converts an option's text (a path already joined to its base); None: invalid.
Parser = Callable[[str], Optional[Any]]
#: Checks a path option's value; returns why it is not valid, or None.
PathCheck = Callable[[Path], Optional[str]]


@dataclass(frozen=True)
class Option:
    """A command-line option, its ini twin (also its ``dest``), and where its value goes: a
    field of the engine's settings or of :class:`HypothesesSettings`."""

    flag: str
    ini: str
    metavar: str
    help: str
    #: The field the value sets; ``engine`` says whether of FalsificationConfig.
    field: str
    engine: bool = True
    parse: Parser = str
    expected: str = ""
    #: The text used when neither the command line nor the ini file sets it (None: the
    #: field's own default).
    default: Optional[str] = None
    #: A path, relative to where it was given; checked by ``check_path``.
    is_path: bool = False
    check_path: Optional[PathCheck] = None
    #: The option that switches the plugin on: given without a value, it still counts.
    switch: bool = False
    #: Turns the parsed value into the fields it sets, when it sets more than ``field``.
    fields: Optional[Callable[[Any], Dict[str, Any]]] = None

    def settings(self, value: Any) -> Dict[str, Any]:
        """The fields this option's value sets."""
        return {self.field: value} if self.fields is None else self.fields(value)


def _positive_seconds(text: str) -> Optional[float]:
    value = parse_number(text)
    return value if value is not None and value > 0 else None


def _seconds(text: str) -> Optional[float]:
    value = parse_number(text)
    return value if value is not None and value >= 0 else None


def _heartbeat(text: str) -> Optional[float]:
    value = _seconds(text)
    return value if value is not None and value <= MAX_HEARTBEAT else None


def _workers(text: str) -> Optional[Union[int, str]]:
    if text.strip().lower() == AUTO:
        return AUTO
    return _whole_number(text, 1)


def _whole_number(text: str, minimum: int, maximum: Optional[int] = None) -> Optional[int]:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if minimum <= value and (maximum is None or value <= maximum) else None


def _byte_count(text: str) -> Optional[int]:
    value = parse_size(text)
    return value if value is not None and value >= 2 else None


def _memory_floor(text: str) -> Optional[int]:
    return _within_machine(parse_size(text))


def _memory_limit(text: str) -> Optional[int]:
    """A limit above the machine's memory would never stop a tree: ``1T`` for ``1G``."""
    return _within_machine(parse_limit(text))


def _within_machine(value: Optional[int]) -> Optional[int]:
    """A size of at least a byte and at most this machine's memory, else None."""
    total = total_memory()
    if value is None or value < 1 or (total is not None and value > total):
        return None
    return value


def _machine_memory_words() -> str:
    total = total_memory()
    return "" if total is None else f" ({format_size(total)})"


def _workers_fields(value: Any) -> Dict[str, Any]:
    """``auto`` is adaptive with the open-files ceiling; a number N is exactly N."""
    if value == AUTO:
        return {"max_concurrent_tests": open_files_ceiling(), "adaptive_concurrency": True}
    return {"max_concurrent_tests": value, "adaptive_concurrency": False}


def _stop_on(text: str) -> Optional[str]:
    value = text.strip().lower()
    return value if value in STOP_ON_VALUES else None


def _repeats(text: str) -> Optional[Any]:
    if text.strip().lower() == AUTO_REPEAT:
        return AUTO_REPEAT
    return _whole_number(text, 1, MAX_REPEATS)


def _open_fraction(text: str) -> Optional[float]:
    """A number strictly between 0 and 0.5 (an error level, a tolerance)."""
    value = parse_number(text)
    return value if value is not None and 0 < value < 0.5 else None


def _switch(text: str) -> Optional[bool]:
    return _SWITCHES.get(text.strip().lower())


_SWITCHES = {"yes": True, "true": True, "on": True, "1": True}
_SWITCHES.update({"no": False, "false": False, "off": False, "0": False})


def _setup_command(text: str) -> Optional[str]:
    """The command; an empty one (``--hypotheses-setup=``) is none: no setup step, whatever
    the ini file says. Blanks alone are a mistake."""
    if text == "":
        return text
    return text if is_setup_command(text) else None


def _writable_file(path: Path) -> Optional[str]:
    """Why a report cannot be written at ``path``, or None when it can."""
    if path.is_dir():
        return f"expected the path of a file, but {path} is a directory"
    if writes_through(path):
        return _writable_special(path)
    folder = _nearest_existing(replaced_path(path).parent)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"the report cannot be written there, because {folder} is not a folder this user "
            "may write to"
        )
    return None


def _file_in_existing_folder(path: Path) -> Optional[str]:
    """Why a file written during the run cannot be at ``path``, or None when it can: its
    folder must already exist (a typo in it should not quietly create a tree)."""
    if path.is_dir():
        return f"expected the path of a file, but {path} is a directory"
    if writes_through(path):
        return _writable_special(path)
    folder = replaced_path(path).parent
    if not folder.is_dir():
        return f"its folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"this user may not write to {path}"
    return None


def _writable_special(path: Path) -> Optional[str]:
    """A device or a FIFO (``/dev/null``, ``/dev/stdout``) is written to, not replaced: only
    it need be writable, not its folder (no user may write to ``/dev``)."""
    return None if os.access(path, os.W_OK) else f"this user may not write to {path}"


def _live_mode(text: str) -> Optional[str]:
    value = text.strip().lower()
    return value if value in LIVE_MODES else None


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists: where the report's folders would start."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


OPTIONS = (
    Option(
        flag=DIR_OPTION,
        ini=DIR_INI,
        field="directory",
        engine=False,
        metavar="DIR",
        is_path=True,
        switch=True,
        help="run the hypothesis scripts (.falsification/test_<id>.sh) of every git worktree "
        "of DIR, a repository or a folder of worktrees, instead of Python tests; without DIR: "
        f"the ini option {DIR_INI}, else the git repository of the current directory",
    ),
    Option(
        flag="--hypotheses-timeout",
        ini="hypotheses_timeout",
        field="test_timeout",
        metavar="SECONDS",
        parse=_positive_seconds,
        expected="a number of seconds greater than 0",
        help="stop a hypothesis script (its whole process tree) after SECONDS, unless its "
        f"metadata sets its own 'timeout' (default {FalsificationConfig.test_timeout:g})",
    ),
    Option(
        flag="--hypotheses-workers",
        ini="hypotheses_workers",
        field="max_concurrent_tests",
        metavar="N|auto",
        parse=_workers,
        fields=_workers_fields,
        expected=f"a whole number of at least 1, or {AUTO!r}",
        default=AUTO,
        help="run exactly N hypothesis scripts at once; 'auto' (the default) runs as many as "
        "the CPUs this process may use (affinity, cgroup CPU quota), more while the CPUs are "
        "idle (scripts that sleep or wait), none while free memory is below "
        "--hypotheses-memfree, and always at least one",
    ),
    Option(
        flag="--hypotheses-grace",
        ini="hypotheses_grace",
        field="kill_grace",
        metavar="SECONDS",
        parse=_seconds,
        expected="a number of seconds of at least 0",
        help="when stopping a script, send SIGKILL SECONDS after its deadline (SIGTERM comes "
        "at the deadline, once its tree is photographed), or after the first signal when the "
        "run is interrupted (SIGINT) "
        f"(default {FalsificationConfig.kill_grace:g})",
    ),
    Option(
        flag="--hypotheses-max-output",
        ini="hypotheses_max_output",
        field="max_output_bytes",
        metavar="BYTES",
        parse=_byte_count,
        expected="a whole number of bytes of at least 2, optionally with K, M, G or T",
        help="keep at most BYTES of each script's stdout and of its stderr, its head and "
        f"tail (default {FalsificationConfig.max_output_bytes})",
    ),
    Option(
        flag="--hypotheses-repeat",
        ini="hypotheses_repeat",
        field="repeats",
        metavar="N|auto",
        parse=_repeats,
        expected=f"a whole number from 1 to {MAX_REPEATS}, or {AUTO_REPEAT!r}",
        help="run each hypothesis script N times, one after the other in its worktree; the "
        "confidence grows with agreeing runs, and passes mixed with failures make the "
        "verdict inconclusive (flaky) (default 1); 'auto' runs it until its pass rate is "
        "decided (consistently passes, consistently fails, or flaky) at error level "
        "--hypotheses-alpha",
    ),
    Option(
        flag="--hypotheses-stop-on",
        ini="hypotheses_stop_on",
        field="stop_on",
        metavar="VERDICT",
        parse=_stop_on,
        expected=f"one of {', '.join(STOP_ON_VALUES)}",
        help="as soon as one hypothesis is supported, falsified, or either ('first'), stop "
        "the scripts still running and start no more; they are reported as skipped",
    ),
    Option(
        flag="--hypotheses-report",
        ini="hypotheses_report",
        field="report_path",
        engine=False,
        metavar="PATH",
        is_path=True,
        check_path=_writable_file,
        help="write a JSON report of every hypothesis to PATH (also when interrupted)",
    ),
    Option(
        flag="--hypotheses-shard",
        ini="hypotheses_shard",
        field="shard",
        engine=False,
        metavar="K/N",
        parse=Shard.parse,
        expected="K/N, two whole numbers with 1 <= K <= N, such as 1/3",
        help="run only part K of N (K from 1 to N) of the hypotheses, for the N jobs of a CI "
        "matrix: every job computes the same split, balanced by each hypothesis's "
        "estimated_test_time; merge their reports with `python -m pytest_parallel_hypotheses "
        "merge`",
    ),
    Option(
        flag="--hypotheses-alpha",
        ini="hypotheses_alpha",
        field="alpha",
        metavar="ALPHA",
        parse=_open_fraction,
        expected="a number strictly between 0 and 0.5",
        help="with --hypotheses-repeat=auto, the error level: a decision is wrong with "
        f"probability at most ALPHA, wherever it stops (default {FalsificationConfig.alpha:g})",
    ),
    Option(
        flag="--hypotheses-flake-tolerance",
        ini="hypotheses_flake_tolerance",
        field="flake_tolerance",
        metavar="RATE",
        parse=_open_fraction,
        expected="a number strictly between 0 and 0.5",
        help="with --hypotheses-repeat=auto, a pass rate of at least 1-RATE counts as "
        "consistently passing, at most RATE as consistently failing, and strictly between "
        f"as flaky (default {FalsificationConfig.flake_tolerance:g})",
    ),
    Option(
        flag="--hypotheses-max-repeats",
        ini="hypotheses_max_repeats",
        field="max_repeats",
        metavar="N",
        parse=lambda text: _whole_number(text, 1, MAX_REPEATS),
        expected=f"a whole number from 1 to {MAX_REPEATS}",
        help="with --hypotheses-repeat=auto, run one hypothesis at most N times in a session "
        f"(default {FalsificationConfig.max_repeats})",
    ),
    Option(
        flag="--hypotheses-repeat-budget",
        ini="hypotheses_repeat_budget",
        field="repeat_budget",
        metavar="SECONDS",
        parse=_positive_seconds,
        expected="a number of seconds greater than 0",
        help="with --hypotheses-repeat=auto, start no further run of a hypothesis once its "
        "runs took SECONDS (default: no budget)",
    ),
    Option(
        flag="--hypotheses-reuse",
        ini="hypotheses_reuse",
        field="reuse",
        engine=False,
        metavar="yes|no",
        parse=_switch,
        expected="yes or no",
        help="reuse the decided verdict of a hypothesis whose inputs (worktree content, "
        "script, metadata, settings, tool, interpreter) have not changed since it was "
        "reached; with --hypotheses-repeat=auto earlier runs count as evidence (default no)",
    ),
    Option(
        flag="--hypotheses-setup",
        ini="hypotheses_setup",
        field="setup_command",
        metavar="CMD",
        parse=_setup_command,
        expected=SETUP_EXPECTED,
        fields=lambda command: {"setup_command": command or None},
        help="run the shell command CMD at the root of each worktree before its hypotheses' "
        "first attempt, unless a hypothesis's metadata sets its own 'setup'; it runs again "
        "only when the worktree's content or the command changed, and a failure makes the "
        "hypothesis inconclusive (an empty CMD: none, whatever the ini file says)",
    ),
    Option(
        flag="--hypotheses-setup-timeout",
        ini="hypotheses_setup_timeout",
        field="setup_timeout",
        metavar="SECONDS",
        parse=_positive_seconds,
        expected=SETUP_TIMEOUT_EXPECTED,
        help="stop a setup step (its whole process tree) after SECONDS, unless a hypothesis's "
        f"metadata sets its own 'setup_timeout' (default {FalsificationConfig.setup_timeout:g})",
    ),
    Option(
        flag="--hypotheses-memory",
        ini="hypotheses_memory",
        field="memory_limit",
        metavar="SIZE",
        parse=_memory_limit,
        expected=f"{LIMIT_EXPECTED}, and at most this machine's memory{_machine_memory_words()}",
        help="stop a hypothesis script when the resident memory of its whole process tree "
        "exceeds SIZE (such as 500M or 2G), unless its metadata sets its own 'memory'; the "
        "hypothesis is then inconclusive (default: no limit)",
    ),
    Option(
        flag="--hypotheses-memfree",
        ini="hypotheses_memfree",
        field="memory_free_floor",
        metavar="SIZE",
        parse=_memory_floor,
        expected="a size greater than 0 and at most this machine's memory"
        f"{_machine_memory_words()}, optionally with K, M, G or T, such as 1G",
        help="with --hypotheses-workers=auto, start no script while the free memory is below "
        f"SIZE, except when none runs (default {MEMFREE_SHARE * 100:g}%% of the machine's memory)",
    ),
    Option(
        flag="--hypotheses-live",
        ini="hypotheses_live",
        field="live",
        engine=False,
        metavar="auto|on|off",
        parse=_live_mode,
        expected=f"one of {', '.join(LIVE_MODES)}",
        help="show a live status of the running hypotheses at the bottom of the terminal: "
        "'auto' (the default) when the output is a terminal and not -q",
    ),
    Option(
        flag="--hypotheses-heartbeat",
        ini="hypotheses_heartbeat",
        field="heartbeat",
        engine=False,
        metavar="SECONDS",
        parse=_heartbeat,
        expected=f"a number of seconds from 0 to {MAX_HEARTBEAT:g}",
        help="without the live status, write a line every SECONDS naming the hypotheses "
        f"still running, so a CI log shows a slow run is alive (default "
        f"{HypothesesSettings.heartbeat:g}; 0: never)",
    ),
    Option(
        flag="--hypotheses-events",
        ini="hypotheses_events",
        field="events_path",
        engine=False,
        metavar="PATH",
        is_path=True,
        check_path=_file_in_existing_folder,
        help="write the run's events to PATH as JSON Lines, each flushed as it happens",
    ),
    Option(
        flag="--hypotheses-html",
        ini="hypotheses_html",
        field="html_path",
        engine=False,
        metavar="PATH",
        is_path=True,
        check_path=_file_in_existing_folder,
        help="write a self-contained HTML report with a timeline of the run to PATH",
    ),
)

#: The options that only ``--hypotheses-repeat=auto`` reads.
AUTO_ONLY = ("alpha", "flake_tolerance", "max_repeats", "repeat_budget")


def add_options(parser: pytest.Parser) -> None:
    """Declare every option of the plugin and its ini twin."""
    group = parser.getgroup("hypotheses", "testing debugging hypotheses in git worktrees")
    for option in OPTIONS:
        optional_value = {"nargs": "?", "const": ""} if option.switch else {}
        group.addoption(
            option.flag,
            dest=option.ini,
            metavar=option.metavar,
            default=None,
            help=option.help,
            **optional_value,
        )
        what = (
            "folder searched by {} when given without a value" if option.switch else "default of {}"
        )
        parser.addini(option.ini, what.format(option.flag))


def resolve(config: pytest.Config) -> Optional[HypothesesSettings]:
    """The settings of this run, or None when ``--hypotheses`` was not given."""
    if config.getoption(DIR_INI) is None:
        return None
    engine: Dict[str, Any] = {}
    run: Dict[str, Any] = {}
    sources: Dict[str, str] = {}
    problems: List[str] = []  # every value that is not valid, told at once
    for option in OPTIONS:
        try:
            value, sources[option.field] = _option_value(config, option)
        except pytest.UsageError as error:
            problems.extend(map(str, error.args))
            continue
        if value is not None:
            (engine if option.engine else run).update(option.settings(value))
    if problems:
        raise pytest.UsageError(*problems)
    _check_distinct_files(config, run, sources)
    if config.getoption("dist", None) == "each":
        raise pytest.UsageError(
            "--dist=each is not valid with --hypotheses: expected a mode that runs each item "
            "once; every worker would run every script at the same time in its one worktree "
            "(--hypotheses-repeat runs a hypothesis several times, one attempt after another)"
        )
    return HypothesesSettings(
        directory=run.get("directory"),
        directory_source=sources["directory"],
        report_path=run.get("report_path"),
        falsification=spilling(_engine_settings(engine, sources), run),
        shard=run.get("shard"),
        reuse=run.get("reuse", False),
        **{name: run[name] for name in _WATCH_FIELDS if name in run},
    )


def _check_distinct_files(
    config: pytest.Config, run: Mapping[str, Any], sources: Mapping[str, str]
) -> None:
    """Two reports written to one file would leave only the last, under the other's name."""
    named: Dict[str, str] = {}
    junit = getattr(config.option, "xmlpath", None)
    files = [(run.get(field), sources[field]) for field in _REPORT_FIELDS]
    for path, source in [*files, (junit, "--junitxml")]:
        if path is None or writes_through(Path(path)):  # several may write to /dev/null
            continue
        key = os.path.realpath(path)
        if key in named:
            raise pytest.UsageError(
                f"{source} is not valid: expected a file of its own, but {named[key]} writes "
                f"there too (got {os.fspath(path)!r})"
            )
        named[key] = source


#: The settings that name a report file.
_REPORT_FIELDS = ("report_path", "html_path", "events_path")
#: The settings of watching a run, each set by one option.
_WATCH_FIELDS = ("live", "heartbeat", "events_path", "html_path")


def _engine_settings(engine: Dict[str, Any], sources: Mapping[str, str]) -> FalsificationConfig:
    """The engine's settings; an option that ``repeat=auto`` alone reads, given without it,
    or a cap that can never decide, is a usage error naming the option."""
    if engine.get("repeats") != AUTO_REPEAT:
        for name in AUTO_ONLY:
            if name in engine:
                raise pytest.UsageError(
                    f"{sources[name]} is not valid: expected only with --hypotheses-repeat=auto "
                    f"(got repeat {engine.get('repeats', 1)})"
                )
    try:
        return FalsificationConfig(**engine)
    except ConflictingSettings as error:
        named = " with ".join(sources[field] for field in error.fields)
        raise pytest.UsageError(f"{named} is not valid: {error}") from None


def _option_value(config: pytest.Config, option: Option) -> Tuple[Optional[Any], str]:
    """The checked value of one option (None when not given and without a default), and
    where it came from."""
    if option.is_path:
        path, source = _path_value(config, option)
        problem = None if path is None or option.check_path is None else option.check_path(path)
        if problem is not None:
            raise pytest.UsageError(f"{source} is not valid: {problem}")
        return path, source
    text, source = _raw_value(config, option)
    if text is None:
        text = option.default
    if text is None:
        return None, source
    value = option.parse(text)
    if value is None:
        raise pytest.UsageError(f"{source} is not valid: expected {option.expected} (got {text!r})")
    return value, source


def _raw_value(config: pytest.Config, option: Option) -> Tuple[Optional[str], str]:
    """The text of a setting and where it came from: the command line, else the ini file.

    An empty value on the command line is given (``--hypotheses-timeout=`` is a usage error,
    not the ini file's value); an empty one in the ini file, or ``--hypotheses`` without DIR,
    counts as not given.
    """
    cli = _cli_value(config, option)
    if cli is not None:
        return cli, f"{option.flag}={cli}"
    ini = str(config.getini(option.ini) or "").strip()
    if ini:
        return ini, f"ini option {option.ini} = {ini}"
    return None, option.flag


def _cli_value(config: pytest.Config, option: Option) -> Optional[str]:
    """The option's text on the command line, if given there (see :func:`_raw_value`)."""
    cli = config.getoption(option.ini)
    return str(cli) if cli or (cli is not None and not option.switch) else None


def _path_value(config: pytest.Config, option: Option) -> Tuple[Optional[Path], str]:
    """A path setting: relative to the invocation folder on the command line, to the ini
    file's folder in the ini file; ``~`` and ``..`` taken out, as pytest's ``--junitxml``
    does, so that the summary names the file plainly."""
    text, source = _raw_value(config, option)
    if text is None:
        return None, source
    given = _cli_value(config, option) is not None
    base = config.invocation_params.dir if given else _ini_base(config)
    return Path(os.path.normpath(base / os.path.expanduser(text))), source


def _ini_base(config: pytest.Config) -> Path:
    """Relative paths in the ini file are relative to the ini file's folder."""
    return config.inipath.parent if config.inipath is not None else config.rootpath
