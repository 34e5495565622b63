"""Output files read by a process that did not write them: what a writer that died left is
found, and a stream being written shows its last line (see also ``test_output_files``)."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

from pytest_parallel_hypotheses.engine.spill import SpillingCapture, spill_stem
from pytest_parallel_hypotheses.engine.spilled import FollowedOutput, left_behind

#: A cap small enough for the tail of a long stream to wrap around its ring many times.
CAP = 65_536
WORKTREE = "/repo/worktrees/hyp-a"


def seq(count: int) -> bytes:
    return "".join(f"{number}\n" for number in range(1, count + 1)).encode()


def attempt_file(folder: Path, name: str, attempt: int = 1) -> Path:
    return folder / f"{spill_stem('h.1', WORKTREE, attempt)}.{name}"


def abandoned(limit: int, folder: Path, stdout: bytes, stderr: bytes = b"") -> SpillingCapture:
    """The stdout capture of a writer fed both streams and never closed, as when its process
    is killed."""
    captures = [SpillingCapture(limit, attempt_file(folder, name)) for name in ("stdout", "stderr")]
    captures[0].feed(stdout)
    captures[1].feed(stderr)
    return captures[0]


def test_what_a_dead_writer_left_is_found_by_the_hypothesis_and_worktree(
    tmp_path: Path,
) -> None:
    abandoned(CAP, tmp_path, seq(100_000), b"warning: slow\n")

    found = left_behind(CAP, tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc))

    assert found is not None
    stdout, stderr = found
    assert stdout.text().endswith("99999\n100000\n")
    assert (stdout.total, stdout.truncated) == (len(seq(100_000)), True)
    assert stdout.file == str(attempt_file(tmp_path, "stdout"))
    assert (stderr.text(), stderr.file) == (
        "warning: slow\n",
        str(attempt_file(tmp_path, "stderr")),
    )


def test_the_newest_attempt_is_the_one_taken_up(tmp_path: Path) -> None:
    abandoned(CAP, tmp_path, b"first attempt\n").close()
    for name in ("stdout", "stderr"):
        SpillingCapture(CAP, attempt_file(tmp_path, name, attempt=2)).feed(b"second attempt\n")

    found = left_behind(CAP, tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc))

    assert found is not None
    assert found[0].text() == "second attempt\n"


def test_files_of_an_earlier_run_are_not_taken_up(tmp_path: Path) -> None:
    abandoned(CAP, tmp_path, b"from yesterday\n").close()
    yesterday = time.time() - 86_400
    os.utime(attempt_file(tmp_path, "stdout"), (yesterday, yesterday))

    assert left_behind(CAP, tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc)) is None
    assert (
        FollowedOutput(tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc)).last_line()
        == ""
    )


def test_the_last_line_is_followed_while_the_stream_is_written(tmp_path: Path) -> None:
    stream = seq(200_000)  # 1.3 MB: the tail's ring wraps around many times
    writer = SpillingCapture(CAP, attempt_file(tmp_path, "stdout"))
    SpillingCapture(CAP, attempt_file(tmp_path, "stderr"))
    followed = FollowedOutput(tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc))
    wrong = []

    for start in range(0, len(stream), 40_009):
        writer.feed(stream[start : start + 40_009])
        if followed.last_line() != writer.last_line():
            wrong.append((followed.last_line(), writer.last_line()))

    assert wrong == []
    writer.close()
    assert followed.last_line() == "200000"


def test_the_last_line_falls_back_to_stderr(tmp_path: Path) -> None:
    abandoned(CAP, tmp_path, b"\n\n", b"error: no compiler\n")

    line = FollowedOutput(tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc)).last_line()

    assert line == "error: no compiler"


def test_a_hypothesis_without_files_yet_has_no_last_line(tmp_path: Path) -> None:
    assert (
        FollowedOutput(tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc)).last_line()
        == ""
    )


def test_a_stream_that_ended_before_its_writer_died_is_taken_up_whole(tmp_path: Path) -> None:
    writer = abandoned(CAP, tmp_path, seq(100_000))
    writer.close()  # the script ended; its worker died before it reported the result

    found = left_behind(CAP, tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc))

    assert found is not None
    stdout, _stderr = found
    assert (stdout.total, stdout.truncated) == (writer.total, True)
    assert stdout.text() == writer.text()


def test_a_ring_left_by_an_earlier_run_is_not_this_runs_output(tmp_path: Path) -> None:
    abandoned(CAP, tmp_path, seq(100_000))  # a run killed while its script printed
    abandoned(CAP, tmp_path, b"this run\n")  # the next run of the same attempt

    found = left_behind(CAP, tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc))
    followed = FollowedOutput(tmp_path, "h.1", WORKTREE, since=datetime.now(timezone.utc))

    assert found is not None
    assert (found[0].text(), found[0].total) == ("this run\n", len(b"this run\n"))
    assert followed.last_line() == "this run"
