"""`make ui`: the Dagster UI (`dg dev`), stopped together with everything it started.

`dg dev` starts a webserver, a daemon and code servers. Started from a script, they can
inherit SIGINT and SIGTERM ignored and outlive whoever stops the UI. This launcher starts
`dg dev` in a session of its own with default signal handlers and stops that whole session
(SIGTERM first, then SIGKILL for whatever is still there after a grace period) when:

- it gets SIGINT, SIGTERM or SIGHUP (Ctrl-C reaches it with make; make passes SIGTERM on);
- its parent dies, however;
- its parent stops catching a stop signal it caught at launch: GNU make, given SIGINT or
  SIGHUP alone (`kill -INT <make's pid>`), resets that signal to its default and waits for
  its children without passing the signal on; the launcher reads this in /proc.

Once stopping, it ignores further stop signals: a supervisor's group SIGTERM (systemd,
`docker stop`, `kill -TERM -- -PGID`) reaches it twice, directly and through make.

    python -m pipelines.ui [--host 127.0.0.1] [--port 3000]

`DAGSTER_HOME` names the instance (`make ui` sets a project-local one).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRACE_SECONDS = 20.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


class Stop(Exception):
    """A stop signal arrived."""


def default_signals() -> None:
    """In the child before exec: undo ignored signals inherited from a script."""
    for number in (*STOP_SIGNALS, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


def session_members(session: int) -> list[int]:
    """Every process whose session id is `session` (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:
                members.append(int(entry.name))
    return members


def stop_session(process: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM the session `process` leads, wait up to `grace`, then SIGKILL what is left."""
    for pid in session_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()
        if not session_members(process.pid):
            break
        time.sleep(0.2)
    for pid in session_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def caught_signals(pid: int) -> set[int]:
    """The signals process `pid` catches with a handler (SigCgt in /proc), or none."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        mask = int(next(line for line in status if line.startswith("SigCgt:")).split()[1], 16)
        return {number for number in range(1, 65) if mask >> (number - 1) & 1}
    return set()


def ignore_stop_signals() -> None:
    """While stopping, further stop signals (a group SIGTERM reaches the launcher from the
    supervisor and again from make) must not interrupt the shutdown."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def _raise_stop(number: int, _frame) -> None:
    ignore_stop_signals()
    raise Stop(signal.Signals(number).name)


def _die_with_parent() -> None:
    """Get SIGTERM when the parent (make) dies, however it died (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    for number in STOP_SIGNALS:
        signal.signal(number, _raise_stop)
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the request took effect
        return 1
    command = [str(Path(sys.executable).with_name("dg")), "dev", "--host", args.host,
               "--port", str(args.port)]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=default_signals)
    watched = caught_signals(parent) & set(STOP_SIGNALS)
    try:
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return process.wait(timeout=POLL_SECONDS)
            if watched - caught_signals(parent):
                ignore_stop_signals()
                raise Stop(f"parent {parent} is stopping")
    except Stop as stop:
        print(f"tradegap ui: {stop}: stopping dg dev and its processes", file=sys.stderr,
              flush=True)
        stop_session(process)
        return 0


if __name__ == "__main__":
    sys.exit(main())
