"""The HTML report: one self-contained page that a real browser renders, with a verdict table
that sorts and filters, a details panel per hypothesis and a timeline of the worker slots."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from browser import Browser, chromium_path

from pytest_parallel_hypotheses.cli import main
from pytest_parallel_hypotheses.engine import snapshot as snapshot_module
from pytest_parallel_hypotheses.engine.memory import MemoryGuard
from pytest_parallel_hypotheses.report.html import render_html
from pytest_parallel_hypotheses.report.jsonreport import report_document

WriteScript = Callable[..., Path]
RunPytest = Callable[..., pytest.RunResult]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("needs chromium (.ci/run installs it)")
    with Browser(executable, tmp_path / "profile") as opened:
        yield opened


@pytest.fixture
def page(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    sleep_token: str,
) -> Path:
    """The page of a run with every verdict, two slots and a timeout."""
    write_script(git_repo, "cache", "echo totals are right; exit 0")
    write_script(git_repo, "race", "echo lost update >&2; sleep 0.3; exit 1")
    write_script(git_repo, "dns", f"echo resolving; sleep {sleep_token}")
    # only the hanging script has a short deadline: a busy machine must not time out the others
    (git_repo / ".falsification" / "config_dns.json").write_text('{"timeout": 1}')
    write_script(git_repo, "flaky", "sleep 0.2; exit 1")
    html = tmp_path / "report.html"
    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-html={html}", "--hypotheses-workers=2")
    return html


def visible_ids(browser: Browser) -> List[str]:
    return browser.evaluate(  # type: ignore[no-any-return]
        "Array.from(document.querySelectorAll('#verdicts tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.cells[0].textContent)"
    )


def test_the_page_needs_nothing_from_the_network(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)
    assert "@import" not in text


def test_the_page_has_a_row_per_hypothesis_and_a_bar_per_attempt(
    page: Path, browser: Browser
) -> None:
    browser.open(page)

    assert sorted(visible_ids(browser)) == ["cache", "dns", "flaky", "race"]
    assert browser.evaluate("document.querySelectorAll('.timeline .bar').length") == 4
    lanes = browser.evaluate(
        "Array.from(document.querySelectorAll('.lane .name')).map(n => n.textContent)"
    )
    assert lanes == ["slot 1", "slot 2"]
    assert browser.errors == []


def test_bars_are_drawn_inside_the_timeline(page: Path, browser: Browser) -> None:
    browser.open(page)

    boxes = browser.evaluate(
        "(() => { const t = document.querySelector('.timeline').getBoundingClientRect();"
        " return Array.from(document.querySelectorAll('.bar')).map(b => {"
        " const r = b.getBoundingClientRect();"
        " return [r.width > 0 && r.height > 0, r.left >= t.left - 1 && r.right <= t.right + 1];"
        " }); })()"
    )
    assert boxes == [[True, True]] * 4


def test_the_verdict_filter_hides_rows_and_bars(page: Path, browser: Browser) -> None:
    browser.open(page)

    browser.evaluate("document.querySelector('#filters input[value=supported]').click()")

    assert sorted(visible_ids(browser)) == ["cache", "dns"]
    shown_bars = browser.evaluate(
        "Array.from(document.querySelectorAll('.bar')).filter(b => !b.hidden).length"
    )
    assert shown_bars == 2
    assert browser.errors == []


def test_a_click_on_a_heading_sorts_the_table(page: Path, browser: Browser) -> None:
    browser.open(page)

    browser.evaluate("document.querySelectorAll('#verdicts th')[6].click()")  # duration
    ascending = visible_ids(browser)
    browser.evaluate("document.querySelectorAll('#verdicts th')[6].click()")

    assert ascending[-1] == "dns"  # the timeout took longest
    assert visible_ids(browser) == ascending[::-1]


def test_a_click_on_a_bar_opens_the_details_with_the_timeout_snapshot(
    page: Path, browser: Browser, sleep_token: str
) -> None:
    browser.open(page)

    browser.evaluate("document.querySelector('.bar.b-inconclusive').click()")

    details = browser.evaluate("document.querySelector('details[open]').textContent")
    assert "At the deadline" in details
    assert f"sleep {sleep_token}" in details
    assert "resolving" in details


@pytest.mark.skipif(
    MemoryGuard.for_this_process(limits=True).by_kernel,
    reason="the kernel enforces limits here: it kills the tree, which no watchdog photographs",
)
def test_a_tree_stopped_at_its_memory_limit_is_shown_at_the_stop_not_the_deadline(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    browser: Browser,
    tmp_path: Path,
) -> None:
    hog = "chunks = []\nwhile True: chunks.append(b'x' * 10 * 1024 * 1024)"
    write_script(git_repo, "hog", f'exec {sys.executable} -S -c "{hog}"')
    html = tmp_path / "memory.html"
    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-html={html}", "--hypotheses-memory=100M")
    browser.open(html)

    browser.evaluate("document.querySelector('.bar').click()")

    details = browser.evaluate("document.querySelector('details[open]').textContent")
    assert "At the stop" in details
    assert "At the deadline" not in details


def test_the_picture_of_a_large_tree_says_which_of_its_processes_it_shows(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    browser: Browser,
    tmp_path: Path,
    sleep_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(snapshot_module, "DESCRIBED_PROCESSES", 2)
    write_script(
        git_repo, "wide", f"for i in 1 2 3; do sleep {sleep_token} & done\nsleep {sleep_token}"
    )
    (git_repo / ".falsification" / "config_wide.json").write_text('{"timeout": 1}')
    html = tmp_path / "wide.html"
    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-html={html}")
    browser.open(html)

    browser.evaluate("document.querySelector('.bar').click()")

    details = browser.evaluate("document.querySelector('details[open]').textContent")
    assert "the 1 oldest and 1 youngest of 5 processes" in details


def test_the_screenshot_renders_without_console_errors(
    page: Path, browser: Browser, tmp_path: Path
) -> None:
    browser.open(page)
    shot = tmp_path / "report.png"

    browser.screenshot(shot)

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
    assert browser.errors == []


def synthetic_record(index: int, slots: int) -> Dict[str, Any]:
    status = ("falsified", "supported", "inconclusive")[index % 3]
    start = (index // slots) * 2.0
    return {
        "nodeid": f"wt{index}::h{index}",
        "hypothesis_id": f"h{index}",
        "worktree_path": f"wt{index}",
        "branch": f"hyp-{index}",
        "status": status,
        "result": {"falsified": "pass", "supported": "fail"}.get(status, "timeout"),
        "exit_code": index % 2,
        "duration": 1.5,
        "confidence": 0.6,
        "timeline": [
            {
                "attempt": 1,
                "lane": f"slot {index % slots + 1}",
                "start": start,
                "end": start + 1.5,
                "result": "pass",
            }
        ],
    }


def test_a_page_of_300_hypotheses_stays_readable(browser: Browser, tmp_path: Path) -> None:
    records = [synthetic_record(index, slots=16) for index in range(300)]
    html = tmp_path / "big.html"
    html.write_text(render_html(report_document({}, records)))

    browser.open(html)

    assert len(visible_ids(browser)) == 300
    heights = browser.evaluate(
        "Array.from(document.querySelectorAll('.lane')).map(l => l.getBoundingClientRect().height)"
    )
    assert len(heights) == 16
    assert min(heights) >= 10  # a lane stays tall enough to see and to click
    widths = browser.evaluate(
        "Array.from(document.querySelectorAll('.bar')).map(b => b.getBoundingClientRect().width)"
    )
    assert len(widths) == 300
    assert min(widths) >= 2
    assert browser.errors == []


def test_a_verdict_is_coloured_as_its_script_ended_whatever_its_polarity(
    browser: Browser, tmp_path: Path
) -> None:
    """A confirmed fix (a script written to confirm, which passed) is green, as in the
    terminal; a disproving script's failure is red: both are SUPPORTED."""
    disproved, confirmed = synthetic_record(1, slots=1), synthetic_record(4, slots=1)
    confirmed.update(polarity="confirm", result="pass")
    html = tmp_path / "polarity.html"
    html.write_text(render_html(report_document({}, [disproved, confirmed])))

    browser.open(html)

    colours = browser.evaluate(
        "Array.from(document.querySelectorAll('#verdicts tbody tr')).map(row => "
        "[row.cells[3].textContent, getComputedStyle(row.cells[2].firstChild).color])"
    )
    assert colours == [["disprove", "rgb(207, 34, 46)"], ["confirm", "rgb(26, 127, 55)"]]


