"""Pandera models of the signal stage: features, scores and the sweep summary."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines.polars_engine import DateTime

Timestamp = DateTime(time_unit="us")


class Features(pa.DataFrameModel):
    """Per-bar features of every asset (see engine.research.features.FEATURE_DESCRIPTIONS)."""

    timestamp: Timestamp = pa.Field(description="Bar.")
    asset: pl.String = pa.Field(description="Asset name.")
    fwd_ret: pl.Float64 = pa.Field(nullable=True,
                                   description="Next bar's return: the label, never a feature.")

    class Config:
        strict = False
        unique = ["timestamp", "asset"]


class Scores(pa.DataFrameModel):
    """Walk-forward model score of every asset at every scored bar."""

    timestamp: Timestamp = pa.Field(description="Bar at whose close the score is known.")
    asset: pl.String = pa.Field(description="Asset name.")
    score: pl.Float64 = pa.Field(description="Predicted next-bar return (higher is better).")

    class Config:
        strict = True
        unique = ["timestamp", "asset"]
