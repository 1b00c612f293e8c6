"""The deployment instance on a real PostgreSQL server, end to end.

`deploy/postgres.py` (what `make postgres` runs) starts a server on a free port with its
data in a temporary folder; `deploy/dagster.yaml` is the instance config (credentials from
the environment); the UI server `make ui-postgres` runs serves the code location over it.
Through that server the test runs `nightly_regression`, a two-partition backfill of
`parameter_sweep` (launched by the daemon, each run on the Dask local cluster the job
starts by default), turns the nightly schedule on, and makes a run fail. Then it reads it
all back from Postgres: the runs, their materializations, the schedule's state, the
alert the failure sensor sent, and the rows in the server's own tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from assets.sweeps import SWEEP_ASSET_NAMES
from tests.dagster_server import ROOT, Server, free_port, ui_server
from tests.test_ui_end_to_end import IN_PROCESS

pytestmark = [pytest.mark.postgres, pytest.mark.dask, pytest.mark.slow]

START_SCHEDULE = """mutation ($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) { __typename
  ... on ScheduleStateResult { scheduleState { status } }
  ... on PythonError { message } ... on Error { message } } }"""
GRID = {"resources": {"sweep_grid": {"config": {
    "top_k": [3, 6], "every": [5, 21], "fees_bp": [0.0, 25.0], "fills": ["next_open"]}}}}
ALERT_SECONDS = 180


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A running server on a free port; the TRADEGAP_PG_* settings that reach it."""
    folder = Path(tempfile.mkdtemp(prefix="tradegap-pg-"))  # in /tmp: postgres can reach it
    port = free_port()
    script = [sys.executable, str(ROOT / "deploy" / "postgres.py")]
    started = subprocess.run([*script, "start", "--dir", str(folder), "--port", str(port)],
                             capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    env = subprocess.run([*script, "env", "--port", str(port)], capture_output=True,
                         text=True, check=True).stdout
    try:
        yield dict(line.removeprefix("export ").split("=", 1) for line in env.splitlines())
    finally:
        subprocess.run([*script, "stop", "--dir", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory, postgres) -> Path:
    folder = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "deploy" / "dagster.yaml", folder / "dagster.yaml")
    return folder


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def deployment(home, postgres, artifacts) -> Iterator[dict]:
    """Everything launched through the UI server on Postgres, then the server stopped."""
    environment = {**postgres, "TRADEGAP_ARTIFACTS": str(artifacts)}
    with ui_server(home, environment) as server:
        nightly, _ = server.run_job("nightly_regression", IN_PROCESS)
        sweep, _ = server.run_job("parameter_sweep", sweep_config())
        schedule = server.graphql(START_SCHEDULE, selector={
            **server.repository("nightly_regression"),
            "scheduleName": "nightly_regression_schedule"})["startSchedule"]
        assert schedule["__typename"] == "ScheduleStateResult", schedule
        bad = artifacts / "bad_prices.csv"
        bad.write_text("timestamp,asset,open,high,low,close,volume\n"
                       "2024-01-02,A,10,9,8,10,100\n")
        failing = server.launch("nightly_regression", {**IN_PROCESS, "ops": {
            **IN_PROCESS["ops"], "market_data": {"config": {"prices_paths": [str(bad)]}}}})
        assert server.wait_for_run(failing) == "FAILURE"
        alert = wait_for_alert(artifacts / "alerts" / "alerts.jsonl", failing, server)
    yield {"nightly": nightly, "sweep": sweep, "failing": failing, "alert": alert,
           "environment": environment}


def sweep_config() -> dict:
    """The sweep job's own run config (a local Dask cluster) with a small grid."""
    from pipelines.definitions import defs

    return {**defs.resolve_job_def("parameter_sweep").run_config, **GRID}


def wait_for_alert(path: Path, run_id: str, server: Server) -> dict:
    """The alert the run-failure sensor (run by the daemon) wrote for `run_id`."""
    deadline = time.monotonic() + ALERT_SECONDS
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                alert = json.loads(line)
                if alert.get("run_id") == run_id and alert["kind"] == "run_failure":
                    return alert
        time.sleep(2)
    pytest.fail(f"no alert for run {run_id} after {ALERT_SECONDS}s:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def instance(deployment, home) -> Iterator[DagsterInstance]:
    """The instance read back from Postgres by a fresh process-local client."""
    previous = {name: os.environ.get(name) for name in deployment["environment"]}
    os.environ.update(deployment["environment"])
    try:
        with DagsterInstance.from_config(str(home)) as postgres_instance:
            yield postgres_instance
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_the_instance_keeps_runs_events_and_schedules_in_postgres(instance):
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)


def test_the_nightly_run_and_its_materializations_are_read_back(deployment, instance):
    run = instance.get_run_by_id(deployment["nightly"])
    assert (run.job_name, run.status) == ("nightly_regression", DagsterRunStatus.SUCCESS)
    for name in ("market_data", "backtest_engine", "backtest_reference",
                 "performance_summary", "trade_gap"):
        records = instance.fetch_materializations(AssetKey(name), limit=5).records
        assert [record.run_id for record in records] == [deployment["nightly"]], name


def test_the_sweep_ran_its_chunks_on_dask(deployment, instance):
    run = instance.get_run_by_id(deployment["sweep"])
    assert (run.job_name, run.status) == ("parameter_sweep", DagsterRunStatus.SUCCESS)
    assert "local" in run.run_config["execution"]["config"]["cluster"]
    events = [entry.dagster_event for entry in instance.all_logs(run.run_id)
              if entry.dagster_event is not None]
    [run_worker] = {event.pid for event in events
                    if event.event_type == DagsterEventType.RUN_START}
    steps = [event for event in events if event.event_type == DagsterEventType.STEP_SUCCESS]
    assert {step.step_key for step in steps} == {*SWEEP_ASSET_NAMES, "sweep_summary"}
    # the steps in the two processes of the Dask cluster, neither the run's own process
    # (in-process) nor one process per step (multiprocess)
    assert len({event.pid for event in steps}) <= 2
    assert run_worker not in {event.pid for event in steps}
    for name in SWEEP_ASSET_NAMES:
        records = instance.fetch_materializations(AssetKey(name), limit=10).records
        assert [record.run_id for record in records] == [deployment["sweep"]], name


def test_the_schedule_state_is_stored(instance):
    states = {state.name: state.status.value for state in instance.all_instigator_state()}
    assert states["nightly_regression_schedule"] == "RUNNING"


def test_the_failed_run_was_alerted_by_the_daemon(deployment, instance):
    alert = deployment["alert"]
    assert instance.get_run_by_id(deployment["failing"]).status == DagsterRunStatus.FAILURE
    assert (alert["job"], alert["failed_steps"]) == ("nightly_regression", "market_data")
    assert "bad_prices.csv: column 'high': high below open or close" in alert["error"]


def test_the_rows_are_in_the_servers_own_tables(deployment, postgres):
    query = ("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM event_logs "
             "WHERE dagster_event_type = 'ASSET_MATERIALIZATION')")
    done = subprocess.run(
        ["psql", "-h", postgres["TRADEGAP_PG_HOST"], "-p", postgres["TRADEGAP_PG_PORT"],
         "-U", postgres["TRADEGAP_PG_USER"], "-d", postgres["TRADEGAP_PG_DB"], "-tAc", query],
        env={**os.environ, "PGPASSWORD": postgres["TRADEGAP_PG_PASSWORD"]},
        capture_output=True, text=True, check=True)
    runs, materializations = (int(value) for value in done.stdout.strip().split("|"))
    assert runs >= 3  # nightly, the sweep, the failing run
    assert materializations >= 12 + len(SWEEP_ASSET_NAMES) + 1
