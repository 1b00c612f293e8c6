"""Market data: bars as per-bar dicts of prices, and the events that announce them.

A bar is announced in three phases: its open (orders placed then fill at the open), its
range (resting exits are checked against the low) and its close (decisions are made).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

OPEN, RANGE, CLOSE = "open", "range", "close"


@dataclass(frozen=True)
class MarketEvent:
    """Bar `bar` has reached `phase`."""

    bar: int
    phase: str


class MarketData:
    """Prices by bar: `open[t][asset]`, `low[t][asset]`, `close[t][asset]`."""

    def __init__(self, prices: pl.DataFrame) -> None:
        self.timestamps = prices["timestamp"].unique().sort().to_list()
        index = {t: i for i, t in enumerate(self.timestamps)}
        n = len(self.timestamps)
        self.open: list[dict[str, float]] = [{} for _ in range(n)]
        self.low: list[dict[str, float]] = [{} for _ in range(n)]
        self.close: list[dict[str, float]] = [{} for _ in range(n)]
        for t, asset, open_, low, close in prices.select(
                "timestamp", "asset", "open", "low", "close").iter_rows():
            i = index[t]
            self.open[i][asset] = open_
            self.low[i][asset] = low
            self.close[i][asset] = close
        self.assets = sorted({a for row in self.close for a in row})

    def __len__(self) -> int:
        return len(self.timestamps)

    def prices(self, bar: int, phase: str) -> dict[str, float]:
        """The prices orders fill at in this phase of the bar."""
        return self.open[bar] if phase == OPEN else self.close[bar]
