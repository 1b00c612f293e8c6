"""The gap zoo: deliberately broken variants of the real engine, one module per failure.

Every module exposes `run(prices, weights, config) -> (fills, equity)` in the engine's
schemas. A variant runs `engine.run_backtest` under small `unittest.mock.patch` context
managers that replace names the loop looks up in `engine.core.loop` (its `Ledger`, `OrderBook`,
`size_orders`, `execute_batch`), so nothing leaks out of the call. `tests/test_gap_zoo.py`
checks that the trade-gap analyzer names each failure.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import polars as pl

from engine import BacktestConfig, run_backtest

Run = Callable[[pl.DataFrame, pl.DataFrame, BacktestConfig],
               tuple[pl.DataFrame, pl.DataFrame]]


def run_engine(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The engine as it is: (fills, equity) of `run_backtest`."""
    result = run_backtest(prices, weights, config)
    return result.fills, result.equity


def run_under(patched: Callable[[], AbstractContextManager]) -> Run:
    """A variant's `run`: the real engine with `patched()` active for the call."""

    def run(
        prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        with patched():
            return run_engine(prices, weights, config)

    return run
