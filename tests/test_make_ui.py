"""`make ui` serves the UI with `dg dev` and leaves no process behind when it is stopped:
SIGTERM to make (a script's `kill`), SIGINT to make alone, or SIGINT to its whole process
group (Ctrl-C in a terminal)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.ui import default_signals
from tests.dagster_server import ROOT, Server, alive, descendants, free_port, wait_until_loaded

pytestmark = [pytest.mark.ui, pytest.mark.slow]

STOP_SECONDS = 90


@pytest.mark.parametrize(("sent", "to_group"), [
    (signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["SIGTERM to make", "SIGINT to make", "SIGINT to the group"])
def test_make_ui_stops_every_process_it_started(sent, to_group, tmp_path):
    port = free_port()
    venv = Path(sys.executable).parents[1]
    log = tmp_path / "make_ui.log"
    command = ["make", "--no-print-directory", "ui", f"UI_PORT={port}", f"VENV={venv}",
               f"DAGSTER_HOME={tmp_path / 'home'}"]
    with log.open("wb") as output:
        make = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=default_signals)
    started: set[int] = set()
    try:
        wait_until_loaded(Server(url=f"http://127.0.0.1:{port}", log=log), make)
        assert "dg dev" in " ".join(
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            for pid in alive(descendants(make.pid)))
        started = descendants(make.pid)
        assert len(started) >= 4  # make, the launcher, dg dev, the webserver, ...
        if to_group:
            os.killpg(make.pid, sent)
        else:
            make.send_signal(sent)
        make.wait(timeout=STOP_SECONDS)
        deadline = time.monotonic() + 10
        while alive(started) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(started), f"left running: {sorted(alive(started))}"
    finally:
        for pid in alive(started | descendants(make.pid)):
            os.kill(pid, signal.SIGKILL)
