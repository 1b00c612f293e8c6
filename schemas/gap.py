"""Pandera model of the trade-gap stage: one row per compared pair."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl


class GapSummary(pa.DataFrameModel):
    """One row per compared pair of backtests."""

    pair: pl.String = pa.Field(unique=True, description="`b vs a`.")
    verdict: pl.String = pa.Field(isin=["identical", "explained", "unexplained"],
                                  description="identical, explained or unexplained.")
    first_cause: pl.String = pa.Field(nullable=True, description="Cause at the first divergence.")
    divergent_keys: pl.Int64 = pa.Field(ge=0, description="(timestamp, asset) keys that differ.")
    equity_gap: pl.Float64 = pa.Field(description="Final equity B − A.")
    unexplained: pl.Float64 = pa.Field(description="Part of the gap no cause explains.")
    root_causes: pl.String = pa.Field(description="Root causes with counts.")
    expected: pl.Boolean = pa.Field(description="Only expected causes appeared.")
    headline: pl.String = pa.Field(description="The report's first sentence.")

    class Config:
        strict = False
