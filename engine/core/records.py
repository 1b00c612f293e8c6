"""Record dtypes and enums of the simulation core: the one place they are declared.

Enums are named tuples of small ints, so the compiled kernels read them as constants and
Python code reads them by name; each `*_NAMES` tuple gives the text a table shows for a
code. Records are numpy structured dtypes, one row per order or fill, documented field by
field; the order book owns the order records and open-order slots, the ledger owns the fill
journal (engine/core/book.py, engine/core/ledger.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class _OrderKind(NamedTuple):
    shares: int = 0  # a number of shares (negative sells)
    value: int = 1  # shares worth a cash amount at the fill price
    percent: int = 2  # shares worth a fraction of the book value
    target_shares: int = 3  # trade the delta to hold a number of shares
    target_value: int = 4  # ... shares worth a cash amount
    target_percent: int = 5  # ... shares worth a fraction of the book value


OrderKind = _OrderKind()
KIND_NAMES = _OrderKind._fields
NO_TARGET = -1  # target kind of an open-order slot holding only delta amounts


class _OrderStatus(NamedTuple):
    filled: int = 0  # traded (possibly shrunk, see reason)
    rejected: int = 1  # refused; the reason says why
    noop: int = 2  # nothing to trade after capping and rounding
    replaced: int = 3  # a later target order took its place
    merged: int = 4  # a later delta order absorbed it
    open: int = 5  # no outcome yet: still waiting in the book at the end


OrderStatus = _OrderStatus()
STATUS_NAMES = _OrderStatus._fields


class _Reason(NamedTuple):
    none: int = 0
    shrunk_to_cash: int = 1  # filled, shrunk to the buying power
    insufficient_cash: int = 2  # rejected: the buy does not fit the buying power
    fee_exceeds_proceeds: int = 3  # rejected: a sell whose proceeds do not cover its fee
    superseded: int = 4  # replaced or merged; the table names the superseding order
    margin: int = 5  # rejected by backtrader's cash check (profile backtrader)
    no_price: int = 6  # rejected: no bar at the fill (profile vectorbt)


Reason = _Reason()
REASON_NAMES = (None, "shrunk_to_cash", "insufficient_cash", "fee_exceeds_proceeds", None,
                "margin", "no_price")
REASON_CODES = {name: code for code, name in enumerate(REASON_NAMES) if name}


class _FillTiming(NamedTuple):
    next_open: int = 0  # at the open of the asset's next bar
    next_close: int = 1  # at the close of the asset's next bar
    same_close: int = 2  # at the close of the decision bar, right after the decision


FillTiming = _FillTiming()


class _CashPolicy(NamedTuple):
    shrink: int = 0  # a buy beyond the buying power shrinks to it
    reject: int = 1  # ... is rejected
    allow_negative: int = 2  # no check: cash may go negative


CashPolicy = _CashPolicy()


class _Sequence(NamedTuple):
    auto: int = 0  # by approximate order value: sells first (largest first), then buys
    submission: int = 1  # by order id


Sequence = _Sequence()


class _DecisionSizing(NamedTuple):
    at_fill: int = 0  # targets sized at the fill, valuing the book at the fill price
    backtrader: int = 1  # at the decision close: value delta floored to whole shares
    zipline: int = 2  # at the decision close: shares delta truncated toward zero


DecisionSizing = _DecisionSizing()

ORDER_DT = np.dtype([
    ("created_bar", np.int64),  # bar at whose close the order was placed
    ("asset", np.int64),  # asset index (column of the market)
    ("kind", np.int64),  # OrderKind
    ("amount", np.float64),  # shares, cash value or fraction, as requested
    ("status", np.int64),  # OrderStatus; `open` until the book closes the order
    ("reason", np.int64),  # Reason
    ("superseded_by", np.int64),  # id of the order that replaced or absorbed it, else -1
    ("filled_bar", np.int64),  # bar of its last fill, -1 unless filled
    ("filled_quantity", np.float64),  # signed shares filled so far
], align=True)

SLOT_DT = np.dtype([  # the open order of one asset (the book holds one slot per asset)
    ("order_id", np.int64),  # id of the asset's open order, -1: none (the one mark of open)
    ("due_bar", np.int64),  # first bar at which it may fill
    ("target_kind", np.int64),  # OrderKind of its target part, NO_TARGET if none
    ("target_amount", np.float64),  # amount of the target part
    ("add_shares", np.float64),  # delta parts folded in: shares ...
    ("add_value", np.float64),  # ... cash value ...
    ("add_percent", np.float64),  # ... fraction of the book value
], align=True)

FILL_DT = np.dtype([
    ("bar", np.int64),  # bar at which the order filled
    ("asset", np.int64),  # asset index
    ("quantity", np.float64),  # signed shares: + bought, - sold
    ("price", np.float64),  # fill price per share, slippage included
    ("fee", np.float64),  # every cost charged for the fill
    ("order_id", np.int64),  # order that produced it
], align=True)
