"""Honest configuration differences: the same engine, one setting changed, no patch."""

from __future__ import annotations

from typing import Any

import polars as pl

from engine import BacktestConfig
from tests.gap_zoo import Run, run_engine


def with_config(**changes: Any) -> Run:
    """A variant `run` that is the engine with `changes` applied to the config."""

    def run(
        prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        return run_engine(prices, weights, config.with_(**changes))

    run.__doc__ = f"The engine with {changes}."
    return run
