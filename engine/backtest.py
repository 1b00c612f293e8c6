"""`run_backtest`: prices and target weights in, validated result tables out."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engine.core.config import BacktestConfig
from engine.core.loop import simulate
from engine.core.strategy import OrderTable, Strategy, TargetWeights
from engine.data.loading import load_market, load_weights
from engine.data.market import Market
from engine.memory import keep_freed_memory
from engine.results.tables import BacktestResult

Source = str | Path | pl.DataFrame
Prices = Source | Market  # a Market built once (read-only) serves many runs unchanged


def run_backtest(
    prices: Prices, weights: Source, config: BacktestConfig | None = None
) -> BacktestResult:
    """Backtest target weights on prices; both are frames or Parquet/CSV paths (prices may
    also be a `Market` built from loaded prices, validated once for many runs).

    `prices` has `timestamp, asset, open, high, low, close, volume`; `weights` has
    `timestamp, asset, weight`, each timestamp's rows being a decision at its close.
    Bad input raises `engine.errors.InputError` with a one-line message. Each input is
    validated once.
    """
    config = config or BacktestConfig()
    market = market_of(prices)
    return run_weights(market, valid_weights(weights, market, config), config)


def valid_weights(weights: Source, market: Market, config: BacktestConfig) -> pl.DataFrame:
    """`weights` validated against `market` under `config`'s short and leverage settings."""
    return load_weights(
        weights, market, allow_short=config.allow_short, allow_leverage=config.allow_leverage
    )


def run_weights(market: Market, weights: pl.DataFrame, config: BacktestConfig
                ) -> BacktestResult:
    """Run weights already validated against `market` (`valid_weights`): a sweep validates
    each strategy's weights once for all its execution settings."""
    return _run(market, TargetWeights(weights), config)


def run_orders(
    prices: Prices, orders: Source, config: BacktestConfig | None = None
) -> BacktestResult:
    """Backtest an order table on prices: each row an order decided at its timestamp's
    close (`timestamp, asset, type, quantity, limit_price, stop_price, trail`, optional
    `trail_mode, valid_until, group, id, parent`; docs/semantics.md). Bad input raises
    `engine.errors.InputError` with a one-line message. The table is read and checked a
    batch of rows at a time, straight into the loop's rows (`OrderTable.read`)."""
    config = config or BacktestConfig()
    market = market_of(prices)
    return _run(market, OrderTable.read(orders, market), config)


def run_strategy(
    prices: Prices, strategy: Strategy, config: BacktestConfig | None = None
) -> BacktestResult:
    """Run any `Strategy` (a batch callback per timestamp) on prices."""
    return _run(market_of(prices), strategy, config or BacktestConfig())


def market_of(prices: Prices) -> Market:
    """The market of `prices`: loaded, validated and pivoted, or a `Market` as it is."""
    keep_freed_memory()  # every entry point starts here or at `_run`
    return prices if isinstance(prices, Market) else load_market(prices)


def _run(market: Market, strategy: Strategy, config: BacktestConfig) -> BacktestResult:
    keep_freed_memory()
    return BacktestResult(simulate(market, strategy, config))
