"""The engines that make the corpus's fill logs: real vectorbt, backtrader and zipline, the
tradegap engine, and the corpus loop. Every run is cached per process.

vectorbt runs as NOTES §1 says: `Portfolio.from_orders(size_type='targetpercent',
cash_sharing=True, call_seq='auto', price=open, min_size=0)`, weights on the row after the
decision, fees a fraction of value. B's `settings` are `(name, value, first, last)`: the
setting takes `value` on the fill rows of rebalances `first` to `last` (None: from the
first, to the last; vectorbt broadcasts its arguments per row) and A's value elsewhere.
Zero-size records (a granular buy floored to nothing) are not fills and are left out.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from engine import BacktestConfig, run_backtest
from engine.data.loading import load_prices, load_weights
from engine.data.market import Market
from engine.peers.backtrader import BacktraderResult, run_backtrader
from engine.peers.vectorbt import normalize, vectorbt_inputs
from engine.peers.zipline import run_zipline
from tests.gap_corpus import markets
from tests.gap_corpus.loop import run_loop

FILL_COLUMNS = ["timestamp", "asset", "quantity", "price", "fee"]
BASE_SETTINGS = {"fees": None, "fixed_fees": 0.0, "slippage": 0.0, "size_granularity": np.nan,
                 "update_value": False, "call_seq": "auto", "price": "open"}


def _fills(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(FILL_COLUMNS).filter(pl.col("quantity") != 0.0)


def fill_row(market: str, k: int) -> int:
    """The bar where rebalance k fills by default (the bar after its decision)."""
    return markets.tape(market).decisions(markets.weights(market))[k][0] + 1


@cache
def vectorbt(market: str, settings: tuple = ()) -> pl.DataFrame:
    """Real vectorbt on a corpus market, A's settings changed by `settings`."""
    import pandas as pd
    import vectorbt as vbt

    spec = markets.MARKETS[market]
    bars = load_prices(markets.prices(market))
    tradable = Market.from_bars(bars)
    config = BacktestConfig(initial_cash=markets.INITIAL_CASH, fees=spec.fees)
    kwargs = vectorbt_inputs(tradable, load_weights(markets.weights(market), bars), config)
    kwargs["min_size"] = 0.0
    base = {**BASE_SETTINGS, "fees": spec.fees}
    for name, value, first, last in settings:
        if name in ("update_value", "call_seq"):
            kwargs[name] = value
            continue
        rows = slice(None if first is None else fill_row(market, first),
                     None if last is None else fill_row(market, last) + 1)
        if name == "price":
            dense = tradable.open.copy()
            dense[rows] = tradable.close[rows]
        else:
            dense = np.full((tradable.n_bars, tradable.n_assets), base[name], dtype=float)
            dense[rows] = value
        kwargs[name] = pd.DataFrame(dense, index=kwargs["close"].index,
                                    columns=kwargs["close"].columns)
    portfolio = vbt.Portfolio.from_orders(**kwargs)
    return _fills(normalize(portfolio, tradable).fills)


@cache
def engine(market: str) -> pl.DataFrame:
    """The tradegap engine (default profile) with A's settings."""
    spec = markets.MARKETS[market]
    config = BacktestConfig(initial_cash=markets.INITIAL_CASH, fees=spec.fees)
    return _fills(run_backtest(markets.prices(market), markets.weights(market), config).fills)


def engine_config(market: str) -> BacktestConfig:
    return BacktestConfig(initial_cash=markets.INITIAL_CASH, fees=markets.MARKETS[market].fees)


@cache
def backtrader(market: str) -> BacktraderResult:
    """Real backtrader's own `order_target_percent` (its profile's settings, A's fees)."""
    spec = markets.MARKETS[market]
    config = BacktestConfig.for_profile("backtrader", initial_cash=markets.INITIAL_CASH,
                                        fees=spec.fees)
    return run_backtrader(markets.prices(market), markets.weights(market), config)


@cache
def zipline(market: str, zipline_costs: bool) -> pl.DataFrame:
    """Real zipline's `order_target_percent`: next close, whole shares, no cash check; A's
    fees as a per-dollar commission, or zipline's own costs (5 bp slippage, $0.001 a share,
    at most 10% of a bar's volume). The fills keep their `order_id` (an order split over
    bars shows the volume cap)."""
    spec = markets.MARKETS[market]
    config = BacktestConfig.for_profile("zipline", initial_cash=markets.INITIAL_CASH,
                                        fees=spec.fees, per_share=0.0, slippage=0.0)
    return run_zipline(markets.prices(market), markets.weights(market), config,
                       zipline_costs=zipline_costs).fills


@cache
def loop(market: str, faults: tuple = ()) -> pl.DataFrame:
    """The corpus loop on a market with A's fees and `faults` injected."""
    spec = markets.MARKETS[market]
    return run_loop(markets.prices(market), markets.weights(market), markets.INITIAL_CASH,
                    spec.fees, faults, markets.tape(market))
