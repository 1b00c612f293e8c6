"""Pandera models of a backtest's tables: fills, orders, positions, equity and trades."""

from __future__ import annotations

from typing import Optional

import pandera.polars as pa
import polars as pl
from pandera.engines.polars_engine import DateTime

from schemas.vocabulary import ORDER_KINDS, ORDER_STATUSES, ORDER_TYPES, ORIGINS, RULES

Timestamp = DateTime(time_unit="us")
# Columns of resting orders and risk rules: optional, so fills and orders rebuilt from
# another engine's log (the reference, the peers) validate without them.


class Fills(pa.DataFrameModel):
    """One row per filled order: the primary record every other table derives from."""

    timestamp: Timestamp = pa.Field(description="Bar at which the order filled.")
    asset: pl.String = pa.Field(description="Asset name.")
    quantity: pl.Float64 = pa.Field(ne=0, description="Signed shares: + bought, − sold.")
    price: pl.Float64 = pa.Field(gt=0, description="Fill price per share, slippage included.")
    fee: pl.Float64 = pa.Field(ge=0, description="All costs charged for the order.")
    order_id: pl.Int64 = pa.Field(ge=0, description="Order that produced the fill.")
    trigger: Optional[pl.String] = pa.Field(  # noqa: UP045 (pandera reads Optional)
        isin=[*ORDER_TYPES, *RULES],
        description="What fired it: the type of the user's order (market, limit, stop, "
        "stop_limit, trailing_stop) or the risk rule that created it (stop_loss, "
        "take_profit, trailing_stop, time_exit).")

    class Config:
        strict = True
        ordered = True


class Orders(pa.DataFrameModel):
    """Every order placed, with what became of it."""

    order_id: pl.Int64 = pa.Field(ge=0, unique=True, description="Id in submission order.")
    created: Timestamp = pa.Field(description="Bar at whose close the order was placed.")
    asset: pl.String = pa.Field(description="Asset name.")
    kind: pl.String = pa.Field(
        isin=list(ORDER_KINDS),
        description="Sizing method.",
    )
    amount: pl.Float64 = pa.Field(description="Requested shares, cash value or fraction.")
    status: pl.String = pa.Field(
        isin=list(ORDER_STATUSES),
        description="Outcome: filled, rejected (see reason), noop (nothing to trade), "
        "replaced/merged (superseded by a later order), open (unfilled at the end), "
        "cancelled (reason oco, position_closed or cancelled), expired (past valid_until).",
    )
    reason: pl.String = pa.Field(nullable=True, description="Why rejected, shrunk or superseded.")
    filled_at: Timestamp = pa.Field(nullable=True, description="Bar of the fill, if filled.")
    filled_quantity: pl.Float64 = pa.Field(description="Signed shares filled (0 unless filled).")
    type: Optional[pl.String] = pa.Field(  # noqa: UP045 (pandera reads Optional)
        isin=list(ORDER_TYPES), description="market, limit, stop, stop_limit or trailing_stop.")
    limit_price: Optional[pl.Float64] = pa.Field(  # noqa: UP045
        nullable=True, description="Limit of a limit or stop_limit order.")
    stop_price: Optional[pl.Float64] = pa.Field(  # noqa: UP045
        nullable=True, description="Trigger of a stop or stop_limit order.")
    trail: Optional[pl.Float64] = pa.Field(  # noqa: UP045
        nullable=True, description="Trailing distance: a fraction or a price amount.")
    valid_until: Optional[Timestamp] = pa.Field(  # noqa: UP045
        nullable=True, description="Last bar it may fill at; null: good till cancelled.")
    parent: Optional[pl.Int64] = pa.Field(  # noqa: UP045
        nullable=True, description="Bracket entry it waits for; null: none.")
    group: Optional[pl.Int64] = pa.Field(  # noqa: UP045
        nullable=True, description="OCO group (the id of its first order); null: none.")
    origin: Optional[pl.String] = pa.Field(  # noqa: UP045
        isin=list(ORIGINS), description="Who placed it: user, or the risk rule.")

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
