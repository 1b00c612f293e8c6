"""The engine's records: orders and fills as dataclasses, and the fill log as a frame.

The fill log has the analysis's columns: `timestamp, asset, quantity, price, fee` (a sell
has a negative quantity; the fee is what the fill cost on top of its value).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

FILL_SCHEMA = {"timestamp": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
               "price": pl.Float64, "fee": pl.Float64}


@dataclass(frozen=True)
class Order:
    """A market order of `shares` (signed); `value` is its approximate cash value, the key a
    batch is sequenced by; a risk manager's exit carries the `price` it fills at."""

    asset: str
    shares: float
    value: float
    origin: str = "strategy"  # "strategy" or "risk"
    price: float | None = None


@dataclass(frozen=True)
class Fill:
    """One execution: what the broker did and what the log shows."""

    bar: int
    asset: str
    quantity: float
    price: float
    fee: float
    origin: str = "strategy"


def fill_frame(fills: list[Fill], timestamps: list) -> pl.DataFrame:
    """The fill log in the analysis's format."""
    return pl.DataFrame(
        {"timestamp": [timestamps[f.bar] for f in fills], "asset": [f.asset for f in fills],
         "quantity": [f.quantity for f in fills], "price": [f.price for f in fills],
         "fee": [f.fee for f in fills]}, schema=FILL_SCHEMA)
