"""Record dtypes and enums of the simulation core: the one place they are declared.

Enums are named tuples of small ints, so the compiled kernels read them as constants and
Python code reads them by name; each `*_NAMES` tuple gives the text a table shows for a
code. The enums whose words appear in tables and input files (order kinds, statuses, types,
origins, trail modes) number the words of `schemas/vocabulary.py` in order: the schemas
may not import the engine, so the words live there and the codes here. Records are numpy
structured dtypes, one row per order or fill, documented field by field; the order book owns
the order records and open-order slots, the ledger owns the fill journal
(engine/core/book.py, engine/core/ledger.py).
"""

from __future__ import annotations

from collections import namedtuple
from typing import NamedTuple

import numpy as np

from schemas.vocabulary import ORDER_KINDS, ORDER_STATUSES, ORDER_TYPES, ORIGINS, TRAIL_MODES


def codes(name: str, words: tuple[str, ...]) -> tuple:
    """A named tuple of the codes 0, 1, ... of `words`, readable by name (`OrderType.limit`)."""
    return namedtuple(name, words)(*range(len(words)))


OrderKind = codes("OrderKind", ORDER_KINDS)
KIND_NAMES = ORDER_KINDS
NO_TARGET = -1  # target kind of an open-order slot holding only delta amounts


OrderStatus = codes("OrderStatus", ORDER_STATUSES)
STATUS_NAMES = ORDER_STATUSES


class _Reason(NamedTuple):
    none: int = 0
    shrunk_to_cash: int = 1  # filled, shrunk to the buying power
    insufficient_cash: int = 2  # rejected: the buy does not fit the buying power
    fee_exceeds_proceeds: int = 3  # rejected: a sell whose proceeds do not cover its fee
    superseded: int = 4  # replaced or merged; the table names the superseding order
    margin: int = 5  # rejected by backtrader's cash check (profile backtrader)
    no_price: int = 6  # rejected: no bar at the fill (profile vectorbt)
    oco: int = 7  # cancelled: an order of its OCO group filled
    position_closed: int = 8  # cancelled: its position went flat
    cancelled: int = 9  # cancelled by the strategy (or its bracket parent never filled)
    expired: int = 10  # expired: past its `valid_until` bar unfilled
    max_positions: int = 11  # rejected: would open a position beyond `max_positions`
    max_gross: int = 12  # rejected: gross exposure over equity would pass `max_gross`
    max_weight: int = 13  # rejected: the asset's value over equity would pass `max_weight`
    halt_drawdown: int = 14  # rejected: an entry while the drawdown is past `halt_drawdown`


Reason = _Reason()
REASON_NAMES = (None, "shrunk_to_cash", "insufficient_cash", "fee_exceeds_proceeds", None,
                "margin", "no_price", *_Reason._fields[7:])
REASON_CODES = {name: code for code, name in enumerate(REASON_NAMES) if name}


OrderType = codes("OrderType", ORDER_TYPES)
TYPE_NAMES = ORDER_TYPES
STOP_TYPES = (OrderType.stop, OrderType.stop_limit, OrderType.trailing_stop)

Origin = codes("Origin", ORIGINS)
ORIGIN_NAMES = ORIGINS

TrailMode = codes("TrailMode", TRAIL_MODES)


class _IntrabarPath(NamedTuple):
    nearest: int = 0  # open, the extreme nearer the open, the other extreme, close
    ohlc: int = 1  # open, high, low, close
    olhc: int = 2  # open, low, high, close
    close: int = 3  # the close only: checked against each close, filled there (zipline)


IntrabarPath = _IntrabarPath()


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

