"""vectorbt's `Portfolio.orders.records_readable` (CSV or Parquet).

One row per executed order: `Order Id, Column, Timestamp, Size, Price, Fees, Side`; Size
is unsigned and Side says 'Buy' or 'Sell'; Timestamp is the bar's index label.
"""

from __future__ import annotations

from engine.logs.spec import LogFormat, mapped

COLUMNS = {"time": "Timestamp", "symbol": "Column", "quantity": "Size", "side": "Side",
           "price": "Price", "fee": "Fees", "order": "Order Id"}

VECTORBT = LogFormat("vectorbt", "vectorbt records_readable",
                     frozenset({"column", "timestamp", "size", "price", "fees", "side"}),
                     mapped(COLUMNS), names=COLUMNS)
