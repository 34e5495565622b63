"""The live status on a real terminal: shown while scripts run, never mixed into pytest's own
lines, and gone from the screen at the end and on Ctrl-C."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
import unicodedata
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import pyte
import pytest

from pytest_parallel_hypotheses.report.livearea import StatusArea
from pytest_parallel_hypotheses.report.statusview import status_lines
from pytest_parallel_hypotheses.report.watch import Progress, Running
from tests.conftest import PLUGINS_OFF, take_signals_as_a_terminal_does

WriteScript = Callable[..., Path]

#: Generous bound for anything that should take seconds: catches hangs, not slowness.
HANG_SECONDS = 120
COLUMNS, ROWS = 120, 200
STATUS = re.compile(r"hypotheses: \d+ done, \d+ running, \d+ waiting")


class Terminal:
    """pytest running on a pseudo-terminal of COLUMNS x ROWS; everything it wrote, and the
    screen that shows."""

    def __init__(self, args: List[str], cwd: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        env = {**os.environ, "TERM": "xterm", "COLUMNS": str(COLUMNS)}
        env.pop("PYTEST_ADDOPTS", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest", *PLUGINS_OFF, *args],
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=take_signals_as_a_terminal_does,
        )
        os.close(slave)
        self._master = master
        self.raw = b""

    def read_until(self, condition: Callable[[bytes], bool]) -> None:
        deadline = time.monotonic() + HANG_SECONDS
        while not condition(self.raw):
            assert time.monotonic() < deadline, self.raw.decode(errors="replace")
            if not self._read_some():
                return

    def finish(self) -> List[str]:
        """Read to the end; the lines of the final screen, without trailing blanks."""
        self.read_until(lambda _raw: False)
        self.process.wait(timeout=HANG_SECONDS)
        os.close(self._master)
        screen = pyte.Screen(COLUMNS, ROWS)
        stream = pyte.ByteStream(screen)
        stream.feed(self.raw)
        lines = [line.rstrip() for line in screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def _read_some(self) -> bool:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            return False
        self.raw += data
        return bool(data)


def status_seen(raw: bytes, *words: str) -> bool:
    text = raw.decode(errors="replace")
    return bool(STATUS.search(text)) and all(word in text for word in words)


@pytest.fixture
def slow_run(git_repo: Path, write_script: WriteScript, tmp_path: Path) -> Path:
    """Hypotheses finishing at different times while a slow one prints and runs on."""
    for index in range(4):
        write_script(git_repo, f"quick{index}", f"sleep 0.{index + 2}; exit {index % 2}")
    write_script(git_repo, "slow", "echo compiling the parser; sleep 2.5; exit 0")
    return git_repo


def test_the_status_names_each_running_hypothesis_with_its_time_and_last_line(
    slow_run: Path, tmp_path: Path
) -> None:
    terminal = Terminal([f"--hypotheses={slow_run}", f"--rootdir={tmp_path}"], tmp_path)

    terminal.read_until(lambda raw: status_seen(raw, "slow ", "/5m00s | compiling the parser"))
    terminal.finish()

    assert status_seen(terminal.raw, "slow ", "/5m00s | compiling the parser")


def test_the_final_screen_shows_only_what_pytest_wrote(slow_run: Path, tmp_path: Path) -> None:
    terminal = Terminal([f"--hypotheses={slow_run}", f"--rootdir={tmp_path}", "-v"], tmp_path)

    lines = terminal.finish()

    assert status_seen(terminal.raw)  # it was shown while the scripts ran
    assert not any(STATUS.search(line) or "|" in line for line in lines)
    verdicts = [line for line in lines if "::" in line and "%]" in line]
    assert len(verdicts) == 5
    for line in verdicts:
        assert re.fullmatch(r"\S+::\w+ (FALSIFIED|SUPPORTED) +\[ *\d+%\]", line), line


def test_quiet_progress_dots_stay_whole_around_the_status(slow_run: Path, tmp_path: Path) -> None:
    terminal = Terminal([f"--hypotheses={slow_run}", f"--rootdir={tmp_path}"], tmp_path)

    lines = terminal.finish()

    assert status_seen(terminal.raw)
    [progress] = [line for line in lines if line.endswith("[100%]")]
    assert re.fullmatch(r"\S+ [.F]{5} +\[100%\]", progress), progress


def test_the_status_stays_out_of_what_pytest_captures_during_an_item(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    # While an item runs, pytest sends file descriptor 1 to its capture file: a status drawn
    # then would be captured, and erasing it later would climb over pytest's own lines.
    write_script(git_repo, "falsified", "sleep 1; exit 0")
    write_script(git_repo, "supported", "sleep 1; exit 1")
    (tmp_path / "conftest.py").write_text(
        "import time\n\ndef pytest_runtest_call(item):\n    time.sleep(1.2)\n"
    )
    terminal = Terminal([f"--hypotheses={git_repo}", f"--rootdir={tmp_path}", "-rA"], tmp_path)

    lines = terminal.finish()

    assert status_seen(terminal.raw)  # while the scripts ran, before the first item
    assert not any(line.startswith("----") and "Captured" in line for line in lines)
    assert any(line.startswith("rootdir: ") for line in lines)
    [progress] = [line for line in lines if line.endswith("[100%]")]
    assert re.fullmatch(r"\S+ [.F]{2} +\[100%\]", progress), progress


def test_ctrl_c_leaves_a_clean_screen(
    git_repo: Path, write_script: WriteScript, tmp_path: Path, sleep_token: str
) -> None:
    write_script(git_repo, "hangs", f"echo started; sleep {sleep_token}")
    terminal = Terminal([f"--hypotheses={git_repo}", f"--rootdir={tmp_path}"], tmp_path)
    terminal.read_until(lambda raw: status_seen(raw, "| started"))

    os.killpg(terminal.process.pid, signal.SIGINT)  # as the terminal sends Ctrl-C
    lines = terminal.finish()

    assert any("KeyboardInterrupt" in line for line in lines)
    assert not any(STATUS.search(line) for line in lines)


def test_quiet_runs_show_no_status(slow_run: Path, tmp_path: Path) -> None:
    terminal = Terminal([f"--hypotheses={slow_run}", f"--rootdir={tmp_path}", "-q"], tmp_path)

    terminal.finish()

    assert not status_seen(terminal.raw)


def test_live_off_shows_no_status_on_a_terminal(slow_run: Path, tmp_path: Path) -> None:
    args = [f"--hypotheses={slow_run}", f"--rootdir={tmp_path}", "--hypotheses-live=off"]
    terminal = Terminal(args, tmp_path)

    terminal.finish()

    assert not status_seen(terminal.raw)


def test_without_the_terminal_plugin_no_status_is_drawn(slow_run: Path, tmp_path: Path) -> None:
    args = [f"--hypotheses={slow_run}", f"--rootdir={tmp_path}", "-p", "no:terminal"]
    terminal = Terminal([*args, "--hypotheses-live=on"], tmp_path)

    terminal.finish()

    assert terminal.process.returncode == pytest.ExitCode.TESTS_FAILED
    assert not status_seen(terminal.raw)


def test_live_on_shows_it_even_into_a_pipe(
    pytester: pytest.Pytester, slow_run: Path, tmp_path: Path
) -> None:
    result = pytester.runpytest_subprocess(
        f"--hypotheses={slow_run}", f"--rootdir={tmp_path}", *PLUGINS_OFF, "--hypotheses-live=on"
    )

    assert STATUS.search(result.stdout.str())


def test_under_xdist_the_controller_shows_the_status(slow_run: Path, tmp_path: Path) -> None:
    args = ["-n", "2", f"--hypotheses={slow_run}", f"--rootdir={tmp_path}"]
    terminal = Terminal(args, tmp_path)

    lines = terminal.finish()

    assert status_seen(terminal.raw, "slow ")
    assert not any(STATUS.search(line) for line in lines)


def test_under_xdist_the_status_shows_the_last_line_a_running_script_printed(
    git_repo: Path, write_script: WriteScript, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    write_script(
        git_repo,
        "slow",
        f"echo warming up\necho compiling the parser\n"
        f"for _ in $(seq {HANG_SECONDS * 10}); do [ -e {go_on} ] && break; sleep 0.1; done",
    )
    write_script(git_repo, "quick", "exit 0")
    args = ["-n", "2", f"--hypotheses={git_repo}", f"--rootdir={tmp_path}"]
    terminal = Terminal(args, tmp_path)

    terminal.read_until(lambda raw: status_seen(raw, "slow ", "| compiling the parser"))
    go_on.touch()
    terminal.finish()

    assert status_seen(terminal.raw, "slow ", "| compiling the parser")


def screen_of(text: str) -> List[str]:
    screen = pyte.Screen(40, 10)
    pyte.Stream(screen).feed(text.replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display if line.strip()]


def drawn(*steps: Tuple[str, Optional[List[str]]]) -> str:
    """What the area writes for pytest's texts and status updates, in order."""
    file = io.StringIO()
    area = StatusArea(file)  # type: ignore[arg-type]
    for text, lines in steps:
        if lines is None:
            area.write(text)
        else:
            area.show(lines)
    area.clear()
    return file.getvalue()


