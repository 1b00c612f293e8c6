"""The data stage: daily bars from the embedded generator or the user's files."""

import polars as pl
from dagster import AssetExecutionContext, Config, MetadataValue, asset
from pydantic import Field

from assets.groups import DATA
from assets.types import BarsFrame
from engine.data.loading import load_prices
from engine.data.synthetic import generate_market


class MarketDataConfig(Config):
    """Where bars come from: `prices_paths` (Parquet/CSV files), else the generator.

    `repair_ohlc` accepts bars whose high or low does not cover the open and close by widening
    them; by default such bars fail the asset.
    """

    prices_paths: list[str] = Field(default_factory=list)
    repair_ohlc: bool = False
    n_assets: int = 500
    n_days: int = 2520
    seed: int = 0


def read_bars(paths: list[str], repair_ohlc: bool = False) -> pl.DataFrame:
    """Bars from several files, each validated (errors name the file), then as a whole."""
    parts = [load_prices(path, repair_ohlc=repair_ohlc) for path in paths]
    combined = pl.concat(parts).sort("timestamp", "asset")
    return load_prices(combined, name=" + ".join(paths))


@asset(group_name=DATA, dagster_type=BarsFrame)
def market_data(context: AssetExecutionContext, config: MarketDataConfig) -> pl.DataFrame:
    """Daily OHLCV bars of every asset (generated factor-model market by default)."""
    if config.prices_paths:
        bars = read_bars(config.prices_paths, config.repair_ohlc)
        source = ", ".join(config.prices_paths)
    else:
        bars = generate_market(n_assets=config.n_assets, n_days=config.n_days, seed=config.seed)
        source = f"generated: {config.n_assets} assets × {config.n_days} days, seed {config.seed}"
    context.add_output_metadata({
        "source": MetadataValue.text(source),
        "assets": MetadataValue.int(bars["asset"].n_unique()),
        "bars": MetadataValue.int(bars.height),
        "first": MetadataValue.text(str(bars["timestamp"].min())),
        "last": MetadataValue.text(str(bars["timestamp"].max())),
    })
    return bars
