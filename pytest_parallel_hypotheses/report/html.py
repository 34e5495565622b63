"""The HTML report of ``--hypotheses-html=PATH`` and of ``merge --html``: one self-contained
page rendered from the same document as the JSON report.

Everything is inline (styles, script, data): the page opens from a mail attachment or a CI
artifact without network access. Rows, details and the timeline are rendered here, so the page
reads without JavaScript; the script only sorts, filters and opens details.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ..core.classification import HypothesisStatus, TestResult, verdict_for
from ..core.diagnosis import format_elapsed, process_count
from .conclusions import COUNTED, counts_line
from .jsonreport import JsonReport
from .records import Record
from .tested import code_summary, code_warnings, run_warnings
from .wording import (
    MIB,
    is_cut_short,
    record_colour,
    record_not_counted_words,
    record_polarity,
    record_verdict_word,
    verdict_colour,
    verdict_word,
)

#: Pixels of one lane of the timeline.
LANE_PIXELS = 14
#: About how many labelled ticks the time axis has.
AXIS_TICKS = 8
_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse}th,td{padding:3px 8px;text-align:left;border-bottom:1px solid #ddd}
th{cursor:pointer;user-select:none;background:#f4f4f4}
.t-green{color:#1a7f37}.t-red{color:#cf222e}.t-yellow{color:#9a6700}.t-grey{color:#666}
.c-green{background:#2da44e}.c-red{background:#cf222e}.c-yellow{background:#d4a72c}
.c-grey{background:#999}
#filters label{margin-right:1em}
.timeline{position:relative;border-left:1px solid #888;margin-left:90px}
.lane{position:relative;height:14px;border-bottom:1px dotted #eee}
.lane span.name{position:absolute;left:-90px;width:85px;text-align:right;font-size:11px;color:#555}
.bar{position:absolute;top:2px;height:10px;min-width:2px;border-radius:2px;cursor:pointer;
box-shadow:inset -1px 0 #fff}
.axis{position:relative;height:18px;margin-left:90px;font-size:11px;color:#555}
.axis span{position:absolute;transform:translateX(-50%)}
details{margin:.4em 0;padding:.3em .6em;border:1px solid #ddd;border-radius:4px}
pre{background:#f6f8fa;padding:.5em;overflow:auto;max-height:20em}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}
"""

_SCRIPT = """
(function(){
  var table=document.getElementById('verdicts'),body=table.tBodies[0];
  function applyFilter(){
    var shown={};document.querySelectorAll('#filters input').forEach(function(box){
      shown[box.value]=box.checked;});
    Array.prototype.forEach.call(body.rows,function(row){
      row.hidden=!shown[row.dataset.status];});
    document.querySelectorAll('.bar').forEach(function(bar){
      bar.hidden=!shown[bar.dataset.status];});
  }
  document.querySelectorAll('#filters input').forEach(function(box){
    box.addEventListener('change',applyFilter);});
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(cell,column){
    cell.addEventListener('click',function(){
      var numeric=cell.dataset.type==='number',up=cell.dataset.order!=='asc';
      cell.dataset.order=up?'asc':'desc';
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[column].dataset.key,y=b.cells[column].dataset.key;
        var c=numeric?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);
        return up?c:-c;});
      rows.forEach(function(row){body.appendChild(row);});
    });
  });
  function open(id){var panel=document.getElementById(id);
    if(panel){panel.open=true;panel.scrollIntoView();}}
  document.querySelectorAll('[data-details]').forEach(function(node){
    node.addEventListener('click',function(event){event.preventDefault();
      open(node.dataset.details);});});
})();
"""


class HtmlReport(JsonReport):
    """The plugin part that writes the HTML report at the end of the session, from the
    document the JSON report holds."""

    LABEL = "hypotheses HTML report"

    def render(self, document: Dict[str, Any]) -> str:
        return render_html(document)


def render_html(document: Mapping[str, Any]) -> str:
    """The whole page of a report document (see
    :func:`~pytest_parallel_hypotheses.report.jsonreport.report_document`)."""
    records: List[Record] = list(document["hypotheses"])
    run: Mapping[str, Any] = document.get("run") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Hypotheses report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Hypotheses report</h1>",
        _summary(run, document),
        "<h2>Verdicts</h2>",
        _filters(records),
        _table(records),
        "<h2>Timeline</h2>",
        _timeline(records),
        "<h2>Details</h2>",
        *(_details(index, record) for index, record in enumerate(records)),
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _summary(run: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    counts = counts_line(document["hypotheses"])  # as the terminal says them
    settings = run.get("settings") or {}
    rows = [
        ("counts", counts),
        ("next action", document.get("next_action", "")),
        ("started", run.get("started_at", "")),
        ("duration", _seconds(run.get("duration"))),
        ("interrupted", str(run.get("interrupted", False)).lower()),
        *(("warning", warning) for warning in run_warnings(document["hypotheses"])),
        *((f"setting {key}", json.dumps(value)) for key, value in settings.items()),
    ]
    return _definitions(rows, identifier="run")


def _filters(records: Sequence[Record]) -> str:
    boxes = [
        f'<label><input type="checkbox" value="{status.value}" checked> '
        f"{_FILTER_WORDS.get(status) or verdict_word(status)} "
        f"({sum(r['status'] == status.value for r in records)})</label>"
        for status in COUNTED
    ]
    return f'<div id="filters">{"".join(boxes)}</div>'


#: The filter box of the hypotheses without a verdict because the run stopped first, whether
#: they were cut short or never started (the counts tell them apart).
_FILTER_WORDS = {HypothesisStatus.PENDING: "CUT SHORT OR NOT RUN"}

_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("id", "text"),
    ("worktree", "text"),
    ("verdict", "text"),
    ("polarity", "text"),
    ("result", "text"),
    ("exit", "number"),
    ("duration", "number"),
    ("confidence", "number"),
)


