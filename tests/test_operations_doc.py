"""The Dask cluster of docs/operations.md, run as written: the scheduler binds to the chosen
interface only and speaks mutual TLS; a client without a certificate is refused, a client
configured by the documented variables runs a task on the documented worker.

The commands are read from the document's shell block; only the certificate folder, the
addresses (127.0.0.1 for the private ones) and the ports (free ones) are substituted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.ui import default_signals, session_members
from tests.dagster_server import ROOT, free_port

DOC = ROOT / "docs" / "operations.md"
READY_SECONDS = 120
CERTS = "/etc/tradegap/dask"


def dask_commands() -> list[str]:
    """The logical lines of the shell block in the Dask section (continuations joined)."""
    section = DOC.read_text().split("## Dask", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    return [re.sub(r"\s+", " ", line.split(" # ")[0]).strip() for line in lines
            if line.strip() and not line.lstrip().startswith("#")]


def listening(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for row in Path(table).read_text().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_the_documented_scheduler_binds_one_interface_and_requires_tls():
    commands = dask_commands()
    [scheduler] = [line for line in commands if "dask scheduler" in line]
    words = shlex.split(scheduler)
    assert words[words.index("--host") + 1] not in ("0.0.0.0", "::", "")
    assert words[words.index("--protocol") + 1] == "tls"
    for flag in ("--tls-ca-file", "--tls-cert", "--tls-key"):
        assert flag in words, flag
    assert "--no-dashboard" in words or not words[
        words.index("--dashboard-address") + 1].startswith(":")
    exports = [line for line in commands if line.startswith("export DASK_")]
    assert "export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True" in exports


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict]:
    """The document's CA, scheduler and worker, on 127.0.0.1 and free ports."""
    certs = tmp_path_factory.mktemp("certs")
    port, dashboard = free_port(), free_port()
    venv_bin = str(Path(sys.executable).parent) + "/"

    def local(line: str) -> str:
        line = line.replace(CERTS, str(certs)).replace(".venv/bin/", venv_bin)
        line = re.sub(r"10\.0\.0\.\d+:8787", f"127.0.0.1:{dashboard}", line)
        line = line.replace("--port 8786", f"--port {port}").replace(":8786", f":{port}")
        return re.sub(r"10\.0\.0\.\d+", "127.0.0.1", line)

    commands = [local(line) for line in dask_commands()]
    for line in commands:
        if line.startswith(("openssl", "chmod")):
            subprocess.run(line, shell=True, check=True, capture_output=True, cwd=certs)
    environment = dict(os.environ)
    for line in commands:
        if line.startswith("export "):
            for assignment in shlex.split(line)[1:]:
                name, value = assignment.split("=", 1)
                environment[name] = value
    started = []
    for kind in ("dask scheduler", "dask worker"):
        [line] = [command for command in commands if kind in command]
        words = shlex.split(line)
        if kind == "dask worker":
            words[words.index("--nworkers") + 1] = "1"
        started.append(subprocess.Popen(
            words, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=default_signals))
        if kind == "dask scheduler":
            deadline = time.monotonic() + READY_SECONDS
            while not listening(port) and time.monotonic() < deadline:
                time.sleep(0.5)
    try:
        yield {"port": port, "dashboard": dashboard, "environment": environment}
    finally:
        for process in reversed(started):
            for pid in session_members(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid in session_members(process.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                process.wait()


def client(script: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True,
                          text=True, timeout=READY_SECONDS)


def test_the_scheduler_and_its_dashboard_listen_on_the_chosen_interface_only(cluster):
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    assert listening(cluster["port"]) == {loopback}
    assert listening(cluster["dashboard"]) == {loopback}


def test_a_client_without_a_certificate_is_refused(cluster):
    script = ("from distributed import Client\n"
              "for scheme in ('tls', 'tcp'):\n"
              "    try:\n"
              f"        Client(f'{{scheme}}://127.0.0.1:{cluster['port']}', timeout=10)\n"
              "    except Exception as error:\n"
              "        print(scheme, 'refused', type(error).__name__)\n"
              "    else:\n"
              "        print(scheme, 'connected')\n")
    plain = {name: value for name, value in os.environ.items()
             if not name.startswith("DASK_")}
    done = client(script, plain)
    assert done.stdout.split("\n")[0].startswith("tls refused"), done.stdout + done.stderr
    assert done.stdout.split("\n")[1].startswith("tcp refused"), done.stdout + done.stderr


def test_the_documented_client_settings_run_a_task_and_refuse_plain_tcp(cluster):
    address = f"tls://127.0.0.1:{cluster['port']}"
    script = ("from distributed import Client\n"
              f"with Client('{address}', timeout=60) as c:\n"
              "    c.wait_for_workers(1, timeout=60)\n"
              "    print('result', c.submit(sum, [40, 2]).result())\n"
              "try:\n"
              f"    Client('tcp://127.0.0.1:{cluster['port']}', timeout=10)\n"
              "except Exception as error:\n"
              "    print('tcp refused:', error)\n")
    done = client(script, cluster["environment"])
    assert "result 42" in done.stdout, done.stdout + done.stderr
    assert "tcp refused:" in done.stdout and "encrypt" in done.stdout, done.stdout
