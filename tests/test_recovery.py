"""A database outage in the middle of a run: the run is marked failed, its pool slot freed,
the failure alerted, and the rerun succeeds with nothing lost.

The instance is `deploy/dagster.yaml` as shipped, on the project's Postgres
(`deploy/postgres.py`) on a free port. The daemon runs as a deployment runs it
(`dagster-daemon run`); the nightly job runs through `dagster job execute`, which no
launcher or code location records. While the job holds the one `peer_engines` slot (a
peer backtest), Postgres is stopped; the job's process gives up on the database and exits,
leaving the run STARTED with the slot taken. Postgres comes back; the daemon must then end
the run, free the slot and send the alert, all by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.launcher import WorkerStatus

from pipelines.launcher import worker_status
from pipelines.ui import default_signals, session_members
from tests.dagster_server import ROOT, free_port
from tests.test_ui_end_to_end import IN_PROCESS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POOL = "peer_engines"
BIN = Path(sys.executable).parent
NIGHTLY = ("market_data", "signals", "target_weights", "backtest_engine", "backtest_reference",
           "backtest_vectorbt", "backtest_backtrader", "backtest_zipline",
           "performance_summary", "trade_gap")
CLAIM_SECONDS = 300
WORKER_EXIT_SECONDS = 300
RECOVERY_SECONDS = 240
RERUN_SECONDS = 600
SENSOR_READY_SECONDS = 240


def postgres(action: str, folder: Path, port: int | None = None) -> str:
    command = [sys.executable, str(ROOT / "deploy" / "postgres.py"), action, "--dir",
               str(folder)] + ([] if port is None else ["--port", str(port)])
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[dict]:
    """A Postgres server on a free port, DAGSTER_HOME with deploy/dagster.yaml, the daemon."""
    folder = Path(tempfile.mkdtemp(prefix="tradegap-pg-"))  # in /tmp: postgres can reach it
    port = free_port()
    postgres("start", folder, port)
    exports = subprocess.run([sys.executable, str(ROOT / "deploy" / "postgres.py"), "env",
                              "--port", str(port)], capture_output=True, text=True,
                             check=True).stdout
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    artifacts = tmp_path_factory.mktemp("artifacts")
    config = home / "run.yaml"
    config.write_text(yaml.safe_dump(IN_PROCESS))
    environment = {**os.environ,
                   **dict(line.removeprefix("export ").split("=", 1)
                          for line in exports.splitlines()),
                   "DAGSTER_HOME": str(home), "TRADEGAP_ARTIFACTS": str(artifacts),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                               os.environ.get("PYTHONPATH")]))}
    log = (home / "daemon.log").open("wb")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-m", "pipelines.definitions"],
                              cwd=ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True,
                              preexec_fn=default_signals)
    found = {"folder": folder, "port": port, "home": home, "artifacts": artifacts,
             "config": config, "environment": environment, "daemon": daemon}
    try:
        with instance_for(found) as instance:
            # a run-status sensor starts from the events after its first tick, as in a
            # deployment that has been running for a while
            wait_for("the first tick of run_failure_alert", SENSOR_READY_SECONDS,
                     lambda: sensor_started(instance, "run_failure_alert"), found, every=1)
        yield found
    finally:
        for pid in session_members(daemon.pid):
            os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=30)
        for pid in session_members(daemon.pid):
            os.kill(pid, signal.SIGKILL)
        daemon.wait()
        log.close()
        postgres("stop", folder)
        shutil.rmtree(folder, ignore_errors=True)


def sensor_started(instance: DagsterInstance, name: str) -> bool:
    return any(state.name == name and state.instigator_data is not None
               and getattr(state.instigator_data, "cursor", None)
               for state in instance.all_instigator_state())


def instance_for(deployment: dict) -> DagsterInstance:
    """A client of the deployment's instance in this process."""
    for name, value in deployment["environment"].items():
        if name.startswith("TRADEGAP_PG_"):
            os.environ[name] = value
    return DagsterInstance.from_config(str(deployment["home"]))


def execute(deployment: dict, log_name: str) -> subprocess.Popen:
    """`dagster job execute` of the nightly job with the small in-process config."""
    log = (deployment["home"] / log_name).open("wb")
    return subprocess.Popen(
        [str(BIN / "dagster"), "job", "execute", "-m", "pipelines.definitions", "-j",
         "nightly_regression", "-c", str(deployment["config"])],
        cwd=ROOT, env=deployment["environment"], stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=default_signals)


def slot_holders(instance: DagsterInstance) -> list[tuple[str, str]]:
    """(run id, step) for every claimed slot of the peer pool."""
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return [(slot.run_id, slot.step_key) for slot in info.claimed_slots]


