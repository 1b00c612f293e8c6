"""Pandera models of the trade-gap stage: per-key comparison and one row per compared pair."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines.polars_engine import DateTime

from engine.gap.vocabulary import CAUSES

Timestamp = DateTime(time_unit="us")
ONE_CAUSE = "|".join(CAUSES)
CAUSE_LIST = rf"^(identical|(({ONE_CAUSE})(\+({ONE_CAUSE}))*))$"  # "fee" or "fee+timing"


class GapFills(pa.DataFrameModel):
    """One row per (timestamp, asset) filled on either side, with the cause of any gap."""

    timestamp: Timestamp = pa.Field(description="Fill bar.")
    asset: pl.String = pa.Field(description="Asset name.")
    quantity_a: pl.Float64 = pa.Field(nullable=True, description="A's net shares (null: none).")
    price_a: pl.Float64 = pa.Field(nullable=True, description="A's volume-weighted price.")
    fee_a: pl.Float64 = pa.Field(nullable=True, description="A's fees.")
    quantity_b: pl.Float64 = pa.Field(nullable=True, description="B's net shares (null: none).")
    price_b: pl.Float64 = pa.Field(nullable=True, description="B's volume-weighted price.")
    fee_b: pl.Float64 = pa.Field(nullable=True, description="B's fees.")
    quantity_diff: pl.Float64 = pa.Field(description="B − A shares.")
    divergent: pl.Boolean = pa.Field(description="Differs beyond the tolerances.")
    cause: pl.String = pa.Field(str_matches=CAUSE_LIST,
                                description="Causes joined by '+', `propagated` or `identical`.")
    side: pl.String = pa.Field(isin=["", "A", "B", "A+B"],
                               description="The side whose own rules the fill departs from.")
    root: pl.Boolean = pa.Field(description="A root difference (not propagated).")

    class Config:
        strict = False
        unique = ["timestamp", "asset"]


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
