"""The fills and orders tables' columns, read from the ledger's journal and the book's
records in one compiled pass each.

Each pass writes every column a table shows, final: times in the market's physical
units (null where a mask says so), name codes for the text columns (uint32 indices into
the `*_NAMES` tuples of engine/core/records.py: polars' own index type, which it gathers
by without converting), numbers as they are. Polars takes the numeric columns without
copying them, so a table costs one pass over the records and a gather per text column;
no field is read twice and no intermediate column is made.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.core.kernels import NEVER, kernel
from engine.core.records import REASON_NAMES, TYPE_NAMES, Origin, Reason


class FillColumns(NamedTuple):
    """The journal's fills, one entry per fill in execution order."""

    bar: np.ndarray  # int64 bar index
    time: np.ndarray  # int64 physical timestamp of the bar
    asset: np.ndarray  # int64 asset index
    quantity: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    order_id: np.ndarray  # int64
    trigger: np.ndarray  # uint32 code into TYPE_NAMES + ORIGIN_NAMES (`trigger_code`)


class OrderColumns(NamedTuple):
    """The order records, one entry per order id; `nulls` rows are the masks of the
    columns that may be null (`NULL_FILLED_AT` ...)."""

    created: np.ndarray  # int64 physical timestamp of the bar it was placed at
    asset: np.ndarray  # uint32 asset index
    kind: np.ndarray  # uint32 OrderKind
    amount: np.ndarray
    status: np.ndarray  # uint32 OrderStatus
    reason: np.ndarray  # uint32 code into REASON_NAMES + ORIGIN_NAMES
    filled_at: np.ndarray  # int64 physical timestamp of its last fill
    filled_quantity: np.ndarray
    type: np.ndarray  # uint32 OrderType
    limit_price: np.ndarray  # NaN where it does not apply
    stop_price: np.ndarray
    trail: np.ndarray
    valid_until: np.ndarray  # int64 physical timestamp of its last bar
    parent: np.ndarray  # int64
    group: np.ndarray  # int64
    origin: np.ndarray  # uint32 Origin
    nulls: np.ndarray  # bool (4, n): filled_at, valid_until, parent, group are null


NULL_FILLED_AT, NULL_VALID_UNTIL, NULL_PARENT, NULL_GROUP = range(4)
N_TYPES, N_REASONS = len(TYPE_NAMES), len(REASON_NAMES)


def fill_columns(journal: np.ndarray, orders: np.ndarray, times: np.ndarray) -> FillColumns:
    """The columns of `journal`'s fills (`FILL_DT`), their triggers read from `orders`
    (`ORDER_DT`) and their bars' times from `times` (physical, one per bar)."""
    n = len(journal)
    out = FillColumns(*(np.empty(n, dtype) for dtype in (
        np.int64, np.int64, np.int64, np.float64, np.float64, np.float64, np.int64,
        np.uint32)))
    _fill_pass(journal, orders, times, out)
    return out


def order_columns(orders: np.ndarray, times: np.ndarray) -> OrderColumns:
    """The columns of every order record (`ORDER_DT`), bars as `times` (physical)."""
    n = len(orders)
    dtypes = (np.int64, np.uint32, np.uint32, np.float64, np.uint32, np.uint32, np.int64,
              np.float64, np.uint32, np.float64, np.float64, np.float64, np.int64, np.int64,
              np.int64, np.uint32)
    out = OrderColumns(*(np.empty(n, dtype) for dtype in dtypes), np.empty((4, n), bool))
    _order_pass(orders, times, out)
    return out


def order_codes(orders: np.ndarray) -> np.ndarray:
    """The one-byte codes of every order record (`CODES_DT`: type, origin, status), read
    in one pass rather than a strided copy per field."""
    codes = np.empty(len(orders), dtype=CODES_DT)
    _codes_pass(orders, codes)
    return codes


CODES_DT = np.dtype([("type", np.int8), ("origin", np.int8), ("status", np.int8)])


@kernel
def trigger_code(order_type, origin) -> int:
    """What fired an order's fills: the risk rule that created it (`N_TYPES + origin`),
    else its type."""
    return N_TYPES + origin if origin != Origin.user else order_type


@kernel
def _codes_pass(orders, codes) -> None:
    for i in range(len(orders)):
        codes[i]["type"] = orders[i]["type"]
        codes[i]["origin"] = orders[i]["origin"]
        codes[i]["status"] = orders[i]["status"]


@kernel
def _fill_pass(journal, orders, times, out) -> None:
    for i in range(len(journal)):
        fill = journal[i]
        bar = fill["bar"]
        oid = fill["order_id"]
        out.bar[i] = bar
        out.time[i] = times[bar]
        out.asset[i] = fill["asset"]
        out.quantity[i] = fill["quantity"]
        out.price[i] = fill["price"]
        out.fee[i] = fill["fee"]
        out.order_id[i] = oid
        record = orders[max(oid, 0)]
        out.trigger[i] = trigger_code(record["type"], record["origin"])


@kernel
def _order_pass(orders, times, out) -> None:
    last = len(times) - 1
    nulls = out.nulls
    for i in range(len(orders)):
        record = orders[i]
        origin = record["origin"]
        reason = record["reason"]
        out.created[i] = times[record["created_bar"]]
        out.asset[i] = record["asset"]
        out.kind[i] = record["kind"]
        out.amount[i] = record["amount"]
        out.status[i] = record["status"]
        by_rule = reason == Reason.none and origin != Origin.user
        out.reason[i] = N_REASONS + origin if by_rule else reason
        filled_bar = record["filled_bar"]
        nulls[NULL_FILLED_AT, i] = filled_bar < 0
        out.filled_at[i] = times[max(filled_bar, 0)]
        out.filled_quantity[i] = record["filled_quantity"]
        out.type[i] = record["type"]
        out.limit_price[i] = record["limit_price"]
        out.stop_price[i] = record["stop_price"]
        out.trail[i] = record["trail"]
        until = record["valid_until"]
        nulls[NULL_VALID_UNTIL, i] = until == NEVER or until > last
        out.valid_until[i] = times[min(max(until, 0), last)]
        out.parent[i] = record["parent"]
        nulls[NULL_PARENT, i] = record["parent"] < 0
        out.group[i] = record["group"]
        nulls[NULL_GROUP, i] = record["group"] < 0
        out.origin[i] = origin
