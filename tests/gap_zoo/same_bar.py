"""T+0 instead of T+1: orders fill at the decision bar's close, not at the next open.

An honest configuration difference: the engine with `fill="same_close"`.
"""

from __future__ import annotations

import polars as pl

from engine import BacktestConfig
from tests.gap_zoo import run_engine


def run(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    return run_engine(prices, weights, config.with_(fill="same_close"))