def test_erasing_returns_to_the_column_where_pytest_left_its_line() -> None:
    text = drawn(("a.py ..", None), ("", ["status 1", "status 2"]), (".F", None))

    assert screen_of(text) == ["a.py ...F"]


def test_colour_codes_take_no_room_on_the_line() -> None:
    text = drawn(("a.py \x1b[32m.\x1b[0m", None), ("", ["status"]), (".", None))

    assert screen_of(text) == ["a.py .."]


def test_a_status_over_a_finished_line_is_replaced_by_the_next_line() -> None:
    text = drawn(("one PASSED\n", None), ("", ["status 1", "status 2"]), ("two PASSED\n", None))

    assert screen_of(text) == ["one PASSED", "two PASSED"]


def test_status_lines_never_wrap_even_with_wide_characters() -> None:
    entry = Running("wt::h", "h", "slot 1", 1, 1, 60.0, since=0.0)
    progress = Progress(total=1, done=0, running=[entry])

    class Output:
        def last_line(self) -> str:
            return "编译中 " * 30 + "\x1b[31mred\ttab"

    wide = Running("wt::w", "w", "slot 2", 1, 1, 60.0, since=0.0, output=Output())  # type: ignore[arg-type]
    lines = status_lines(Progress(total=2, done=0, running=[entry, wide]), now=5.0, width=40)

    assert lines[1] == "  h 5.0s/1m00s"
    assert sum(2 if unicodedata.east_asian_width(c) == "W" else 1 for c in lines[2]) <= 40
    assert lines[2].endswith("...")
    assert all(char.isprintable() for line in lines for char in line)
    assert (
        status_lines(progress, now=5.0, width=40)[0] == "hypotheses: 0 done, 1 running, 0 waiting"
    )


