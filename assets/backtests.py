"""The backtest stage: our engine and the independent reference on the same inputs."""

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, asset

from assets.groups import BACKTEST
from assets.resources import ExecutionSettings, fingerprint
from assets.types import BacktestTables
from engine import BacktestConfig, BacktestResult, run_backtest
from engine.data.market import Market
from engine.reference import run_reference
from engine.results.derive import derive_tables

HEADLINE = ("final_equity", "total_return", "cagr", "sharpe", "max_drawdown", "turnover",
            "n_fills", "n_rejected")


def finish(
    context: AssetExecutionContext, tables: dict[str, pl.DataFrame], inputs: tuple,
    config: BacktestConfig,
) -> dict[str, pl.DataFrame]:
    """Attach the input fingerprint and headline metrics (as metadata) to a backtest."""
    digest = fingerprint(*inputs, settings=config.to_dict())
    metrics = tables["metrics"].row(0, named=True)
    context.add_output_metadata({
        **{name: MetadataValue.float(float(metrics[name])) for name in HEADLINE},
        "fingerprint": MetadataValue.text(digest),
    })
    return {**tables, "fingerprint": pl.DataFrame({"fingerprint": [digest]})}


def engine_tables(result: BacktestResult) -> dict[str, pl.DataFrame]:
    """An engine run's tables plus its metrics as a one-row table (the artifact's shape)."""
    return {**result.tables(), "metrics": pl.DataFrame([result.metrics])}


@asset(group_name=BACKTEST, dagster_type=BacktestTables)
def backtest_engine(
    context: AssetExecutionContext, market_data: pl.DataFrame, target_weights: pl.DataFrame,
    settings: ExecutionSettings,
) -> dict[str, pl.DataFrame]:
    """The engine's fills, orders, positions, equity and trades for the target weights."""
    result = run_backtest(market_data, target_weights, settings.config())
    return finish(context, engine_tables(result), (market_data, target_weights),
                  settings.config())


@asset(group_name=BACKTEST, dagster_type=BacktestTables)
def backtest_reference(
    context: AssetExecutionContext, market_data: pl.DataFrame, target_weights: pl.DataFrame,
    settings: ExecutionSettings,
) -> dict[str, pl.DataFrame]:
    """The independent plain-loop reference on the same data, weights and settings."""
    config = settings.config()
    reference = run_reference(market_data, target_weights, config)
    tables = derive_tables(reference.fills, reference.equity, Market.from_bars(market_data),
                           config.initial_cash, orders=reference.orders,
                           periods_per_year=config.periods_per_year)
    return finish(context, tables, (market_data, target_weights), config)
