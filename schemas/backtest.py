"""Pandera models of a backtest's tables: fills, orders, positions, equity and trades."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines.polars_engine import DateTime

Timestamp = DateTime(time_unit="us")


class Fills(pa.DataFrameModel):
    """One row per filled order: the primary record every other table derives from."""

    timestamp: Timestamp = pa.Field(description="Bar at which the order filled.")
    asset: pl.String = pa.Field(description="Asset name.")
    quantity: pl.Float64 = pa.Field(ne=0, description="Signed shares: + bought, − sold.")
    price: pl.Float64 = pa.Field(gt=0, description="Fill price per share, slippage included.")
    fee: pl.Float64 = pa.Field(ge=0, description="All costs charged for the order.")
    order_id: pl.Int64 = pa.Field(ge=0, description="Order that produced the fill.")

    class Config:
        strict = True
        ordered = True


class Orders(pa.DataFrameModel):
    """Every order placed, with what became of it."""

    order_id: pl.Int64 = pa.Field(ge=0, unique=True, description="Id in submission order.")
    created: Timestamp = pa.Field(description="Bar at whose close the order was placed.")
    asset: pl.String = pa.Field(description="Asset name.")
    kind: pl.String = pa.Field(
        isin=["shares", "value", "percent", "target_shares", "target_value", "target_percent"],
        description="Sizing method.",
    )
    amount: pl.Float64 = pa.Field(description="Requested shares, cash value or fraction.")
    status: pl.String = pa.Field(
        isin=["filled", "rejected", "noop", "replaced", "merged", "open"],
        description="Outcome: filled, rejected (see reason), noop (nothing to trade), "
        "replaced/merged (superseded by a later order), open (unfilled at the end).",
    )
    reason: pl.String = pa.Field(nullable=True, description="Why rejected, shrunk or superseded.")
    filled_at: Timestamp = pa.Field(nullable=True, description="Bar of the fill, if filled.")
    filled_quantity: pl.Float64 = pa.Field(description="Signed shares filled (0 unless filled).")

    class Config:
        strict = True
        ordered = True


class Positions(pa.DataFrameModel):
    """Non-zero holdings at every bar, marked at the close (or the last known close)."""

    timestamp: Timestamp = pa.Field(description="Bar.")
    asset: pl.String = pa.Field(description="Asset name.")
    quantity: pl.Float64 = pa.Field(ne=0, description="Shares held after the bar's fills.")
    market_value: pl.Float64 = pa.Field(description="Quantity × last known close.")

    class Config:
        strict = True
        ordered = True


class Equity(pa.DataFrameModel):
    """Cash and marked value of the book at the close of every bar."""

    timestamp: Timestamp = pa.Field(unique=True, description="Bar.")
    cash: pl.Float64 = pa.Field(description="Cash after the bar's fills.")
    positions_value: pl.Float64 = pa.Field(description="Σ quantity × last known close.")
    equity: pl.Float64 = pa.Field(description="cash + positions_value.")

    class Config:
        strict = True
        ordered = True


class Trades(pa.DataFrameModel):
    """Round trips rebuilt first-in-first-out from the fills."""

    asset: pl.String = pa.Field(description="Asset name.")
    direction: pl.String = pa.Field(isin=["long", "short"], description="long or short.")
    entry_time: Timestamp = pa.Field(description="Fill that opened the lot.")
    exit_time: Timestamp = pa.Field(nullable=True, description="Fill that closed it; null if open.")
    quantity: pl.Float64 = pa.Field(gt=0, description="Shares in this round trip.")
    entry_price: pl.Float64 = pa.Field(gt=0, description="Entry fill price.")
    exit_price: pl.Float64 = pa.Field(description="Exit fill price, or the last close if open.")
    entry_fee: pl.Float64 = pa.Field(ge=0, description="Entry fees pro rata.")
    exit_fee: pl.Float64 = pa.Field(ge=0, description="Exit fees pro rata (0 if open).")
    pnl: pl.Float64 = pa.Field(description="Profit after fees.")
    return_: pl.Float64 = pa.Field(alias="return", description="pnl / (quantity × entry_price).")
    status: pl.String = pa.Field(isin=["open", "closed"], description="open or closed.")

    class Config:
        strict = True
        ordered = True
