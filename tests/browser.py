"""Headless Chromium driven over the DevTools protocol on a pipe: open a page, run script in
it, take a screenshot, and collect what it logged as errors. No network is involved."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, List, Optional, Type

#: Generous bound for the browser's answers: catches hangs, not slowness.
ANSWER_SECONDS = 60


def chromium_path() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, executable: str, profile: Path) -> None:
        # the browser's own temporary folder (a singleton socket, which it does not always
        # remove as it quits) in one of ours, removed at exit: short, as a socket's path is
        self._temporary = tempfile.mkdtemp(prefix="browser-")
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()

        def map_pipes() -> None:  # the protocol pipe is fd 3 (in) and fd 4 (out)
            os.dup2(commands_read, 3)
            os.dup2(answers_write, 4)

        self._process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--window-size=1200,900",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": self._temporary},
            preexec_fn=map_pipes,
            pass_fds=(3, 4),  # kept open in the child once map_pipes put them there
        )
        os.close(commands_read)
        os.close(answers_write)
        self._next_id = 0
        self._buffer = b""
        self._session: Optional[str] = None
        #: Exceptions thrown and console errors of the page.
        self.errors: List[str] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        # asked to quit, the browser removes most of its temporary folders; one that does not
        # quit in time is killed, and what either leaves goes with our folder
        close = {"id": 0, "method": "Browser.close"}
        with contextlib.suppress(OSError):  # gone already
            os.write(self._commands, json.dumps(close).encode() + b"\0")
        os.close(self._commands)
        try:
            self._process.wait(timeout=ANSWER_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._answers)
        shutil.rmtree(self._temporary, ignore_errors=True)

    def open(self, page: Path) -> None:
        """Load ``page`` and wait until it is complete."""
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self._call("Runtime.enable")
        self._call("Page.enable")
        self._call("Page.navigate", url=page.as_uri())
        deadline = time.monotonic() + ANSWER_SECONDS
        while self.evaluate("document.readyState") != "complete":
            assert time.monotonic() < deadline, "the page did not load"
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page."""
        answer = self._call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self._call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def _call(self, method: str, **params: Any) -> Dict[str, Any]:
        self._next_id += 1
        message: Dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session is not None and not method.startswith("Target."):
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: Dict[str, Any] = reply["result"]
                return result
            self._note(reply)

    def _receive(self) -> Dict[str, Any]:
        deadline = time.monotonic() + ANSWER_SECONDS
        while b"\0" not in self._buffer:
            assert time.monotonic() < deadline, "the browser did not answer"
            chunk = os.read(self._answers, 1 << 20)
            assert chunk, "the browser closed its pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: Dict[str, Any] = json.loads(message)
        return parsed

    def _note(self, event: Dict[str, Any]) -> None:
        method = event.get("method")
        params = event.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"]))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(json.dumps(params["args"]))
