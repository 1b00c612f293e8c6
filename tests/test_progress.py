"""Long work shows progress on a terminal and stays quiet when piped or under CI."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import time
    from engine.progress import progress
    assert list(progress(range(40), total=40, what="bars diagnosed", unit="bar")) == list(
        range(40))
    for _ in progress(range(3), what="slow"):
        time.sleep(0.2)
    print("done")
""")


def run_on_terminal(env: dict) -> str:
    """The script's standard error as a terminal shows it."""
    main, replica = pty.openpty()
    child = subprocess.Popen([sys.executable, "-c", SCRIPT], stderr=replica,
                             stdout=subprocess.PIPE, env=env)
    os.close(replica)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the child exited
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert child.stdout.read().decode().strip() == "done"
    assert child.wait(timeout=120) == 0
    return seen.decode(errors="replace")


def quiet_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("CI", "TRADEGAP_PROGRESS")}


def test_a_terminal_sees_done_of_total():
    shown = run_on_terminal(quiet_env())
    assert "bars diagnosed" in shown and "0/40" in shown
    assert "slow" in shown and "3/3" in shown and "it/s" in shown


def test_piped_output_and_ci_stay_quiet():
    piped = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                           env=quiet_env(), check=True)
    assert piped.stderr == "" and piped.stdout.strip() == "done"
    assert run_on_terminal({**quiet_env(), "CI": "true"}) == ""
    assert run_on_terminal({**quiet_env(), "TRADEGAP_PROGRESS": "0"}) == ""