def test_a_warning_about_the_code_tested_is_in_the_run_s_summary_and_the_details(
    browser: Browser, tmp_path: Path
) -> None:
    """A verdict on code the script may not have tested must not read as a clean one."""
    warning = "wt0: the compiled extension pkg/_speedups.so was built in place"
    record = synthetic_record(0, slots=1)
    record["code_under_test"] = {"mode": "redirected", "redirects": [], "warnings": [warning]}
    html = tmp_path / "warned.html"
    html.write_text(render_html(report_document({}, [record])))

    browser.open(html)

    for place in ("#run", "#h0"):
        assert warning in browser.evaluate(f"document.querySelector('{place}').textContent")


def test_the_details_say_how_long_a_script_waited_for_a_cpu(
    browser: Browser, tmp_path: Path
) -> None:
    """A new-user trial's timing check passed in a crowd and read like a clean pass: what
    its processes waited was only in the JSON report."""
    record = synthetic_record(0, slots=1)
    record["metrics"] = {"cpu_seconds": 7.9, "cpu_wait_share": 0.62}
    html = tmp_path / "crowded.html"
    html.write_text(render_html(report_document({}, [record])))

    browser.open(html)

    details = browser.evaluate("document.querySelector('#h0').textContent")
    assert "waited for a CPU62% of its time (its process that waited most)" in details


