"""Pandera models of the report stage: one row of headline metrics per backtest."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl


class PerformanceSummary(pa.DataFrameModel):
    """Headline metrics of each backtest, one row per backtest (or sweep partition)."""

    backtest: pl.String = pa.Field(unique=True, description="Backtest asset or partition.")
    final_equity: pl.Float64 = pa.Field(description="Equity at the last bar.")
    total_return: pl.Float64 = pa.Field(description="final / initial − 1.")
    cagr: pl.Float64 = pa.Field(nullable=True, description="Compound annual growth rate.")
    sharpe: pl.Float64 = pa.Field(nullable=True, description="Annualized, risk-free 0.")
    max_drawdown: pl.Float64 = pa.Field(description="Worst peak-to-trough, negative.")
    turnover: pl.Float64 = pa.Field(nullable=True, description="Annualized one-way turnover.")
    n_fills: pl.Int64 = pa.Field(ge=0, description="Fills.")

    class Config:
        strict = False


class PeerEngines(pa.DataFrameModel):
    """Every known peer engine: whether it runs beside the engine here, and how to add it."""

    peer: pl.String = pa.Field(unique=True, description="Peer engine name.")
    installed: pl.Boolean = pa.Field(description="Runs in this environment.")
    install: pl.String = pa.Field(nullable=True, description="How to install it (if missing).")

    class Config:
        strict = True
