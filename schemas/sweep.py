"""Pandera models of the sweep stage: each chunk's points and their equity curves."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from schemas.reports import PerformanceSummary


class SweepPoints(PerformanceSummary):
    """One row per parameter set of a chunk: its settings and headline metrics."""

    top_k: pl.Int64 = pa.Field(ge=1, description="Assets held.")
    every: pl.Int64 = pa.Field(ge=1, description="Bars between rebalances.")
    fees: pl.Float64 = pa.Field(ge=0, description="Fees, fraction of traded value.")
    fill: pl.String = pa.Field(description="When a decision at a close fills.")

    class Config:
        strict = True


class SweepEquity(pa.DataFrameModel):
    """Each point's equity curve, long: one row per point and bar."""

    backtest: pl.String = pa.Field(description="The point's label.")
    timestamp: pl.Datetime = pa.Field(description="Bar.")
    equity: pl.Float64 = pa.Field(description="Equity at the bar's close.")

    class Config:
        strict = True
