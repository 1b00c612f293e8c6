"""The sweep on Dask: `parameter_sweep`'s chunks run through a real `distributed` cluster.

A `LocalCluster` of two worker processes is started here and named to the job by address,
as a remote scheduler is (`cluster.existing.address`); one more run goes to the job's own
default, a local cluster the executor creates. Runs go through a persistent
instance (the Dask executor needs one) and the artifact folder the workers inherit
(`TRADEGAP_ARTIFACTS`).
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance, execute_job, materialize
from dagster._core.definitions.reconstruct import ReconstructableRepository
from distributed import Client, LocalCluster

from assets.resources import ARTIFACTS_ENV
from assets.sweeps import SWEEP_ASSET_NAMES
from pipelines.executors import existing_cluster
from tests.test_pipeline import SMALL

pytestmark = [pytest.mark.dask, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = {"ops": {name: SMALL["ops"][name] for name in ("market_data", "signals")}}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """Upstream assets materialized; the folder exported for the Dask workers."""
    from pipelines.definitions import ASSETS, resources

    base = tmp_path_factory.mktemp("artifacts")
    result = materialize(ASSETS, selection=AssetSelection.assets(
        "market_data", "features", "signals"), resources=resources(base), run_config=UPSTREAM,
        instance=DagsterInstance.ephemeral())
    assert result.success
    previous = os.environ.get(ARTIFACTS_ENV)
    os.environ[ARTIFACTS_ENV] = str(base)
    yield base
    if previous is None:
        os.environ.pop(ARTIFACTS_ENV)
    else:
        os.environ[ARTIFACTS_ENV] = previous


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with DagsterInstance.local_temp(str(home)) as persistent:
        yield persistent


@pytest.fixture(scope="module")
def cluster(artifacts):
    """Two single-threaded worker processes, started after the artifact folder is exported."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as running:
        yield running


def sweep_job():
    return ReconstructableRepository.for_module(
        "pipelines.definitions", "defs", str(ROOT)).get_reconstructable_job("parameter_sweep")


GRID = {"resources": {"sweep_grid": {"config": {
    "top_k": [3, 6], "every": [5, 21], "fees_bp": [0.0, 25.0], "fills": ["next_open"]}}}}
STEPS = {*SWEEP_ASSET_NAMES, "sweep_summary"}


def run_sweep_job(instance, run_config):
    return execute_job(sweep_job(), instance=instance, run_config=run_config,
                       raise_on_error=False)


def test_the_sweep_chunks_run_on_the_workers_of_a_dask_cluster(artifacts, instance, cluster):
    with Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
    result = run_sweep_job(instance, {**GRID, "execution": {"config": existing_cluster(
        cluster.scheduler_address)}})
    assert result.success, [e.message for e in result.all_events
                            if e.event_type_value == "STEP_FAILURE"]
    steps = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    assert {e.step_key for e in steps} == STEPS  # one step per chunk and the summary
    assert {e.pid for e in steps} <= worker_pids  # executed by the Dask workers
    assert os.getpid() not in {e.pid for e in steps}
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()
                    for m in [m.materialization]}
    assert materialized == STEPS
    with Client(cluster) as client:
        ran = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert {f"parameter_sweep.{name}" for name in SWEEP_ASSET_NAMES} <= set(ran)
    summary = pl.read_parquet(artifacts / "sweep_summary.parquet")
    assert summary.height == 8 and summary["n_fills"].min() > 0


def test_the_sweep_job_defaults_to_a_local_cluster_it_starts(artifacts, instance):
    from pipelines.definitions import defs

    default = defs.resolve_job_def("parameter_sweep").run_config  # what a launch starts from
    assert default["execution"]["config"]["cluster"]["local"]["n_workers"] == 2
    result = run_sweep_job(instance, {**default, **GRID})
    assert result.success
    steps = [e for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    assert {e.step_key for e in steps} == STEPS