def _table(records: Sequence[Record]) -> str:
    head = "".join(f'<th data-type="{kind}" scope="col">{name}</th>' for name, kind in _COLUMNS)
    rows = "\n".join(_row(index, record) for index, record in enumerate(records))
    return f'<table id="verdicts"><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>'


def _row(index: int, record: Record) -> str:
    status = record["status"]
    if status == HypothesisStatus.PENDING.value:  # no outcome: a cut-short script keeps its time
        duration = record.get("duration") if is_cut_short(record) else None
        record = {
            **record,
            "result": None,
            "exit_code": None,
            "confidence": None,
            "duration": duration,
        }
    cells = [
        (
            record["hypothesis_id"],
            f'<a href="#h{index}" data-details="h{index}">{escape(record["hypothesis_id"])}</a>',
        ),
        (_where(record), escape(_where(record))),
        (
            status,
            f'<span class="{_classes(record)}">{record_verdict_word(record)}</span>',
        ),
        (record_polarity(record).value, record_polarity(record).value),
        (record.get("result") or "", escape(record.get("result") or "")),
        (_number(record.get("exit_code")), escape(str(_blank(record.get("exit_code"))))),
        (_number(record.get("duration")), _seconds(record.get("duration"))),
        (_number(record.get("confidence")), _fraction(record.get("confidence"))),
    ]
    tds = "".join(f'<td data-key="{escape(str(key))}">{shown}</td>' for key, shown in cells)
    return f'<tr data-status="{escape(status)}">{tds}</tr>'


def _colour(record: Record) -> str:
    """The colour of the record's verdict, as the terminal shows it (grey for none)."""
    pending = record["status"] == HypothesisStatus.PENDING.value
    return "grey" if pending else record_colour(record)


def _attempt_colour(record: Record, attempt: Mapping[str, Any]) -> str:
    """The colour of the verdict that one attempt alone gives (grey for one cut short): a
    failure that did not count, before a pass, is not the pass's green."""
    try:
        outcome = TestResult(attempt["result"])
    except ValueError:
        return "grey"
    polarity = record_polarity(record)
    status = verdict_for(outcome, polarity)
    return "grey" if status is HypothesisStatus.PENDING else verdict_colour(status, polarity)


def _classes(record: Record) -> str:
    """The classes of a verdict's text: what it is, and its colour."""
    return f"v-{escape(record['status'])} t-{_colour(record)}"


def _setup_words(setup: Any) -> str:
    """What the worktree's setup step did (empty without one)."""
    if not isinstance(setup, Mapping):
        return ""
    return f"{setup.get('outcome')}: {setup.get('command')}"


def _timeline(records: Sequence[Record]) -> str:
    bars = [
        (index, record, attempt)
        for index, record in enumerate(records)
        for attempt in record.get("timeline") or []
    ]
    if not bars:
        return "<p>No attempt ran in this run.</p>"
    span = max(attempt["end"] for _i, _r, attempt in bars) or 1.0
    lanes: Dict[str, List[str]] = {}
    for index, record, attempt in bars:
        status = escape(record["status"])
        left = 100.0 * attempt["start"] / span
        width = 100.0 * max(0.0, attempt["end"] - attempt["start"]) / span
        title = (
            f"{record['hypothesis_id']} attempt {attempt['attempt']}: {attempt['result']}, "
            f"{_seconds(attempt['start'])} to {_seconds(attempt['end'])}"
        )
        lanes.setdefault(str(attempt["lane"]), []).append(
            f'<div class="bar b-{status} c-{_attempt_colour(record, attempt)}"'
            f' data-status="{status}"'
            f' data-details="h{index}" style="left:{left:.3f}%;width:{width:.3f}%"'
            f' title="{escape(title)}"></div>'
        )
    rows = [
        f'<div class="lane"><span class="name">{escape(lane)}</span>{"".join(lanes[lane])}</div>'
        for lane in sorted(lanes, key=_lane_order)
    ]
    return f'<div class="timeline">{"".join(rows)}</div>{_axis(span)}'


def _axis(span: float) -> str:
    step = next((s for s in _STEPS if span / s <= AXIS_TICKS), _STEPS[-1])
    ticks = [step * n for n in range(math.floor(span / step) + 1)]
    labels = "".join(
        f'<span style="left:{100.0 * tick / span:.3f}%">{format_elapsed(tick)}</span>'
        for tick in ticks
    )
    return f'<div class="axis">{labels}</div>'