def test_a_held_area_draws_and_writes_nothing_until_released() -> None:
    file = io.StringIO()
    area = StatusArea(file)  # type: ignore[arg-type]
    area.write("a.py .")
    area.hold()
    area.show(["status"])

    assert not area.note(lambda: "heartbeat: 1 done")
    assert file.getvalue() == "a.py ."
    area.release()
    assert area.note(lambda: None)  # nothing to say
    assert area.note(lambda: "heartbeat: 2 done")
    assert screen_of(file.getvalue()) == ["a.py .", "heartbeat: 2 done"]


def test_a_line_ended_early_is_not_ended_again() -> None:
    file = io.StringIO()
    area = StatusArea(file)  # type: ignore[arg-type]
    area.write("wt::quick FALSIFIED   [ 50%]")
    area.end_line()
    area.write("\n")  # pytest ends the line as it starts the next item's
    area.write("wt::slow FALSIFIED   [100%]")

    assert file.getvalue() == "wt::quick FALSIFIED   [ 50%]\nwt::slow FALSIFIED   [100%]"


def test_a_heartbeat_after_an_unfinished_line_leaves_no_empty_line() -> None:
    file = io.StringIO()
    area = StatusArea(file)  # type: ignore[arg-type]
    area.write("wt::quick FALSIFIED")
    area.note(lambda: "hypotheses still running: slow")
    area.write("\nwt::slow FALSIFIED")

    assert file.getvalue().splitlines() == [
        "wt::quick FALSIFIED",
        "hypotheses still running: slow",
        "wt::slow FALSIFIED",
    ]
