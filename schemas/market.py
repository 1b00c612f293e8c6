"""Pandera models of the user inputs: daily bars and target weights, in long form.

Both are keyed by (timestamp, asset), one row per key; timestamps are naive `Datetime("us")`
(zoned input is converted to UTC by the loader); bars are consistent (low ≤ open, close ≤ high).
"""

from __future__ import annotations

from typing import ClassVar

import pandera.polars as pa
import polars as pl
from pandera.engines.polars_engine import DateTime

from schemas.vocabulary import ORDER_TYPES, TRAIL_MODES

Timestamp = DateTime(time_unit="us")


class Bars(pa.DataFrameModel):
    """One bar per asset and timestamp; an asset may lack bars (not listed, missing data)."""

    timestamp: Timestamp = pa.Field(description="Bar time (its close ends the bar).")
    asset: pl.String = pa.Field(description="Asset name; name order is the asset index.")
    open: pl.Float64 = pa.Field(gt=0, description="First traded price of the bar.")
    high: pl.Float64 = pa.Field(gt=0, description="Highest price of the bar.")
    low: pl.Float64 = pa.Field(gt=0, description="Lowest price of the bar.")
    close: pl.Float64 = pa.Field(gt=0, description="Last traded price of the bar.")
    volume: pl.Float64 = pa.Field(ge=0, description="Shares traded during the bar.")

    @pa.dataframe_check(name="consistent_ohlc")
    @classmethod
    def ohlc_is_consistent(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """low ≤ open, close ≤ high on every bar."""
        return data.lazyframe.select(
            (pl.col("low") <= pl.min_horizontal("open", "close"))
            & (pl.col("high") >= pl.max_horizontal("open", "close"))
        )

    class Config:
        strict = True
        ordered = True
        unique: ClassVar[list[str]] = ["timestamp", "asset"]


class Weights(pa.DataFrameModel):
    """Target weights: the rows of a timestamp are one decision made at its close."""

    timestamp: Timestamp = pa.Field(description="Decision time (a bar of the prices).")
    asset: pl.String = pa.Field(description="Asset name, one of the prices' assets.")
    weight: pl.Float64 = pa.Field(description="Target fraction of book value; finite.")

    @pa.check("weight", name="finite")
    @classmethod
    def weight_is_finite(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Weights are finite numbers (no NaN, no infinity)."""
        return data.lazyframe.select(pl.col(data.key).is_finite())

    class Config:
        strict = True
        ordered = True
        unique: ClassVar[list[str]] = ["timestamp", "asset"]


class OrderRows(pa.DataFrameModel):
    """An order table, normalized: one order per row, decided at its timestamp's close."""

    timestamp: Timestamp = pa.Field(description="Decision bar (a bar of the prices).")
    asset: pl.String = pa.Field(description="Asset name, one of the prices' assets.")
    type: pl.String = pa.Field(
        isin=list(ORDER_TYPES),
        description="Order type.")
    quantity: pl.Float64 = pa.Field(description="Signed shares: + buys, − sells; not 0.")
    limit_price: pl.Float64 = pa.Field(nullable=True, description="Limit (limit, stop_limit).")
    stop_price: pl.Float64 = pa.Field(nullable=True, description="Trigger (stop, stop_limit).")
    trail: pl.Float64 = pa.Field(nullable=True, description="Trailing distance.")
    trail_mode: pl.String = pa.Field(isin=list(TRAIL_MODES),
                                     description="How `trail` is read.")
    valid_bars: pl.Int64 = pa.Field(nullable=True, description="Bars it may wait; null: none.")
    valid_until: Timestamp = pa.Field(nullable=True, description="Last time it may fill.")
    group: pl.String = pa.Field(nullable=True, description="OCO group label.")
    id: pl.String = pa.Field(nullable=True, description="Row id that children name.")
    parent: pl.String = pa.Field(nullable=True, description="Id of its bracket parent.")

    class Config:
        strict = True
        ordered = True
