"""A script's kept output goes to a file; results and reports keep an excerpt and name it."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_parallel_hypotheses import FalsificationConfig, Hypothesis, TestExecutor
from pytest_parallel_hypotheses.engine import spill
from pytest_parallel_hypotheses.engine.capture import BoundedCapture
from pytest_parallel_hypotheses.engine.spill import EXCERPT_BYTES, SpillingCapture

RunPytest = Callable[..., pytest.RunResult]
WriteScript = Callable[..., Path]
MakeWorktree = Callable[[str], Path]

#: ``seq 1 LINES`` prints about 1.3 MB: far more than the cap of the tests below.
LINES = 200_000
CAP = 65_536


@pytest.fixture
def system_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The system's temporary folder, made a folder of the test's own: the library's folder
    for a run's output is made there, once per process, and must not outlive the test."""
    folder = tmp_path / "system-temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    spill._temporary_folder.cache_clear()
    yield folder
    spill._temporary_folder.cache_clear()


def seq(count: int) -> bytes:
    return "".join(f"{number}\n" for number in range(1, count + 1)).encode()


def kept_bytes(stream: bytes, limit: int) -> bytes:
    """What a capture of ``limit`` keeps of ``stream``, with its marker: the reference."""
    head, tail = stream[: limit // 2], stream[len(stream) - (limit - limit // 2) :]
    omitted = len(stream) - len(head) - len(tail)
    return (
        head + f"\n[... {omitted} bytes omitted; {len(stream)} bytes in all ...]\n".encode() + tail
    )


def report_of(run_pytest: RunPytest, git_repo: Path, report: Path, *args: str) -> Dict[str, Any]:
    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-report={report}", *args)
    data: Dict[str, Any] = json.loads(report.read_text())
    return data


def spilled(limit: int, path: Path, *chunks: bytes) -> SpillingCapture:
    capture = SpillingCapture(limit, path)
    for chunk in chunks:
        capture.feed(chunk)
    capture.close()
    return capture


#: Streams in chunks, and caps, from below one chunk to above the whole stream.
CHUNKS = st.lists(st.binary(min_size=0, max_size=300), max_size=40)
LIMITS = st.integers(min_value=2, max_value=600)


@settings(max_examples=60, deadline=None)
@given(chunks=CHUNKS, limit=LIMITS)
def test_a_spilled_file_holds_exactly_what_a_capture_in_memory_keeps(
    tmp_path_factory: pytest.TempPathFactory, chunks: List[bytes], limit: int
) -> None:
    path = tmp_path_factory.mktemp("spill") / "out.stdout"
    in_memory = BoundedCapture(limit)
    for chunk in chunks:
        in_memory.feed(chunk)

    capture = spilled(limit, path, *chunks)

    stream = b"".join(chunks)
    expected = kept_bytes(stream, limit) if len(stream) > limit else stream
    assert path.read_bytes() == expected
    assert (capture.total, capture.truncated) == (in_memory.total, in_memory.truncated)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.stdout"]  # no ring left


@settings(max_examples=60, deadline=None)
@given(chunks=CHUNKS, limit=LIMITS)
def test_a_stream_whose_writer_died_is_taken_up_as_its_writer_would_have_finished_it(
    tmp_path_factory: pytest.TempPathFactory, chunks: List[bytes], limit: int
) -> None:
    folder = tmp_path_factory.mktemp("spill")
    writer = SpillingCapture(limit, folder / "out.stdout")
    finished = SpillingCapture(limit, folder / "finished.stdout")
    for chunk in chunks:
        writer.feed(chunk)
        finished.feed(chunk)
    finished.close()
    text, total, truncated = writer.text(), writer.total, writer.truncated

    taken = SpillingCapture(limit, folder / "out.stdout", resume=True)
    taken.close()

    assert (folder / "out.stdout").read_bytes() == (folder / "finished.stdout").read_bytes()
    assert (taken.text(), taken.total, taken.truncated) == (text, total, truncated)
    assert sorted(path.name for path in folder.iterdir()) == ["finished.stdout", "out.stdout"]


def test_a_big_stream_in_small_chunks_is_spilled_exactly(tmp_path: Path) -> None:
    stream = seq(LINES)
    chunks = [stream[start : start + 4093] for start in range(0, len(stream), 4093)]

    spilled(CAP, tmp_path / "out.stdout", *chunks)

    assert (tmp_path / "out.stdout").read_bytes() == kept_bytes(stream, CAP)


def test_an_excerpt_keeps_the_first_and_last_bytes_and_names_the_file(tmp_path: Path) -> None:
    stream = seq(LINES)

    capture = spilled(CAP, tmp_path / "out.stdout", stream)

    kept = kept_bytes(stream, CAP)
    assert capture.text().startswith(kept[:EXCERPT_BYTES].decode())
    assert capture.text().endswith(kept[-EXCERPT_BYTES:].decode())
    assert f"kept bytes in {tmp_path / 'out.stdout'}" in capture.text()
    assert len(capture.text()) < 2 * EXCERPT_BYTES + 200


def test_a_short_stream_is_its_own_excerpt(tmp_path: Path) -> None:
    capture = spilled(CAP, tmp_path / "out.stdout", b"all of it\n")

    assert capture.text() == "all of it\n"
    assert Path(capture.file or "").read_bytes() == b"all of it\n"


def test_every_kept_byte_is_in_the_files_the_json_report_names(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "loud", f"seq 1 {LINES}; seq 1 {LINES} >&2")

    data = report_of(
        run_pytest, git_repo, tmp_path / "report.json", f"--hypotheses-max-output={CAP}"
    )

    record = data["hypotheses"][0]
    for name in ("stdout", "stderr"):
        assert Path(record[f"{name}_file"]).read_bytes() == kept_bytes(seq(LINES), CAP)
        assert (record[f"{name}_bytes"], record[f"{name}_truncated"]) == (len(seq(LINES)), True)


def test_the_output_files_are_beside_the_report(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "loud", "echo hello")

    data = report_of(run_pytest, git_repo, tmp_path / "report.json")

    assert Path(data["hypotheses"][0]["stdout_file"]).parent == tmp_path / "report.json.output"


def test_the_json_report_stays_small_however_much_the_scripts_print(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    count = 10
    for number in range(count):
        write_script(git_repo, f"loud{number}", f"seq 1 {LINES}; seq 1 {LINES} >&2")

    report = tmp_path / "report.json"
    data = report_of(run_pytest, git_repo, report)

    kept = sum(record["stdout_bytes"] + record["stderr_bytes"] for record in data["hypotheses"])
    assert kept == count * 2 * len(seq(LINES))  # under the default cap: all of it is kept
    excerpts = count * 2 * (2 * EXCERPT_BYTES + 200)
    assert report.stat().st_size < excerpts + 200_000  # not the 26 MB kept


def test_a_failure_text_names_the_file_of_the_whole_output(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "race", f"seq 1 {LINES}; exit 1")

    result = run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-report={tmp_path / 'report.json'}"
    )

    (stdout_file,) = (tmp_path / "report.json.output").glob("race-*.stdout")
    result.stdout.fnmatch_lines([f"(all kept stdout: {stdout_file})"])


def test_a_failure_text_names_no_file_for_a_silent_stream(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """Beside a report (and under xdist) every stream gets its file, empty if it stays silent:
    naming it sent the reader to an empty file."""
    write_script(git_repo, "race", "echo hello; exit 1")

    result = run_pytest(
        f"--hypotheses={git_repo}", f"--hypotheses-report={tmp_path / 'report.json'}"
    )

    result.stdout.fnmatch_lines(["(all kept stdout: *race-*.stdout)"])
    result.stdout.no_fnmatch_line("(all kept stderr: *")


def test_without_a_report_the_output_files_are_in_pytest_s_temporary_folder(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    """pytest keeps its temporary folders of the last few sessions and removes older ones: a
    folder of the system's left by every run would pile up."""
    write_script(git_repo, "race", "echo hello; exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", f"--basetemp={tmp_path / 'base'}")

    (stdout_file,) = (tmp_path / "base").glob("hypotheses-output-*/race-*.stdout")
    result.stdout.fnmatch_lines([f"(all kept stdout: {stdout_file})"])


def test_under_xdist_without_a_report_the_output_files_are_in_the_controller_s_folder(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "race", "echo hello; exit 1")

    result = run_pytest(f"--hypotheses={git_repo}", f"--basetemp={tmp_path / 'base'}", "-n", "1")

    (stdout_file,) = (tmp_path / "base").glob("hypotheses-output-*/race-*.stdout")
    result.stdout.fnmatch_lines([f"*(all kept stdout: {stdout_file})"])


def test_without_pytest_s_temporary_folder_the_output_files_are_in_the_system_s(
    pytester: pytest.Pytester,
    git_repo: Path,
    write_script: WriteScript,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(git_repo, "race", "echo hello; exit 1")
    system = tmp_path / "system"
    system.mkdir()
    monkeypatch.setenv("TMPDIR", str(system))

    result = pytester.run(
        sys.executable, "-m", "pytest", "-p", "no:tmpdir", "-n0", f"--hypotheses={git_repo}"
    )

    (stdout_file,) = system.glob("hypotheses-output-*/race-*.stdout")
    result.stdout.fnmatch_lines([f"(all kept stdout: {stdout_file})"])


def test_the_html_report_links_the_output_files(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "loud", "echo hello")
    html = tmp_path / "report.html"

    run_pytest(f"--hypotheses={git_repo}", f"--hypotheses-html={html}")

    (stdout_file,) = (tmp_path / "report.html.output").glob("loud-*.stdout")
    assert f'href="{stdout_file.resolve().as_uri()}"' in html.read_text()


def test_the_library_keeps_all_the_kept_output_in_its_result(
    git_repo: Path, write_script: WriteScript
) -> None:
    write_script(git_repo, "loud", f"seq 1 {LINES}")
    config = FalsificationConfig(max_output_bytes=CAP)

    result = TestExecutor(config).execute_single(Hypothesis("loud", "x"), git_repo)

    assert result.stdout.encode() == kept_bytes(seq(LINES), CAP)
    assert result.stdout_file is None


def test_a_silent_stream_in_the_temporary_folder_costs_no_file(
    git_repo: Path, write_script: WriteScript, system_temp: Path
) -> None:
    write_script(git_repo, "quiet", "echo said on stdout")
    config = FalsificationConfig(spill_output=True)

    result = TestExecutor(config).execute_single(Hypothesis("quiet", "x"), git_repo)

    assert result.stdout_file is not None
    assert Path(result.stdout_file).parent.parent == system_temp
    assert Path(result.stdout_file).read_text() == "said on stdout\n"
    assert result.stderr == ""
    assert result.stderr_file is None
    assert not Path(result.stdout_file).with_suffix(".stderr").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_ring_whose_first_write_fails_is_removed(tmp_path: Path) -> None:
    """The ring file is made before its first bytes go in: a full disk (/dev/full, reached
    through a link where the ring goes) must not leave it behind."""
    ring = tmp_path / "out.stdout.tail"
    ring.symlink_to("/dev/full")
    capture = SpillingCapture(64, tmp_path / "out.stdout", fresh=True)

    capture.feed(b"x" * 100)  # past the file's head: the rest goes to the ring
    capture.close()

    assert capture.file is None
    assert not os.path.lexists(ring)


def test_a_stream_in_the_temporary_folder_replaces_an_earlier_run_s_file(
    git_repo: Path, write_script: WriteScript, system_temp: Path
) -> None:
    executor = TestExecutor(FalsificationConfig(spill_output=True))
    write_script(git_repo, "again", "echo first run >&2")
    executor.execute_single(Hypothesis("again", "x"), git_repo)
    write_script(git_repo, "again", "echo second run >&2")

    result = executor.execute_single(Hypothesis("again", "x"), git_repo)

    assert result.stderr_file is not None
    assert Path(result.stderr_file).read_text() == "second run\n"


def test_a_silent_stream_under_a_report_gets_its_empty_file(
    run_pytest: RunPytest, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    write_script(git_repo, "quiet", "echo said on stdout")

    (record,) = report_of(run_pytest, git_repo, tmp_path / "report.json")["hypotheses"]

    assert Path(record["stderr_file"]).read_bytes() == b""
    assert Path(record["stderr_file"]).parent == tmp_path / "report.json.output"


def test_without_a_temporary_folder_the_output_stays_in_the_result(
    git_repo: Path, write_script: WriteScript, system_temp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_script(git_repo, "loud", "echo kept in memory")
    system_temp.rmdir()

    result = TestExecutor(FalsificationConfig(spill_output=True)).execute_single(
        Hypothesis("loud", "x"), git_repo
    )

    assert (result.stdout, result.stdout_file) == ("kept in memory\n", None)
    assert "output of this run kept in memory" in caplog.text


def test_a_silent_stream_in_a_report_folder_still_gets_its_empty_file(tmp_path: Path) -> None:
    """Another process (an xdist controller) may read the folder: each stream's file shows
    that its attempt began, and replaces whatever an earlier run left under its name."""
    left = tmp_path / "h-1.stderr"
    left.write_bytes(b"an earlier run's output\n")

    capture = SpillingCapture(CAP, left)
    capture.close()

    assert capture.file == str(left)
    assert left.read_bytes() == b""


def test_output_that_cannot_be_written_to_a_file_stays_in_the_result(
    git_repo: Path, write_script: WriteScript, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_script(git_repo, "loud", f"seq 1 {LINES}")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = FalsificationConfig(
        max_output_bytes=CAP, spill_output=True, output_folder=os.fspath(blocker)
    )

    result = TestExecutor(config).execute_single(Hypothesis("loud", "x"), git_repo)

    assert result.stdout.encode() == kept_bytes(seq(LINES), CAP)
    assert result.stdout_file is None
    assert "output of this run kept in memory" in caplog.text


def test_records_from_xdist_workers_name_files_holding_every_kept_byte(
    pytester: pytest.Pytester, git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    for number in range(4):
        write_script(git_repo, f"loud{number}", f"seq 1 {LINES}")
    report = tmp_path / "report.json"

    pytester.runpytest_subprocess(
        "-n",
        "2",
        f"--rootdir={tmp_path}",
        "-p",
        "no:cacheprovider",
        f"--hypotheses={git_repo}",
        f"--hypotheses-report={report}",
        f"--hypotheses-max-output={CAP}",
        timeout=120,
    )

    records = json.loads(report.read_text())["hypotheses"]
    assert len(records) == 4
    for record in records:
        assert Path(record["stdout_file"]).read_bytes() == kept_bytes(seq(LINES), CAP)
