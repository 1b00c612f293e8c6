"""Interactive Brokers Flex Query, Trades section, as CSV.

`Symbol, DateTime ('20260106;093000', naive, the account's exchange time), Quantity
(signed), TradePrice, IBCommission (negative: a cost), Buy/Sell`, optionally `Taxes`
(negative: a cost, added to the fee), `IBOrderID`, `OrderType`, `LevelOfDetail` (only
EXECUTION rows are fills; ORDER, CLOSED_LOT and summary rows are dropped). Header and
trailer records (BOF, BOA, BOS, EOS, EOA, EOF) are skipped when the file is read; a
cancellation ('BUY (Ca.)') keeps its signed quantity, which nets out the trade it cancels.
"""

from __future__ import annotations

import polars as pl

from engine.logs.spec import LogFormat, column, number, pick, raw

RECORDS = ("BOF", "BOA", "BOS", "EOS", "EOA", "EOF")


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    level = column(frame, "LevelOfDetail")
    if level is not None:
        frame = frame.filter(
            pl.col(level).cast(pl.String).str.strip_chars().str.to_uppercase() == "EXECUTION")
    when = column(frame, "DateTime", "TradeDate", "Date/Time")
    time = pl.col(when).cast(pl.String).str.strip_chars().str.replace(r"[;,]\s*", " ")
    side = pick(frame, "Buy/Sell").cast(pl.String)
    side = pl.when(side.str.contains(r"\(Ca\.\)")).then(None).otherwise(side)
    costs = [number(pl.col(column(frame, c))).fill_null(0.0)
             for c in ("IBCommission", "Taxes") if column(frame, c) is not None]
    fee = -pl.sum_horizontal(costs) if costs else pl.lit(0.0)
    return raw(frame, time=time, symbol=pick(frame, "Symbol"),
               quantity=pick(frame, "Quantity"), side=side, price=pick(frame, "TradePrice"),
               fee=fee, order=pick(frame, "IBOrderID", "OrderID"),
               trigger=pick(frame, "OrderType"))


IB_FLEX = LogFormat("ib", "IB Flex Trades CSV",
                    frozenset({"symbol", "quantity", "tradeprice", "buy/sell"}), _prepare,
                    names={"time": "DateTime", "symbol": "Symbol", "quantity": "Quantity",
                           "side": "Buy/Sell", "price": "TradePrice", "fee": "IBCommission"})