ORDER_DT = np.dtype([  # 8-byte fields, then 4-byte, then the 1-byte codes: 96 bytes a record
    # (no id field: a record's id is its index; ids, bars and assets fit 4 bytes, the bars
    # that may be NEVER keep 8)
    ("amount", np.float64),  # shares, cash value or fraction, as requested
    ("filled_quantity", np.float64),  # signed shares filled so far
    # resting orders (market slot orders keep the defaults: type market, NaN prices, -1)
    ("limit_price", np.float64),  # limit of a limit / stop_limit, else NaN
    ("stop_price", np.float64),  # trigger of a stop / stop_limit, else NaN
    ("trail", np.float64),  # distance of a trailing stop (fraction or amount), else NaN
    ("reference", np.float64),  # trailing stop: the best price so far (peak or trough)
    ("valid_until", np.int64),  # last bar at which it may fill; NEVER: good till cancelled
    ("active_from", np.int64),  # first bar it is checked at (NEVER: bracket child waiting)
    ("superseded_by", np.int32),  # id of the order that replaced or absorbed it, else -1
    ("parent", np.int32),  # id of its bracket parent, else -1
    ("group", np.int32),  # OCO group (the id of its first member), else -1
    ("created_bar", np.int32),  # bar at whose close the order was placed
    ("asset", np.int32),  # asset index (column of the market)
    ("filled_bar", np.int32),  # bar of its last fill, -1 unless filled
    ("kind", np.int8),  # OrderKind
    ("status", np.int8),  # OrderStatus; `open` until the book closes the order
    ("reason", np.int8),  # Reason
    ("type", np.int8),  # OrderType
    ("trail_mode", np.int8),  # TrailMode
    ("origin", np.int8),  # Origin: the strategy or the risk rule that created it
    ("triggered", np.int8),  # 1: a stop_limit's stop was reached (then a limit); 2 (close
    # path): its condition held on a close it was checked at, so it fills at every later one
    ("has_children", np.int8),  # 1: a bracket parent whose children wait for its fill
], align=True)

OPEN_ORDER_DT = np.dtype([("order_id", np.int64),  # an open order's record with its id
                          *((name, ORDER_DT.fields[name][0]) for name in ORDER_DT.names)],
                         align=True)

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


class BarArrays(NamedTuple):
    """The market as the compiled loop reads it: bars × assets (`Market`)."""

    open: np.ndarray
    high: np.ndarray  # 0 rows when no order can rest
    low: np.ndarray  # 0 rows when no order can rest
    close: np.ndarray
    last_close: np.ndarray  # the last known close (NaN before an asset's first bar)
    known_open: np.ndarray  # the price that values a held asset without a bar
    has_bar: np.ndarray
    volume: np.ndarray  # 0 rows without a volume cap


class Schedule(NamedTuple):
    """What is decided at each bar: `decide` (bars with a decision) and, when decided in
    the compiled loop, a weight table (`weight_start` has a row per bar + 1, the weights of
    bar t are `weight[weight_start[t]:weight_start[t + 1]]` on `weight_asset`) or an order
    table (`row_start` likewise over the rows `rows_i`/`rows_f`; `row_state` keeps what its
    rows placed, `placement.place_rows`). Unused tables have 0 rows."""

    decide: np.ndarray
    weight_start: np.ndarray
    weight_asset: np.ndarray
    weight: np.ndarray
    row_start: np.ndarray
    rows_i: np.ndarray
    rows_f: np.ndarray
    row_state: np.ndarray


class LedgerArrays(NamedTuple):
    """The ledger's arrays as its booking kernel takes them (`Ledger.state`)."""

    cash: np.ndarray  # [cash]
    positions: np.ndarray  # shares by asset
    journal: np.ndarray  # FILL_DT rows
    n_fills: np.ndarray  # [rows of `journal` used]


class Curves(NamedTuple):
    """Per bar: cash at the close and the positions' value at the last known closes."""

    cash: np.ndarray
    value: np.ndarray


class BookArrays(NamedTuple):
    """The order book's arrays as its kernels take them (`OrderBook.state`)."""

    slots: np.ndarray  # SLOT_DT per asset: its open market order
    orders: np.ndarray  # ORDER_DT by order id
    n_orders: np.ndarray  # [orders placed so far]
    resting: np.ndarray  # ids of the resting orders still open, in id order
    n_resting: np.ndarray  # [how many of `resting` are used]


class Decision(NamedTuple):
    """What an order placed at a decision is checked against: the decision `bar`, the
    equity marked there and its peak so far, the positions planned by the decision so far
    (`plan`, updated by each accepted entry; empty without portfolio rules) and the last
    closes (which value the plan and start a trailing reference)."""

    bar: int
    equity: float
    peak: float
    plan: np.ndarray
    last_close: np.ndarray


class OrderSpec(NamedTuple):
    """One order to place (`placement.place_order`): a market order (`type` market and a
    user `origin`: the asset's slot order of `kind` and `amount`) or a resting order of
    `amount` signed shares. `parent` ≥ 0 makes it a bracket child; `group` −2 starts an OCO
    group named by its id (−1: none); `active_from` is the first bar it is checked at
    unless a bracket child (its entry's fill decides)."""

    asset: int
    kind: int  # OrderKind (resting orders: shares)
    type: int  # OrderType
    amount: float
    limit: float
    stop: float
    trail: float
    trail_mode: int  # TrailMode
    reference: float  # a trailing stop's first reference price
    valid_until: int  # last bar it may fill at (NEVER: good till cancelled)
    active_from: int
    parent: int
    group: int
    origin: int  # Origin
