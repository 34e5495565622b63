"""One report from several: the JSON reports of a CI matrix's shards, merged into the report a
single run of every hypothesis would have written.

A merge that could mislead is refused with a plain sentence: reports of another schema
version, a hypothesis present twice, or shards that did not split the same hypotheses (some
would be missing) or that are not all there.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import pytest

from ..core.classification import TestResult
from ..finding.atomic import write_atomically
from ..report.html import render_html
from ..report.jsonreport import SCHEMA_VERSION, report_document
from ..report.records import Record

#: The results a passing pytest run may have: the others make its exit status 1.
_PASSING = (TestResult.PASS.value, TestResult.SKIP.value)

#: The exit statuses of a run that went to its end: every other one is kept by a merge.
_NORMAL_STATUSES = (
    int(pytest.ExitCode.OK),
    int(pytest.ExitCode.TESTS_FAILED),
    int(pytest.ExitCode.NO_TESTS_COLLECTED),
)

Report = Dict[str, Any]
#: A report and the file it was read from, to name it in messages.
Source = Tuple[Path, Report]


class MergeError(Exception):
    """The reports cannot be merged; the message says why in a sentence."""


def merge_files(paths: Sequence[Path], arguments: Sequence[str]) -> Report:
    """The merged report of the report files ``paths``; ``arguments`` is the command line."""
    return merge([(path, load(path)) for path in paths], arguments)


def load(path: Path) -> Report:
    """A report file's content, checked to be a report of this schema version."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise MergeError(f"cannot read {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise MergeError(f"{path} is not JSON: {error.msg} (line {error.lineno})") from None
    if not isinstance(report, dict) or not {"schema_version", "run", "hypotheses"} <= set(report):
        raise MergeError(f"{path} is not a report written by --hypotheses-report")
    return report


def merge(sources: Sequence[Source], arguments: Sequence[str]) -> Report:
    """The report of every hypothesis of ``sources``, as a single run would have written it."""
    _check_versions(sources)
    _check_shards(sources)
    records = _records(sources)
    run = _merged_run(sources, _status(sources, records), arguments)
    return report_document(run, records)


def _status(sources: Sequence[Source], records: Sequence[Record]) -> int:
    """The records' exit status, unless a part ended abnormally (cancelled, an internal
    error): a pipeline must not read a merge of a cancelled part as a clean run."""
    statuses = (int(report["run"]["exit_status"]) for _path, report in sources)
    abnormal = [status for status in statuses if status not in _NORMAL_STATUSES]
    return max(abnormal, default=exit_status(records))


def exit_status(records: Sequence[Record]) -> int:
    """pytest's exit status for these results: 0 all passed, 1 some did not, 5 none."""
    if not records:
        return int(pytest.ExitCode.NO_TESTS_COLLECTED)
    if all(record["result"] in _PASSING for record in records):
        return int(pytest.ExitCode.OK)
    return int(pytest.ExitCode.TESTS_FAILED)


def check_outputs(reports: Sequence[Path], outputs: Sequence[Optional[Path]]) -> None:
    """Refuse to write over a report being merged: its part's artifact would be lost, and
    every later merge of the parts refused."""
    inputs = {path.resolve() for path in reports}
    for output in outputs:
        if output is not None and output.resolve() in inputs:
            raise MergeError(f"{output} is one of the reports to merge: write it elsewhere")


def write(path: Path, report: Report, *, html: bool = False) -> None:
    """Write the merged report as the plugin writes its own, in one step: JSON, or the HTML
    page with ``html``."""
    try:
        write_atomically(path, render_html(report) if html else json.dumps(report, indent=2))
    except OSError as error:
        raise MergeError(f"cannot write {path}: {error}") from None


def _check_versions(sources: Sequence[Source]) -> None:
    versions = {report["schema_version"] for _path, report in sources}
    if len(versions) > 1:
        listed = ", ".join(f"{path} has {report['schema_version']}" for path, report in sources)
        raise MergeError(f"the reports have different schema versions ({listed})")
    for path, report in sources:
        if report["schema_version"] != SCHEMA_VERSION:
            raise MergeError(
                f"{path} has schema version {report['schema_version']}, but this version of "
                f"pytest-parallel-hypotheses reads version {SCHEMA_VERSION}"
            )