def wait_for(what: str, seconds: float, probe, deployment: dict, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    tail = (deployment["home"] / "daemon.log").read_text(errors="replace").splitlines()[-30:]
    pytest.fail(f"{what} not seen after {seconds}s; daemon log:\n" + "\n".join(tail))


def alerts(deployment: dict) -> list[dict]:
    path = deployment["artifacts"] / "alerts" / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def outage(deployment) -> dict:
    """The nightly job, with Postgres stopped while it holds the peer slot, then restarted."""
    job = execute(deployment, "outage_run.log")
    with instance_for(deployment) as instance:
        holders = wait_for(f"a claimed {POOL} slot", CLAIM_SECONDS,
                           lambda: slot_holders(instance), deployment, every=0.2)
        [(run_id, step)] = holders
    postgres("stop", deployment["folder"])
    try:
        code = job.wait(timeout=WORKER_EXIT_SECONDS)
    finally:
        postgres("start", deployment["folder"], deployment["port"])
    with instance_for(deployment) as instance:
        stuck = (instance.get_run_by_id(run_id).status, slot_holders(instance))
    return {"run_id": run_id, "step": step, "exit_code": code, "stuck": stuck}


def test_the_run_process_died_with_the_database_holding_the_slot(outage):
    assert outage["exit_code"] != 0
    status, holders = outage["stuck"]
    assert outage["step"].startswith("backtest_")
    assert (outage["run_id"], outage["step"]) in holders
    assert status in (DagsterRunStatus.STARTED, DagsterRunStatus.FAILURE)


@pytest.fixture(scope="module")
def recovered(deployment, outage) -> dict:
    """What the daemon did by itself once Postgres was back."""
    run_id = outage["run_id"]
    with instance_for(deployment) as instance:
        wait_for("the run marked failed", RECOVERY_SECONDS,
                 lambda: instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE,
                 deployment, every=2)
        wait_for("the slot freed", RECOVERY_SECONDS,
                 lambda: not slot_holders(instance), deployment, every=2)
        run = instance.get_run_by_id(run_id)
    alert = wait_for("the alert", RECOVERY_SECONDS, lambda: [
        entry for entry in alerts(deployment)
        if entry.get("run_id") == run_id and entry["kind"] == "run_failure"], deployment,
        every=2)
    return {"run": run, "alerts": alert}


def test_the_daemon_marks_the_dead_run_failed_frees_its_slot_and_alerts(outage, recovered):
    [alert] = recovered["alerts"]
    assert recovered["run"].status == DagsterRunStatus.FAILURE
    assert alert["job"] == "nightly_regression"
    assert "run worker process" in alert["error"] and "is gone" in alert["error"]


def test_the_rerun_succeeds_and_nothing_is_lost(deployment, outage, recovered):
    failed_run = outage["run_id"]
    with instance_for(deployment) as instance:
        before = {name: [r.run_id for r in instance.fetch_materializations(
            AssetKey(name), limit=10).records] for name in NIGHTLY}
    rerun = execute(deployment, "rerun.log")
    assert rerun.wait(timeout=RERUN_SECONDS) == 0, (
        deployment["home"] / "rerun.log").read_text(errors="replace")[-3000:]
    with instance_for(deployment) as instance:
        runs = instance.get_runs(RunsFilter(job_name="nightly_regression"))
        by_status = {run.run_id: run.status for run in runs}
        [rerun_id] = [run_id for run_id in by_status if run_id != failed_run]
        assert by_status == {failed_run: DagsterRunStatus.FAILURE,
                             rerun_id: DagsterRunStatus.SUCCESS}
        for name in NIGHTLY:
            records = instance.fetch_materializations(AssetKey(name), limit=10).records
            # the rerun's materialization, on top of everything the failed run recorded
            assert [r.run_id for r in records] == [rerun_id, *before[name]], name
            stored = Path(records[0].asset_materialization.metadata["path"].value)
            assert stored.exists(), stored
        assert not slot_holders(instance)
    assert before["market_data"] == [failed_run]  # written before the outage, kept
    assert [a["run_id"] for a in alerts(deployment)] == [failed_run]


def test_a_worker_counts_as_alive_only_while_its_own_process_runs():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started_at = time.time()
        assert worker_status(child.pid, started_at).status == WorkerStatus.RUNNING
        # a process that started after the run did is another one with a reused id
        assert worker_status(child.pid, started_at - 3600).status == WorkerStatus.FAILED
    finally:
        child.kill()
        child.wait()
    dead = worker_status(child.pid, started_at)
    assert dead.status == WorkerStatus.FAILED
    assert f"run worker process {child.pid} is gone" in dead.msg
