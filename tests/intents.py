"""Strategies as tables of order intents, so that any engine can run the same program.

An intent table has `timestamp, asset, kind, amount` rows in submission order; `kind` is an
order kind (`shares`, `value`, `percent`, `target_shares`, `target_value`,
`target_percent`). The engine runs one through `IntentReplay`, which makes one `ctx` order
call per row at the row's timestamp; another implementation (the reference) can read the
same rows.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine import Strategy

METHODS = {"shares": "order", "value": "order_value", "percent": "order_percent",
           "target_shares": "order_target", "target_value": "order_target_value",
           "target_percent": "order_target_percent"}


class IntentReplay(Strategy):
    """Places the orders of an intent table, row by row, at their timestamps."""

    def __init__(self, intents: pl.DataFrame) -> None:
        self._by_time: dict = {}
        for row in intents.iter_rows(named=True):
            self._by_time.setdefault(row["timestamp"], []).append(row)

    def decision_bars(self, market) -> np.ndarray:
        wanted = set(self._by_time)
        return np.array([t in wanted for t in market.timestamps.to_list()])

    def on_bar(self, ctx) -> None:
        for row in self._by_time.get(ctx.timestamp, []):
            getattr(ctx, METHODS[row["kind"]])(row["asset"], row["amount"])
