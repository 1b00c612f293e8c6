"""vectorbt's `Portfolio.orders.records_readable` (CSV or Parquet).

One row per executed order: `Order Id, Column, Timestamp, Size, Price, Fees, Side`; Size
is unsigned and Side says 'Buy' or 'Sell'; Timestamp is the bar's index label.
"""

from __future__ import annotations

import polars as pl

from engine.logs.spec import LogFormat, pick, raw


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    return raw(frame, time=pick(frame, "Timestamp"), symbol=pick(frame, "Column"),
               quantity=pick(frame, "Size"), side=pick(frame, "Side"),
               price=pick(frame, "Price"), fee=pick(frame, "Fees"),
               order=pick(frame, "Order Id"))


VECTORBT = LogFormat("vectorbt", "vectorbt records_readable",
                     frozenset({"column", "timestamp", "size", "price", "fees", "side"}),
                     _prepare, names={"time": "Timestamp", "symbol": "Column",
                                      "quantity": "Size", "side": "Side", "price": "Price",
                                      "fee": "Fees"})