#: The rows of a hypothesis's details shown only when they say something.
_UNLESS_SAID = frozenset({"not counted", "message", "setup"})


def _details(index: int, record: Record) -> str:
    metrics = record.get("metrics") or {}
    rows = [
        ("nodeid", record["nodeid"]),
        ("verdict", record_verdict_word(record)),
        ("polarity", record_polarity(record).value),
        ("exit", str(_blank(record.get("exit_code")))),
        ("duration", _seconds(record.get("duration"))),
        ("confidence", _fraction(record.get("confidence"))),
        ("attempts", str(len(record.get("attempts") or []))),
        ("not counted", record_not_counted_words(record)),
        ("message", record.get("error_message") or record.get("problem") or ""),
        ("peak memory", _mib(metrics.get("peak_rss_bytes") or None)),  # 0: not known
        ("CPU time", _seconds(metrics.get("cpu_seconds"))),
        ("waited for a CPU", _share_of_time(metrics.get("cpu_wait_share"))),
        ("processes", str(_blank(metrics.get("processes")))),
        ("code tested", code_summary(record.get("code_under_test"))),
        *(("warning", warning) for warning in code_warnings(record.get("code_under_test"))),
        ("setup", _setup_words(record.get("setup"))),
    ]
    rows = [(name, value) for name, value in rows if value or name not in _UNLESS_SAID]
    parts = [
        f'<details id="h{index}"><summary><span class="{_classes(record)}">'
        f"{escape(record['hypothesis_id'])}</span></summary>",
        _definitions(rows),
        _output("stdout", record),
        _output("stderr", record),
        _snapshot(record.get("timeout_snapshot"), _snapshot_moment(record)),
        "</details>",
    ]
    return "\n".join(part for part in parts if part)


def _output(name: str, record: Record) -> str:
    text = record.get(name)
    if not text:
        return ""
    file = record.get(f"{name}_file")
    link = (
        ""
        if not file
        else f'<p><a href="{escape(Path(file).resolve().as_uri())}">all kept {name}</a> '
        f"({_number(record.get(f'{name}_bytes'))} bytes printed)</p>"
    )
    return f"<h4>{name} (head and tail)</h4>{link}<pre>{escape(text)}</pre>"


def _snapshot_moment(record: Mapping[str, Any]) -> str:
    """When the tree's picture was taken: at the deadline, or as it passed its memory limit."""
    return "At the deadline" if record.get("timed_out_after") is not None else "At the stop"


def _snapshot(snapshot: Any, moment: str) -> str:
    if not snapshot:
        return ""
    head = (
        "<tr><th>pid</th><th>parent</th><th>age</th><th>state</th><th>CPU</th>"
        "<th>waited for a CPU</th><th>RSS</th><th>command</th></tr>"
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(value))}</td>"
            for value in (
                process["pid"],
                process["ppid"],
                format_elapsed(process["age_seconds"]),
                process["state"],
                _seconds(process["cpu_seconds"]),
                _seconds(process.get("waited_seconds")),
                _mib(process["rss_bytes"]),
                process["command"],
            )
        )
        + "</tr>"
        for process in snapshot.get("processes") or []
    )
    tail = "\n".join(snapshot.get("stdout_tail") or [])
    return (
        f"<h4>{moment}</h4>{_shown_of(snapshot)}<table>{head}{rows}</table>"
        f"<h4>last lines of stdout</h4><pre>{escape(tail)}</pre>"
    )


def _shown_of(snapshot: Mapping[str, Any]) -> str:
    """A line saying which processes a large tree's picture shows, if it does not show all."""
    shown, count = len(snapshot.get("processes") or []), process_count(snapshot)
    if shown >= count:
        return ""
    return f"<p>the {shown // 2} oldest and {shown - shown // 2} youngest of {count} processes</p>"


def _definitions(rows: Sequence[Tuple[str, str]], identifier: str = "") -> str:
    attribute = f' id="{identifier}"' if identifier else ""
    items = "".join(f"<dt>{escape(key)}</dt><dd>{escape(str(value))}</dd>" for key, value in rows)
    return f"<dl{attribute}>{items}</dl>"


def _where(record: Record) -> str:
    branch = record.get("branch")
    return f"{record['worktree_path']} ({branch})" if branch else str(record["worktree_path"])


def _lane_order(lane: str) -> Tuple[str, int]:
    name, _, number = lane.rpartition(" ")
    return (name, int(number)) if number.isdigit() else (lane, 0)


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _number(value: Any) -> str:
    return "-1e300" if value is None else str(value)


def _seconds(value: Any) -> str:
    return "" if value is None else f"{float(value):.2f}s"


def _share_of_time(value: Any) -> str:
    """The largest share of its life a process of the tree waited for a CPU: a verdict made
    in a crowd reads so beside its time."""
    return "" if value is None else f"{float(value):.0%} of its time (its process that waited most)"


def _fraction(value: Any) -> str:
    return "" if value is None else f"{float(value):.2f}"


def _mib(value: Any) -> str:
    return "" if value is None else f"{value / MIB:.0f} MiB"
