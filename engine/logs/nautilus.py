"""nautilus_trader's fills report (`trader.generate_fills_report()`) and order fills report.

Fills report: one row per OrderFilled (`client_order_id` index, `instrument_id`
'AAPL.XNAS', `order_side` BUY/SELL, `order_type`, `last_qty`, `last_px`, `commission`
'1.00 USD', `ts_event` the bar close in UTC); all values are strings. The order fills
report has one row per order (`side`, `filled_qty`, `avg_px`, `commissions` a list,
`ts_last`).
"""

from __future__ import annotations

import polars as pl

from engine.logs.spec import LogFormat, pick, raw


def _fills(frame: pl.DataFrame) -> pl.DataFrame:
    return raw(frame, time=pick(frame, "ts_event"), symbol=pick(frame, "instrument_id"),
               quantity=pick(frame, "last_qty"), side=pick(frame, "order_side"),
               price=pick(frame, "last_px"), fee=pick(frame, "commission"),
               order=pick(frame, "client_order_id"), trigger=pick(frame, "order_type"))


def _orders(frame: pl.DataFrame) -> pl.DataFrame:
    commissions = pick(frame, "commissions").cast(pl.String).str.extract_all(
        r"[-+]?\d+\.?\d*").list.eval(pl.element().cast(pl.Float64)).list.sum()
    return raw(frame, time=pick(frame, "ts_last"), symbol=pick(frame, "instrument_id"),
               quantity=pick(frame, "filled_qty"), side=pick(frame, "side"),
               price=pick(frame, "avg_px"), fee=commissions.fill_null(0.0),
               order=pick(frame, "client_order_id"), trigger=pick(frame, "type"))


NAUTILUS = LogFormat(
    "nautilus", "nautilus_trader fills report",
    frozenset({"instrument_id", "order_side", "last_qty", "last_px", "ts_event"}), _fills,
    names={"time": "ts_event", "symbol": "instrument_id", "quantity": "last_qty",
           "side": "order_side", "price": "last_px", "fee": "commission"})
NAUTILUS_ORDERS = LogFormat(
    "nautilus_orders", "nautilus_trader order fills report",
    frozenset({"instrument_id", "side", "filled_qty", "avg_px", "ts_last"}), _orders,
    notes="nautilus_trader's order fills report has one row per order at its average price "
          "and last fill time",
    names={"time": "ts_last", "symbol": "instrument_id", "quantity": "filled_qty",
           "side": "side", "price": "avg_px", "fee": "commissions"})
