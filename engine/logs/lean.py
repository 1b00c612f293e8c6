"""QuantConnect LEAN: a backtest result JSON's orders, its order-events JSON, the trades CSV.

Keys are read case-insensitively (Result.cs writes PascalCase, recent files camelCase).
- Result JSON: `orders` keyed by id, one per order: `symbol.value`, signed `quantity`,
  `price` (the fill price once filled), `lastFillTime` (else `time`), `type`, `status`
  (3 filled are kept; 2, partially filled, is refused: the order holds its requested
  quantity, and only the order-events file has what filled). Orders carry no fees.
- Order events (`<id>-order-events.json`): one object per event; `filled` and
  `partiallyFilled` ones are fills: `symbolValue`, `fillQuantity` (signed), `direction`,
  `fillPrice`, `orderFeeAmount`, `time` (Unix seconds, UTC), `orderId`.
- Trades CSV (QuantConnect's "Download Trades"): `Entry Time, Symbols, Exit Time,
  Direction, Entry Price, Exit Price, Quantity, ..., Fees`: each trade becomes its entry
  fill and, when closed, its exit fill; the trade's fees are split evenly between them.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from engine.errors import InputError
from engine.logs.spec import LogFormat, pick, raw

ORDER_TYPES = {0: "MARKET", 1: "LIMIT", 2: "STOP_MARKET", 3: "STOP_LIMIT",
               4: "MARKET_ON_OPEN", 5: "MARKET_ON_CLOSE", 6: "OPTION_EXERCISE",
               7: "LIMIT_IF_TOUCHED", 8: "COMBO_MARKET", 9: "COMBO_LIMIT",
               10: "COMBO_LEG_LIMIT", 11: "TRAILING_STOP"}
FILLED = 3
PARTIALLY_FILLED = 2


def _lower(value: Any) -> Any:
    """A JSON value with every object key lower-cased and dashes dropped (kebab-case)."""
    if isinstance(value, dict):
        return {k.lower().replace("-", ""): _lower(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower(v) for v in value]
    return value


def is_lean(document: Any) -> bool:
    """Whether a parsed JSON document is a LEAN result or an order-events list."""
    document = _lower(document)
    if isinstance(document, dict):
        return isinstance(document.get("orders"), dict)
    return isinstance(document, list) and bool(document) and isinstance(document[0], dict) \
        and "fillquantity" in document[0]


def from_json(document: Any, label: str) -> pl.DataFrame:
    """The rows of a result JSON's orders or of an order-events list, as a flat frame."""
    document = _lower(document)
    if isinstance(document, dict):
        rows = []
        for key, order in document["orders"].items():
            symbol = order.get("symbol")
            rows.append({
                "time": order.get("lastfilltime") or order.get("time"),
                "symbol": symbol.get("value") if isinstance(symbol, dict) else symbol,
                "quantity": order.get("quantity"), "price": order.get("price"),
                "status": order.get("status"), "order": str(order.get("id", key)),
                "trigger": ORDER_TYPES.get(order.get("type"), str(order.get("type"))),
            })
        frame = pl.DataFrame(rows, schema={"time": pl.String, "symbol": pl.String,
                                           "quantity": pl.Float64, "price": pl.Float64,
                                           "status": pl.Int64, "order": pl.String,
                                           "trigger": pl.String}, orient="row")
        frame = frame.with_row_index("row", 1)
        partial = frame.filter(pl.col("status") == PARTIALLY_FILLED)
        if partial.height:
            raise InputError(label, "read as LEAN result orders: an order partially filled "
                             "holds its requested quantity only; read the order-events "
                             f"file instead (order {partial['order'][0]})", "status",
                             partial["row"].head(5).to_list(), total=partial.height)
        return frame.filter(pl.col("status") == FILLED)
    rows = [{
        "time": event.get("time"), "symbol": event.get("symbolvalue") or event.get("symbol"),
        "quantity": event.get("fillquantity"), "direction": event.get("direction"),
        "price": event.get("fillprice"), "fee": event.get("orderfeeamount") or 0.0,
        "status": str(event.get("status", "")).lower(), "order": str(event.get("orderid")),
    } for event in document]
    frame = pl.DataFrame(rows, schema={"time": pl.Float64, "symbol": pl.String,
                                       "quantity": pl.Float64, "direction": pl.String,
                                       "price": pl.Float64, "fee": pl.Float64,
                                       "status": pl.String, "order": pl.String},
                         orient="row").with_row_index("row", 1)
    return frame.filter(pl.col("status").is_in(["filled", "partiallyfilled"])).with_columns(
        pl.from_epoch((pl.col("time") * 1e6).round().cast(pl.Int64), time_unit="us"))


def _orders(frame: pl.DataFrame) -> pl.DataFrame:
    return raw(frame, time=pl.col("time"), symbol=pl.col("symbol"),
               quantity=pl.col("quantity"), price=pl.col("price"), fee=pl.lit(0.0),
               order=pl.col("order"), trigger=pl.col("trigger"))


def _events(frame: pl.DataFrame) -> pl.DataFrame:
    return raw(frame, time=pl.col("time"), symbol=pl.col("symbol"),
               quantity=pl.col("quantity"), side=pl.col("direction"), price=pl.col("price"),
               fee=pl.col("fee"), order=pl.col("order"))


def _trades(frame: pl.DataFrame) -> pl.DataFrame:
    direction = pick(frame, "Direction").cast(pl.String).str.strip_chars().str.to_uppercase()
    short = direction.is_in(["SELL", "SHORT"])
    quantity = pick(frame, "Quantity").cast(pl.String).str.strip_chars().cast(
        pl.Float64, strict=False).abs()
    signed = pl.when(short).then(-quantity).otherwise(quantity)
    fee = pick(frame, "Fees").cast(pl.String).cast(pl.Float64, strict=False).fill_null(0.0)
    exit_time = pick(frame, "Exit Time")
    entry = raw(frame, time=pick(frame, "Entry Time"), symbol=pick(frame, "Symbols"),
                quantity=signed, price=pick(frame, "Entry Price"), fee=fee / 2)
    closed = frame.filter(exit_time.cast(pl.String).str.strip_chars().fill_null("") != "")
    exit_ = raw(closed, time=pick(closed, "Exit Time"), symbol=pick(closed, "Symbols"),
                quantity=-signed, price=pick(closed, "Exit Price"), fee=fee / 2)
    return pl.concat([entry, exit_])


LEAN = LogFormat("lean", "LEAN result orders", frozenset({"lean:orders"}), _orders,
                 notes="LEAN's result orders carry no fees (fees read as 0); its "
                       "order-events file has them",
                 names={"time": "lastFillTime", "symbol": "symbol.value",
                        "quantity": "quantity", "price": "price"})
LEAN_EVENTS = LogFormat("lean_events", "LEAN order events", frozenset({"lean:events"}),
                        _events, names={"time": "time", "symbol": "symbolValue",
                                        "quantity": "fillQuantity", "side": "direction",
                                        "price": "fillPrice", "fee": "orderFeeAmount"})
LEAN_TRADES = LogFormat(
    "lean_trades", "LEAN trades CSV",
    frozenset({"entry time", "symbols", "exit time", "direction", "entry price",
               "exit price", "quantity"}), _trades,
    notes="a LEAN trade's fees are split evenly between its entry and exit fills",
    names={"time": "Entry Time", "symbol": "Symbols", "quantity": "Quantity",
           "price": "Entry Price", "fee": "Fees"})
