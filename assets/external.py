"""Your own engine's fill log as a backtest, compared with the reference every night.

Configure `fills_path` (a Parquet or CSV file of `timestamp, asset, quantity, price, fee`,
run on the same prices and weights); `trade_gap` then explains every difference between it
and `backtest_reference`, with the report, the plot and the `external_log_explained` check.
Without a path the asset is an empty backtest and the comparison is skipped.
"""

import polars as pl
from dagster import AssetExecutionContext, Config, MetadataValue, asset

from assets.backtests import finish
from assets.groups import BACKTEST
from assets.resources import ExecutionSettings
from assets.types import BacktestTables
from engine.data.loading import FILL_COLUMNS, load_fills
from engine.data.market import Market
from engine.results.derive import derive_tables, equity_from_fills


class ExternalLogConfig(Config):
    """Where your engine's fills are (empty: none is compared)."""

    fills_path: str = ""


@asset(group_name=BACKTEST, dagster_type=BacktestTables)
def backtest_external(
    context: AssetExecutionContext, config: ExternalLogConfig, market_data: pl.DataFrame,
    target_weights: pl.DataFrame, settings: ExecutionSettings,
) -> dict[str, pl.DataFrame]:
    """Your own engine's fill log (`fills_path` in run config), as backtest tables."""
    backtest = settings.config()
    if config.fills_path:
        fills = load_fills(config.fills_path, market_data).select(FILL_COLUMNS)
    else:
        fills = pl.DataFrame(schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                                     "quantity": pl.Float64, "price": pl.Float64,
                                     "fee": pl.Float64})
    fills = fills.with_columns(order_id=pl.int_range(pl.len(), dtype=pl.Int64))
    market = Market.from_bars(market_data)
    tables = derive_tables(fills, equity_from_fills(fills, market, backtest.initial_cash),
                           market, backtest.initial_cash,
                           periods_per_year=backtest.periods_per_year)
    context.add_output_metadata({"source": MetadataValue.text(
        config.fills_path or "not configured (set fills_path in the run config)")})
    return finish(context, tables, (market_data, target_weights, fills), backtest)