def test_each_bar_has_the_colour_of_its_own_attempt(browser: Browser, tmp_path: Path) -> None:
    """A new-user trial's bar of a failure that did not count was the green of the pass
    that followed it."""
    record = synthetic_record(0, slots=1)  # falsified
    failed = {**record["timeline"][0], "result": "fail"}
    passed = {**failed, "attempt": 2, "start": 2.0, "end": 3.5, "result": "pass"}
    record["timeline"] = [failed, passed]
    html = tmp_path / "attempts.html"
    html.write_text(render_html(report_document({}, [record])))

    browser.open(html)

    colours = browser.evaluate(
        "Array.from(document.querySelectorAll('.timeline .bar'))"
        ".map(b => getComputedStyle(b).backgroundColor)"
    )
    assert colours == ["rgb(207, 34, 46)", "rgb(45, 164, 78)"]  # red, then green


def unanswered_row(browser: Browser, tmp_path: Path, duration: float, message: str) -> List[str]:
    """The cells of the one row of a page whose hypothesis a stop left without a verdict."""
    record = synthetic_record(0, slots=1)
    record.update(
        status="pending",
        result="skip",
        exit_code=-15,
        confidence=0.0,
        duration=duration,
        error_message=message,
    )
    html = tmp_path / "unanswered.html"
    html.write_text(render_html(report_document({}, [record])))
    browser.open(html)
    return browser.evaluate(  # type: ignore[no-any-return]
        "Array.from(document.querySelector('#verdicts tbody tr').cells).map(c => c.textContent)"
    )


def test_a_script_cut_short_reads_so_with_its_time_and_no_outcome(
    browser: Browser, tmp_path: Path
) -> None:
    cells = unanswered_row(browser, tmp_path, 6.28, "stopped because the run was interrupted")

    assert cells[2:] == ["CUT SHORT", "disprove", "", "", "6.28s", ""]
    assert "0 inconclusive, 1 cut short" in browser.evaluate(
        "document.querySelector('#run').textContent"
    )
    assert "CUT SHORT OR NOT RUN (1)" in browser.evaluate(
        "document.querySelector('#filters').textContent"
    )


def test_a_script_that_never_started_shows_no_time(browser: Browser, tmp_path: Path) -> None:
    message = "not started because hypothesis race was SUPPORTED"

    cells = unanswered_row(browser, tmp_path, 0.0, message)

    assert cells[2:] == ["NOT RUN", "disprove", "", "", "", ""]


def test_merge_writes_the_html_page_of_the_merged_reports(
    run_pytest: RunPytest,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("a", "b", "c", "d"):
        write_script(git_repo, name, "exit 1")
    reports = []
    for part in (1, 2):
        report = tmp_path / f"part{part}.json"
        run_pytest(
            f"--hypotheses={git_repo}",
            f"--hypotheses-shard={part}/2",
            f"--hypotheses-report={report}",
        )
        reports.append(str(report))
    html = tmp_path / "merged.html"

    main(["merge", *reports, "--html", str(html)])

    assert f"merged HTML report: {html}" in capsys.readouterr().out
    rows = re.findall(r'<tr data-status="supported">', html.read_text())
    assert len(rows) == 4
    assert json.loads(Path(reports[0]).read_text())["hypotheses"][0]["timeline"]
    lanes = re.findall(r'<span class="name">([^<]*)</span>', html.read_text())
    assert {lane.split()[0] for lane in lanes} == {"part1", "part2"}, lanes  # by part
    assert all(re.fullmatch(r"part[12] slot \d+", lane) for lane in lanes), lanes
