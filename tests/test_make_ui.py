"""`make ui` serves the UI with `dg dev` and leaves no process behind when it is stopped:
SIGTERM to make (a script's `kill`), SIGINT to make alone, SIGINT to its whole process
group (Ctrl-C in a terminal), or SIGTERM to the whole group (systemd, `docker stop`,
`kill -TERM -- -PGID`: the launcher gets it from the sender and again from make), repeated
while the launcher is stopping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.ui import default_signals, session_members
from tests.dagster_server import ROOT, Server, alive, descendants, free_port, wait_until_loaded

pytestmark = [pytest.mark.ui, pytest.mark.slow]

STOP_SECONDS = 90
REPEATS = 5


def command_line(pid: int) -> str:
    with_nulls = Path(f"/proc/{pid}/cmdline").read_bytes()
    return with_nulls.replace(b"\0", b" ").decode(errors="replace").strip()


def is_dg_dev(words: list[str]) -> bool:
    return any(word.endswith("/dg") and words[i + 1:i + 2] == ["dev"]
               for i, word in enumerate(words))


def repeat_while_stopping(launcher: int, log: Path) -> None:
    """SIGTERM the launcher again and again once it says it is stopping, as a supervisor
    that repeats its request does (or make passing the group's signal on late)."""
    deadline = time.monotonic() + STOP_SECONDS
    while "stopping dg dev" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    for _ in range(REPEATS):
        if not alive({launcher}):
            break
        os.kill(launcher, signal.SIGTERM)
        time.sleep(0.1)


@pytest.mark.parametrize(("sent", "to_group"), [
    (signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True),
    (signal.SIGTERM, True)],
    ids=["SIGTERM to make", "SIGINT to make", "SIGINT to the group",
         "SIGTERM to the group, repeated"])
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
        [dg_dev] = [pid for pid in alive(started) if is_dg_dev(command_line(pid).split())]
        [launcher] = [pid for pid in alive(started) if "pipelines.ui" in command_line(pid)]
        if to_group:
            os.killpg(make.pid, sent)
        else:
            make.send_signal(sent)
        if to_group and sent == signal.SIGTERM:
            repeat_while_stopping(launcher, log)
        make.wait(timeout=STOP_SECONDS)
        deadline = time.monotonic() + 10
        while alive(started) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive(started), f"left running: {sorted(alive(started))}"
        # nothing of dg dev's session either (webserver, daemon, code servers, ...)
        left = alive(set(session_members(dg_dev)))
        assert not left, f"left running: {[command_line(pid) for pid in left]}"
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text()
    finally:
        for pid in alive(started | descendants(make.pid)):
            os.kill(pid, signal.SIGKILL)
