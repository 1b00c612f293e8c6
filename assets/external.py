"""Your own engine's fill log as a backtest, compared with the reference every night.

Configure `fills_path`: the log as your engine or broker wrote it (vectorbt, backtrader,
zipline, nautilus_trader, LEAN, Interactive Brokers Flex, or ours: `timestamp, asset,
quantity, price, fee`), run on the same prices and weights. The format is detected from
its columns unless `format` names it; `columns` reads any other table column by column,
`assets_path` maps its symbols to the prices' assets (docs/explain.md). `trade_gap` then
explains every difference between it and `backtest_reference`, with the report, the plot
and the `external_log_explained` check. Without a path the asset is an empty backtest and
the comparison is skipped.
"""

import polars as pl
from dagster import AssetExecutionContext, Config, MetadataValue, asset

from assets.backtests import finish
from assets.groups import BACKTEST
from assets.resources import ExecutionSettings
from assets.types import BacktestTables
from engine.data.loading import FILL_COLUMNS
from engine.data.market import Market
from engine.logs import LogOptions, read_log
from engine.logs.options import PRICE_TOLERANCE, parse_columns
from engine.results.derive import derive_tables, equity_from_fills


class ExternalLogConfig(Config):
    """Where your engine's fills are (empty: none is compared) and how to read them."""

    fills_path: str = ""
    format: str = ""  # a name of engine.logs.FORMATS; empty: detected from the columns
    columns: str = ""  # "key=Name,...": timestamp, asset, quantity, side, price, fee, ...
    assets_path: str = ""  # CSV: the log's symbol, the prices' asset
    partials: str = "keep"  # or "sum": one order's fills on one bar as one
    price_tolerance: float = PRICE_TOLERANCE

    def options(self) -> LogOptions:
        return LogOptions(format=self.format or None, columns=parse_columns(self.columns),
                          assets=self.assets_path or None, partials=self.partials,
                          price_tolerance=self.price_tolerance)


@asset(group_name=BACKTEST, dagster_type=BacktestTables)
def backtest_external(
    context: AssetExecutionContext, config: ExternalLogConfig, market_data: pl.DataFrame,
    target_weights: pl.DataFrame, settings: ExecutionSettings,
) -> dict[str, pl.DataFrame]:
    """Your own engine's fill log (`fills_path` in run config), as backtest tables."""
    backtest = settings.config()
    read_as = "not configured (set fills_path in the run config)"
    if config.fills_path:
        native = read_log(config.fills_path, market_data, config.options())
        fills = native.fills.select(FILL_COLUMNS)
        read_as = f"{config.fills_path}, read as {native.format.title}"
        for note in native.notes:
            context.log.info(note)
    else:
        fills = pl.DataFrame(schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                                     "quantity": pl.Float64, "price": pl.Float64,
                                     "fee": pl.Float64})
    fills = fills.with_columns(order_id=pl.int_range(pl.len(), dtype=pl.Int64))
    market = Market.from_bars(market_data)
    tables = derive_tables(fills, equity_from_fills(fills, market, backtest.initial_cash),
                           market, backtest.initial_cash,
                           periods_per_year=backtest.periods_per_year)
    context.add_output_metadata({"source": MetadataValue.text(read_as)})
    return finish(context, tables, (market_data, target_weights, fills), backtest)
