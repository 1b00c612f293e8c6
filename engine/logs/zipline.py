"""zipline's `perf['transactions']` flattened (one dict per row), or pyfolio's frame of it.

Columns `dt, sid, amount, price, order_id, commission` (pyfolio adds `symbol`,
`txn_dollars`): amount signed, dt the fill session's close in UTC; `sid` is the Equity
object, written as 'Equity(0 [AAPL])'. The commission is on the order, not here (None).
"""

from __future__ import annotations

import polars as pl

from engine.logs.spec import LogFormat, column, pick, raw

EQUITY = r"^\s*Equity\(\s*\d+\s*\[(.+)\]\s*\)\s*$"


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    name = column(frame, "symbol", "sid")
    symbol = pl.col(name).cast(pl.String).str.strip_chars()
    symbol = symbol.str.extract(EQUITY, 1).fill_null(symbol)
    return raw(frame, time=pick(frame, "dt"), symbol=symbol, quantity=pick(frame, "amount"),
               price=pick(frame, "price"),
               fee=pl.lit(0.0) if column(frame, "commission") is None
               else pick(frame, "commission").fill_null(0.0).cast(pl.String).replace(
                   {"None": "0", "": "0", "nan": "0"}),
               order=pick(frame, "order_id"))


ZIPLINE = LogFormat(
    "zipline", "zipline transactions", frozenset({"dt", "sid", "amount", "price", "order_id"}),
    _prepare,
    notes="zipline's transactions carry no commission (it is on the orders): fees read as 0",
    names={"time": "dt", "symbol": "sid", "quantity": "amount", "price": "price",
           "fee": "commission"})
