"""A running Dagster UI server for end-to-end tests: start it as `make ui` does, talk GraphQL.

The server is `python -m pipelines.ui` (the launcher `make ui` runs: `dg dev` in a session
of its own) on a free port, with a given `DAGSTER_HOME` and environment. It is started in a
new session with default signal handlers (a non-interactive parent may pass SIGINT and
SIGTERM ignored), so teardown stops exactly what it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.ui import default_signals, session_members

ROOT = Path(__file__).resolve().parents[1]
READY_SECONDS = 180
RUN_SECONDS = 900
STOP_SECONDS = 40

REPOSITORIES = """{ repositoriesOrError { __typename
  ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
  ... on PythonError { message } } }"""
LOCATIONS = """{ workspaceOrError { __typename
  ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } }
  ... on PythonError { message } } }"""
LAUNCH = """mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on Error { message } } }"""
STATUS = """query ($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { status } ... on Error { message } } }"""
EVENTS = """query ($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 500) { __typename
  ... on EventConnection { cursor hasMore events { __typename
    ... on MessageEvent { message level stepKey timestamp }
    ... on MaterializationEvent { assetKey { path } }
    ... on AssetCheckEvaluationEvent { evaluation {
      checkName success severity description assetKey { path } } } } }
  ... on Error { message } } }"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Server:
    """A running UI server: where it listens and where it logs."""

    url: str
    log: Path

    def graphql(self, document: str, **variables: object) -> dict:
        """The `data` of a GraphQL request; GraphQL errors fail the test."""
        body = json.dumps({"query": document, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            reply = json.load(response)
        assert not reply.get("errors"), f"GraphQL errors: {reply['errors']}"
        return reply["data"]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def repository(self, job: str) -> dict[str, str]:
        """The location and repository that hold `job`, as a selector."""
        reply = self.graphql(REPOSITORIES)["repositoriesOrError"]
        assert reply["__typename"] == "RepositoryConnection", reply
        holders = [repository for repository in reply["nodes"]
                   if job in {entry["name"] for entry in repository["jobs"]}]
        assert len(holders) == 1, f"{job} should be in exactly one repository: {reply}"
        return {"repositoryLocationName": holders[0]["location"]["name"],
                "repositoryName": holders[0]["name"]}

    def launch(self, job: str, run_config: dict) -> str:
        """Launch `job` as the UI's button does; its run id."""
        params = {"selector": {**self.repository(job), "jobName": job},
                  "runConfigData": run_config}
        launched = self.graphql(LAUNCH, params=params)["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def wait_for_run(self, run_id: str, seconds: float = RUN_SECONDS) -> str:
        deadline = time.monotonic() + seconds
        status = "unknown"
        while time.monotonic() < deadline:
            reply = self.graphql(STATUS, runId=run_id)["runOrError"]
            assert reply["__typename"] == "Run", reply
            status = reply["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(1)
        pytest.fail(f"run {run_id} still {status} after {seconds}s:\n{self.log_tail()}")

    def run_events(self, run_id: str) -> list[dict]:
        events, cursor = [], None
        for _ in range(100):
            page = self.graphql(EVENTS, runId=run_id, cursor=cursor)["logsForRun"]
            assert page["__typename"] == "EventConnection", page
            events += page["events"]
            cursor = page["cursor"]
            if not page["hasMore"]:
                return events
        pytest.fail(f"more than 100 pages of events for run {run_id}")

    def run_job(self, job: str, run_config: dict) -> tuple[str, list[dict]]:
        """Launch, wait for success (or fail with the run's errors); id and events."""
        run_id = self.launch(job, run_config)
        status = self.wait_for_run(run_id)
        events = self.run_events(run_id)
        if status != "SUCCESS":
            errors = [e["message"] for e in events if e.get("level") == "ERROR"]
            pytest.fail(f"run {run_id} of {job} ended {status}:\n" + "\n".join(errors[-10:]))
        return run_id, events


def wait_until_loaded(server: Server, process: subprocess.Popen) -> None:
    """Poll `/server_info`, then the workspace, until the code location has loaded."""
    deadline = time.monotonic() + READY_SECONDS
    state = "no answer from /server_info"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the UI exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/server_info", timeout=5):
                pass
            workspace = server.graphql(LOCATIONS)["workspaceOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
            continue
        entries = workspace.get("locationEntries") or []
        state = "; ".join(f"{e['name']}: {e['loadStatus']}" for e in entries) or str(workspace)
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries
                      if e["locationOrLoadError"]["__typename"] == "PythonError"]
            assert not errors, f"the code location failed to load: {errors}"
            return
        time.sleep(0.5)
    pytest.fail(f"the UI was not ready after {READY_SECONDS}s ({state}):\n{server.log_tail()}")


def descendants(root: int) -> set[int]:
    """`root` and every process below it, with every member of their sessions."""
    parents = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            if entry.name.isdigit():
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
    found, changed = {root}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                changed = True
    for pid in list(found):
        found.update(session_members(pid))
    return found


def alive(pids: set[int]) -> set[int]:
    """The processes of `pids` still running (zombies count as gone)."""
    running = set()
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                running.add(pid)
    return running


@contextlib.contextmanager
def ui_server(home: Path, environment: dict[str, str]) -> Iterator[Server]:
    """The launcher `make ui` runs, on a free port, over `home`; stopped with all it started."""
    port = free_port()
    log = home / "ui.log"
    command = [sys.executable, "-m", "pipelines.ui", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, **environment, "DAGSTER_HOME": str(home)}
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=default_signals)
    started: set[int] = set()
    try:
        server = Server(url=f"http://127.0.0.1:{port}", log=log)
        wait_until_loaded(server, process)
        started = descendants(process.pid)
        yield server
    finally:
        started |= descendants(process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)
        for pid in alive(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)
