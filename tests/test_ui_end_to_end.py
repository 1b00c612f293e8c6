"""End to end through the UI server: `dagster dev`, a run launched over GraphQL, the graph.

One `dagster dev` serves the code location from a temporary DAGSTER_HOME (telemetry off)
with artifacts in a temporary folder (`TRADEGAP_ARTIFACTS`). Over its GraphQL endpoint the
tests find the repository that holds `nightly_regression`, launch the job on small
generated data (30 assets × 300 days) with the default executor, as the UI's button does,
and wait for it. Then:

- the run succeeded, materialized every asset of the job (the seven main assets among
  them) and every asset check it evaluated passed, `engine_parity` and both
  `ledger_identities` included (read from the run's own events);
- headless Chromium renders the global asset lineage page (`/asset-groups`) with the job's
  groups opened (`expanded`, the page's own URL state; group ids `global@global:<group>`).
  In the dumped DOM each of the seven assets is a graph node (its name followed by the
  node's "Latest event" row) that shows "Materialized", and the two backtest nodes show
  all their checks passed ("N / N Passed"). The window is 2560×1440: at 1600×1000 the
  zoom-to-fit scale drops below the UI's detail threshold and nodes are drawn minimal,
  names middle-truncated ("performan…_summary"). The screenshot `graph.png` is kept in
  the test's temporary folder.

The server runs in its own session with default signal handlers (a non-interactive parent
may pass SIGINT and SIGTERM ignored), so teardown stops exactly the process group it
started. Chromium is required: `make test` installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JOB = "nightly_regression"
MAIN_ASSETS = ("market_data", "features", "signals", "target_weights", "backtest_engine",
               "backtest_reference", "performance_summary")
BACKTESTS = ("backtest_engine", "backtest_reference")
SMALL = {
    "ops": {
        "market_data": {"config": {"n_assets": 30, "n_days": 300, "seed": 1}},
        "signals": {"config": {"train_window": 60, "refit_every": 10}},
        "target_weights": {"config": {"top_k": 5, "every": 10}},
    }
}
READY_SECONDS = 90
RUN_SECONDS = 420  # each step is a new process: imports and compiled-code loading, on 2 cores
STOP_SECONDS = 30
WINDOW = "2560,1440"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")

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
    ... on MessageEvent { message level stepKey }
    ... on MaterializationEvent { assetKey { path } }
    ... on AssetCheckEvaluationEvent { evaluation {
      checkName success description assetKey { path } } } } }
  ... on Error { message } } }"""
JOB_ASSETS = """{ assetNodes { assetKey { path } groupName jobNames } }"""


