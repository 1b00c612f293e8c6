"""Headless Chromium driven over the DevTools protocol: open a page, click, read the DOM.

Enough of the protocol for the UI tests: navigate, evaluate JavaScript (to click and to
query what was rendered) and take a screenshot. Chromium runs with the flags this machine
needs (no sandbox as root, no background networking) and a fresh profile, in a session of
its own that is stopped whole at the end.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from pipelines.ui import default_signals, stop_session

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
START_SECONDS = 60


def chromium_path() -> str:
    """Chromium's path; its absence fails the test (a skip would hide the UI going untested)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is not installed: `make test` installs it "
                    "(apt-get install chromium)")
    return path


class Page:
    """One browser tab, spoken to over its DevTools websocket."""

    def __init__(self, socket) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: object) -> dict:
        """Send one command and return its result (events in between are skipped)."""
        number = next(self._ids)
        self._socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            reply = json.loads(self._socket.recv(timeout=120))
            if reply.get("id") == number:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, seconds: float) -> object:
        """Poll until `expression` is truthy; its value (or the last falsy one on time-out)."""
        deadline = time.monotonic() + seconds
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        return value

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


@contextlib.contextmanager
def browser(width: int = 1600, height: int = 1200) -> Iterator[Page]:
    """A headless Chromium with one blank tab."""
    profile = Path(tempfile.mkdtemp(prefix="chromium_profile_"))
    command = [chromium_path(), *FLAGS, f"--user-data-dir={profile}",
               f"--window-size={width},{height}", "--remote-debugging-port=0", "about:blank"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=default_signals)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_SECONDS
        while not port_file.is_file() or not port_file.read_text().strip():
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("Chromium did not open its DevTools port")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as reply:
            tab = next(t for t in json.load(reply) if t["type"] == "page")
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            page = Page(socket)
            page.call("Page.enable")
            yield page
    finally:
        stop_session(process, grace=5)
        shutil.rmtree(profile, ignore_errors=True)
