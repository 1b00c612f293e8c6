"""Jobs and schedules: the nightly regression over the whole graph, and the sweep."""

from __future__ import annotations

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

from assets.groups import BACKTEST, COMPARE, DATA, PEERS, REPORT, SIGNALS
from assets.sweeps import SWEEP_ASSET_NAMES
from pipelines.executors import dask_config, dask_executor
from pipelines.freshness import NIGHTLY_CRON

SWEEP_TAG = "tradegap/sweep"
# Runs that rewrite the shared artifacts (market data, signals, backtests, reports): the
# instance runs one at a time (deploy/*.yaml), so no run reads another's half-written inputs.
ARTIFACTS_TAG = "tradegap/artifacts"

nightly_regression = define_asset_job(
    "nightly_regression",
    selection=AssetSelection.groups(DATA, SIGNALS, BACKTEST, REPORT, COMPARE, PEERS),
    tags={ARTIFACTS_TAG: "main"},
    description="Materialize data → signals → backtests (engine, reference and installed "
    "peers) → reports and trade gaps, with every check: ledger identities, engine-reference "
    "parity (blocking), peer parity and the accepted baselines.",
)

parameter_sweep = define_asset_job(
    "parameter_sweep",
    selection=AssetSelection.assets(*SWEEP_ASSET_NAMES, "sweep_summary"),
    executor_def=dask_executor,
    config={"execution": {"config": dask_config()}},
    tags={SWEEP_TAG: "grid"},
    description="The whole grid (the sweep_grid resource: top-K × rebalance interval × fee × "
    "fill timing) in chunks, each chunk one step running its points in one call, spread over "
    "a Dask cluster; then the summary of every point.",
)

sweep_report = define_asset_job(
    "sweep_report",
    selection=AssetSelection.assets("sweep_summary"),
    tags={ARTIFACTS_TAG: "main"},
    description="Rank every point of the materialized sweep chunks again.",
)

nightly_schedule = ScheduleDefinition(
    name="nightly_regression_schedule",
    job=nightly_regression,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
)
