"""Jobs and schedules: the nightly regression over the whole graph, and the sweep."""

from __future__ import annotations

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

from assets.groups import BACKTEST, COMPARE, DATA, PEERS, REPORT, SIGNALS, SWEEP

nightly_regression = define_asset_job(
    "nightly_regression",
    selection=AssetSelection.groups(DATA, SIGNALS, BACKTEST, REPORT, COMPARE, PEERS),
    description="Materialize data → signals → backtests (engine, reference and installed "
    "peers) → reports and trade gaps, with every check: ledger identities, engine-reference "
    "parity (blocking), peer parity and the accepted baselines.",
)

parameter_sweep = define_asset_job(
    "parameter_sweep",
    selection=AssetSelection.assets("sweep_backtest"),
    description="One engine backtest per sweep partition; run as a backfill.",
)

sweep_report = define_asset_job(
    "sweep_report",
    selection=AssetSelection.groups(SWEEP) - AssetSelection.assets("sweep_backtest"),
    description="Compare every materialized sweep partition.",
)

nightly_schedule = ScheduleDefinition(
    name="nightly_regression_schedule",
    job=nightly_regression,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
)
