"""backtrader's `Transactions` analyzer, flattened, and the PyFolio analyzer's transactions.

Both hold `date, amount, price, sid, symbol, value`: amount signed, one row per bar and
feed with that bar's executions netted; no commission (it lives on the orders only).
"""

from __future__ import annotations

import polars as pl

from engine.logs.spec import LogFormat, pick, raw


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    return raw(frame, time=pick(frame, "date"), symbol=pick(frame, "symbol"),
               quantity=pick(frame, "amount"), price=pick(frame, "price"), fee=pl.lit(0.0))


BACKTRADER = LogFormat(
    "backtrader", "backtrader Transactions/PyFolio transactions",
    frozenset({"date", "amount", "price", "sid", "symbol", "value"}), _prepare,
    notes="backtrader's transactions carry no commission (fees read as 0) and net each "
          "bar's executions per feed",
    names={"time": "date", "symbol": "symbol", "quantity": "amount", "price": "price"})