def _check_shards(sources: Sequence[Source]) -> None:
    """Shards must all come from one split, each once, none missing; unsharded reports (of
    different folders, say) merge as they are, but not with shards."""
    shards = [(path, report["run"].get("shard")) for path, report in sources]
    sharded = [(path, shard) for path, shard in shards if shard is not None]
    if not sharded:
        return
    first_path, first = sharded[0]
    for path, shard in shards:
        if shard is None:
            raise MergeError(
                f"{path} is not a shard, but {first_path} is shard {_name(first)}: merge "
                "either the shards of one run or whole runs"
            )
        if (shard["count"], shard["fingerprint"]) != (first["count"], first["fingerprint"]):
            raise MergeError(
                f"{path} (shard {_name(shard)}) and {first_path} (shard {_name(first)}) split "
                "different hypotheses or a different number of shards: merge the shards of one "
                "run, made from the same commits"
            )
    _check_all_there([shard["index"] for _path, shard in sharded], first["count"])


def _check_all_there(indices: List[int], count: int) -> None:
    seen: Set[int] = set()
    for index in indices:
        if index in seen:
            raise MergeError(f"shard {index}/{count} is given twice")
        seen.add(index)
    missing = [f"{index}/{count}" for index in range(1, count + 1) if index not in seen]
    if missing:
        raise MergeError(
            f"the report of shard {', '.join(missing)} is missing: without it the merged "
            "report would leave out its hypotheses"
        )


def _name(shard: Dict[str, Any]) -> str:
    return f"{shard['index']}/{shard['count']}"


def _records(sources: Sequence[Source]) -> List[Record]:
    """Every record once, in the order a single run lists them (by worktree, then id), each
    timeline on the lanes of its report and the clock of the earliest start."""
    origin: Dict[str, Path] = {}
    records: List[Record] = []
    first = min(datetime.fromisoformat(report["run"]["started_at"]) for _p, report in sources)
    for path, report in sources:
        shift = (datetime.fromisoformat(report["run"]["started_at"]) - first).total_seconds()
        for record in report["hypotheses"]:
            nodeid = record["nodeid"]
            if nodeid in origin:
                raise MergeError(
                    f"hypothesis {nodeid} is in both {origin[nodeid]} and {path}: each must "
                    "come from one report only"
                )
            origin[nodeid] = path
            records.append(_on_merged_timeline(record, path.stem, shift))
    return sorted(records, key=lambda record: (record["worktree_path"], record["hypothesis_id"]))


def _on_merged_timeline(record: Record, report: str, shift: float) -> Record:
    """The record with its attempts on lanes named after its ``report`` (every shard has a
    slot 1), ``shift`` seconds later."""
    timeline = [
        {
            **attempt,
            "lane": f"{report} {attempt['lane']}",
            "start": attempt["start"] + shift,
            "end": attempt["end"] + shift,
        }
        for attempt in record.get("timeline") or []
    ]
    return {**record, "timeline": timeline}


def _merged_run(sources: Sequence[Source], status: int, arguments: Sequence[str]) -> Report:
    """The run as one: from the first start to the last finish; settings and versions as the
    first report has them; each report's own run under ``merged_from``."""
    runs = [report["run"] for _path, report in sources]
    started = min((run["started_at"] for run in runs), key=datetime.fromisoformat)
    finished = max((run["finished_at"] for run in runs), key=datetime.fromisoformat)
    span = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    return {
        **runs[0],
        "started_at": started,
        "finished_at": finished,
        "duration": span.total_seconds(),
        "exit_status": status,
        "interrupted": any(run["interrupted"] for run in runs),
        "stopped_early": any(run["stopped_early"] for run in runs),
        "invocation_dir": str(Path.cwd()),
        "arguments": list(arguments),
        "host": socket.gethostname(),
        "shard": None,
        "merged_from": [
            {"report": str(path), **run} for (path, _report), run in zip(sources, runs)
        ],
    }