@dataclass(frozen=True)
class Server:
    """A running `dagster dev`: where it listens and where it logs."""

    url: str
    log: Path

    def graphql(self, document: str, **variables: object) -> dict:
        """The `data` of a GraphQL request; GraphQL errors fail the test."""
        body = json.dumps({"query": document, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.load(response)
        assert not reply.get("errors"), f"GraphQL errors: {reply['errors']}"
        return reply["data"]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass(frozen=True)
class CompletedRun:
    """A finished run of the job: its id, the job's assets and groups, and its events."""

    run_id: str
    job_assets: frozenset[str]
    job_groups: frozenset[str]
    events: list[dict]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def default_signals() -> None:
    """In the child before exec: undo ignored SIGINT/SIGTERM inherited from the parent."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def stop_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group `process` leads, then SIGKILL whatever is left of it."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait(timeout=grace)


def wait_until_loaded(server: Server, process: subprocess.Popen) -> None:
    """Poll `/server_info`, then the workspace, until the code location has loaded."""
    deadline = time.monotonic() + READY_SECONDS
    state = "no answer from /server_info"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
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
    pytest.fail(f"dagster dev not ready after {READY_SECONDS}s ({state}):\n{server.log_tail()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """`dagster dev` on a free port over a temporary instance and artifact folder."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    artifacts = tmp_path_factory.mktemp("artifacts")
    port = free_port()
    log = home / "dagster_dev.log"
    command = [str(Path(sys.executable).with_name("dagster")), "dev", "-h", "127.0.0.1",
               "-p", str(port), "-w", str(ROOT / "workspace.yaml")]
    environment = {**os.environ, "DAGSTER_HOME": str(home),
                   "TRADEGAP_ARTIFACTS": str(artifacts)}
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=default_signals)
    try:
        running = Server(url=f"http://127.0.0.1:{port}", log=log)
        wait_until_loaded(running, process)
        yield running
    finally:
        stop_group(process, STOP_SECONDS)


def job_selector(server: Server) -> dict[str, str]:
    """The location and repository that hold the job, as the UI's server lists them."""
    reply = server.graphql(REPOSITORIES)["repositoriesOrError"]
    assert reply["__typename"] == "RepositoryConnection", reply
    holders = [repository for repository in reply["nodes"]
               if JOB in {job["name"] for job in repository["jobs"]}]
    assert len(holders) == 1, f"{JOB} should be in exactly one repository: {reply['nodes']}"
    return {"repositoryLocationName": holders[0]["location"]["name"],
            "repositoryName": holders[0]["name"], "jobName": JOB}


def run_events(server: Server, run_id: str) -> list[dict]:
    events, cursor = [], None
    for _ in range(100):
        page = server.graphql(EVENTS, runId=run_id, cursor=cursor)["logsForRun"]
        assert page["__typename"] == "EventConnection", page
        events += page["events"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return events
    pytest.fail(f"more than 100 pages of events for run {run_id}")


def wait_for_run(server: Server, run_id: str) -> str:
    deadline = time.monotonic() + RUN_SECONDS
    status = "unknown"
    while time.monotonic() < deadline:
        reply = server.graphql(STATUS, runId=run_id)["runOrError"]
        assert reply["__typename"] == "Run", reply
        status = reply["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    pytest.fail(f"run {run_id} still {status} after {RUN_SECONDS}s:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def completed_run(server: Server) -> CompletedRun:
    """`nightly_regression` on small data, launched over GraphQL and waited for."""
    params = {"selector": job_selector(server), "runConfigData": SMALL}
    launched = server.graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for_run(server, run_id)
    events = run_events(server, run_id)
    if status != "SUCCESS":
        errors = [e["message"] for e in events if e.get("level") == "ERROR"]
        pytest.fail(f"run {run_id} ended {status}:\n" + "\n".join(errors[-10:]))
    nodes = [node for node in server.graphql(JOB_ASSETS)["assetNodes"]
             if JOB in node["jobNames"]]
    return CompletedRun(
        run_id=run_id,
        job_assets=frozenset("/".join(node["assetKey"]["path"]) for node in nodes),
        job_groups=frozenset(node["groupName"] for node in nodes),
        events=events,
    )


def chromium_path() -> str:
    """Chromium's path; its absence fails the test (a skip would hide the UI going untested)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Chromium is not installed: `make test` installs it "
                    "(apt-get install chromium)")
    return path


def test_a_run_launched_over_graphql_materializes_the_job_with_every_check_passing(
    completed_run: CompletedRun,
):
    assert set(MAIN_ASSETS) <= completed_run.job_assets
    materialized = {"/".join(e["assetKey"]["path"]) for e in completed_run.events
                    if e["__typename"] == "MaterializationEvent"}
    assert materialized == completed_run.job_assets
    checks = {("/".join(e["evaluation"]["assetKey"]["path"]), e["evaluation"]["checkName"]):
              e["evaluation"] for e in completed_run.events
              if e["__typename"] == "AssetCheckEvaluationEvent"}
    assert {("backtest_reference", "engine_parity"), ("backtest_engine", "ledger_identities"),
            ("backtest_reference", "ledger_identities")} <= set(checks)
    failed = {key: check["description"] for key, check in checks.items() if not check["success"]}
    assert not failed


class _Text(HTMLParser):
    """The non-blank text nodes of a page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data.strip())


def graph_nodes(html: str) -> dict[str, list[str]]:
    """Each asset node of the rendered graph: its name → the texts of its rows."""
    parser = _Text()
    parser.feed(html)
    texts = parser.texts
    starts = [i for i in range(len(texts) - 1) if texts[i + 1] == "Latest event"]
    ends = [*starts[1:], len(texts)]
    return {texts[start]: texts[start + 1:end] for start, end in zip(starts, ends, strict=True)}


def render(chromium: str, url: str, folder: Path, budget_ms: int) -> tuple[str, str]:
    """Chromium's DOM dump of `url` (and a screenshot in `folder`); its stderr on failure."""
    profile = folder / f"profile_{budget_ms}"
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--window-size={WINDOW}", f"--virtual-time-budget={budget_ms}",
               f"--screenshot={folder / 'graph.png'}", "--dump-dom", url]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=default_signals)
    try:
        html, errors = process.communicate(timeout=budget_ms / 1000 + 60)
    except subprocess.TimeoutExpired:
        stop_group(process, 5)
        html, errors = process.communicate()
    return html, errors


def test_the_asset_graph_page_shows_every_main_asset_materialized(
    server: Server, completed_run: CompletedRun, tmp_path: Path,
):
    chromium = chromium_path()
    assert server.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    main_groups = sorted(completed_run.job_groups - {"peers"})  # peers stay folded: room
    expanded = ",".join(f"global@global:{group}" for group in main_groups)
    url = f"{server.url}/asset-groups?{urllib.parse.urlencode({'expanded': expanded})}"
    nodes, errors = {}, ""
    for budget_ms in (20_000, 40_000, 80_000):
        html, errors = render(chromium, url, tmp_path, budget_ms)
        nodes = graph_nodes(html)
        if all("Materialized" in nodes.get(name, ()) for name in MAIN_ASSETS):
            break
    where = f"(screenshot: {tmp_path / 'graph.png'})"
    assert set(MAIN_ASSETS) <= set(nodes), (
        f"asset nodes missing from {url} {where}; found {sorted(nodes)}\n{errors[-2000:]}")
    for name in MAIN_ASSETS:
        assert "Materialized" in nodes[name], f"{name} not shown materialized {where}"
    for name in BACKTESTS:
        passed = [t for t in nodes[name] if re.fullmatch(r"(\d+) / \1 Passed", t)]
        assert passed, f"{name} does not show all checks passed: {nodes[name]} {where}"
