"""tradegap's own fill table, and any table named column by column (`--columns`)."""

from __future__ import annotations

import polars as pl

from engine.errors import InputError
from engine.logs.spec import LogFormat, column, mapped, number, pick, raw

DEFAULTS = {"timestamp": "timestamp", "asset": "asset", "quantity": "quantity",
            "side": "side", "price": "price", "fee": "fee", "order": "order_id",
            "trigger": "trigger"}


COLUMNS = {"time": "timestamp", "symbol": "asset", "quantity": "quantity", "price": "price",
           "fee": "fee", "order": "order_id", "trigger": "trigger"}

TRADEGAP = LogFormat("tradegap", "tradegap fills",
                     frozenset({"timestamp", "asset", "quantity", "price", "fee"}),
                     mapped(COLUMNS), names=COLUMNS)


def by_columns(mapping: dict[str, str]) -> LogFormat:
    """A format reading the columns `mapping` names (key → column; `fee` may be `A+B`,
    summed as costs: each column's absolute value); other keys take tradegap's names."""
    names = {**DEFAULTS, **mapping}
    fee_columns = [c.strip() for c in names["fee"].split("+")]

    def prepare(frame: pl.DataFrame) -> pl.DataFrame:
        def need(key: str) -> pl.Expr:
            found = column(frame, names[key])
            if found is None:
                raise InputError("--columns", f"no column {names[key]!r} for {key} "
                                 f"(columns: {', '.join(frame.columns)})", names[key])
            return pl.col(found)

        fees = [column(frame, c) for c in fee_columns]
        if "fee" in mapping and None in fees:
            missing = fee_columns[fees.index(None)]
            raise InputError("--columns", f"no column {missing!r} for fee "
                             f"(columns: {', '.join(frame.columns)})", missing)
        present = [f for f in fees if f is not None]
        fee = (pl.sum_horizontal(
            number(pl.col(f)).abs() for f in present) if present else pl.lit(0.0))
        return raw(frame, time=need("timestamp"), symbol=need("asset"),
                   quantity=need("quantity"), price=need("price"), fee=fee,
                   side=pick(frame, names["side"]), order=pick(frame, names["order"]),
                   trigger=pick(frame, names["trigger"]))

    return LogFormat("columns", "the columns given (--columns)", frozenset(), prepare)
