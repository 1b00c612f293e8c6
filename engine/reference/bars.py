"""Bars in the reference's plain form: per timestamp, a dict of asset → (o, h, l, c, v)."""

from __future__ import annotations

import math
from datetime import datetime

import polars as pl

OPEN, HIGH, LOW, CLOSE, VOLUME = range(5)
Bar = tuple[float, float, float, float, float]


class Bars:
    """Every bar by timestamp; `rows[i]` holds the assets that have a bar at `timestamps[i]`.

    `last(t, asset, field)` is an asset's last known value of a field at or before bar t.
    """

    def __init__(self, timestamps: list[datetime], rows: list[dict[str, Bar]]) -> None:
        self.timestamps = timestamps
        self.rows = rows

    @classmethod
    def from_frame(cls, prices: pl.DataFrame) -> Bars:
        """From long prices `timestamp, asset, open, high, low, close, volume`."""
        timestamps = prices["timestamp"].unique().sort().to_list()
        index = {t: i for i, t in enumerate(timestamps)}
        rows: list[dict[str, Bar]] = [{} for _ in timestamps]
        bars = zip(*(prices[c].to_list() for c in ("open", "high", "low", "close", "volume")),
                   strict=True)
        for t, asset, bar in zip(prices["timestamp"].to_list(), prices["asset"].to_list(), bars,
                                 strict=True):
            rows[index[t]][asset] = bar
        return cls(timestamps, rows)

    @property
    def time_type(self) -> pl.DataType:
        return pl.Datetime("us")

    def index_of(self, timestamps: list[datetime]) -> dict[datetime, int]:
        """Bar index of each timestamp (all must be in the calendar)."""
        index = {t: i for i, t in enumerate(self.timestamps)}
        return {t: index[t] for t in timestamps}

    def last(self, t: int, asset: str, field: int) -> float:
        """`asset`'s last known `field` (OPEN, CLOSE, ...) at or before bar `t`; NaN if none."""
        rows = self.rows
        while t >= 0:
            bar = rows[t].get(asset)
            if bar is not None:
                return bar[field]
            t -= 1
        return math.nan
