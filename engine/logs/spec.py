"""A log format: the columns that identify it and how its rows become raw fills.

A format's `prepare` returns one row per fill with the columns of `RAW`: `time` (any
dtype; parsed later), `symbol` (the log's name for the asset), `quantity` (signed, or
unsigned when `side` says the direction), `side` ('BUY'/'SELL' text or null), `price`,
`fee` (a cost, non-negative), `order` and `trigger` (text or null) and `row` (the row's
number in the file, for messages); the numbers' text is kept beside them (`quantity_text`,
...) so that an unreadable one is named, not taken as missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

RAW = ("time", "symbol", "quantity", "side", "price", "fee", "order", "trigger", "row")
NUMBERS = ("quantity", "price", "fee")  # each also kept as `<name>_text`, for messages


@dataclass(frozen=True)
class LogFormat:
    """A named format, the lower-case columns that identify it, and its reader."""

    name: str
    title: str  # how messages call it, e.g. "vectorbt records_readable"
    signature: frozenset[str]
    prepare: Callable[[pl.DataFrame], pl.DataFrame]
    notes: str = ""  # what the log leaves out, said once when it is read
    names: dict[str, str] = field(default_factory=dict)  # RAW key → the log's column

    def column_of(self, key: str) -> str:
        """The log's column behind a RAW key, as messages name it."""
        return self.names.get(key, key)


def column(frame: pl.DataFrame, *names: str) -> str | None:
    """The frame's column named one of `names`, compared case-insensitively."""
    lower = {c.lower(): c for c in frame.columns}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def pick(frame: pl.DataFrame, *names: str) -> pl.Expr:
    """The first of `names` present (case-insensitive), else a null column."""
    found = column(frame, *names)
    return pl.col(found) if found is not None else pl.lit(None)


def number(expr: pl.Expr) -> pl.Expr:
    """A number from a numeric or text column ('1,234.5', ' 3 ', '1.00 USD' read as 1.0)."""
    text = expr.cast(pl.String).str.strip_chars().str.replace_all(",", "")
    return text.str.extract(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", 1).cast(
        pl.Float64, strict=False)


def text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.strip_chars()


def mapped(names: dict[str, str]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """The reader of a log whose RAW keys are plain columns: `names` (RAW key → the log's
    column) both reads the log and names its columns in messages."""
    return lambda frame: raw(frame, **{key: pick(frame, name) for key, name in names.items()})


def raw(frame: pl.DataFrame, **columns: pl.Expr) -> pl.DataFrame:
    """The RAW columns from expressions over `frame` (missing ones null, `row` kept)."""
    exprs = []
    for name in RAW:
        expr = columns.get(name, pl.col("row") if name == "row" else pl.lit(None))
        if name in NUMBERS:
            given = text(expr)
            exprs.append(pl.when(given != "").then(given).alias(f"{name}_text"))
            expr = number(expr)
        elif name in ("symbol", "side", "order", "trigger"):
            expr = text(expr)
        exprs.append(expr.alias(name))
    return frame.select(exprs)
