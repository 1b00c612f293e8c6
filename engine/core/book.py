"""The order book: the one owner of orders, open and closed.

Each asset has one slot (`SLOT_DT`) for its open order: an optional target (shares, value
or percent) plus delta amounts that accumulate. A slot's `order_id` is the one mark of an
open order (−1: none). A target replaces the open order; a delta folds into it (see
docs/semantics.md). Every order ever placed keeps a record (`ORDER_DT`), indexed by id,
whose status stays `open` until the book closes it. The kernels here are the only code
that writes slots and records; everyone else reads sealed copies.
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import NEVER, kernel
from engine.core.kernels.sizing import pending_shares
from engine.core.records import NO_TARGET, ORDER_DT, SLOT_DT, OrderKind, OrderStatus, Reason
from engine.data.market import sealed


@kernel
def submit_nb(slots, orders, n_orders, bar, due_bar, assets, kind, amounts, count):
    """Place one order of `kind` for each of the first `count` assets (unique); the caller
    reserves room. Returns the id of the first new order (the rest follow in order)."""
    first = n_orders[0]
    for i in range(count):
        asset = assets[i]
        amount = amounts[i]
        oid = first + i
        record = orders[oid]
        record["created_bar"] = bar
        record["asset"] = asset
        record["kind"] = kind
        record["amount"] = amount
        record["status"] = OrderStatus.open
        record["reason"] = Reason.none
        record["superseded_by"] = -1
        record["filled_bar"] = -1
        record["filled_quantity"] = 0.0
        slot = slots[asset]
        previous = slot["order_id"]
        if previous >= 0:
            old = orders[previous]
            is_delta = kind < OrderKind.target_shares
            old["status"] = OrderStatus.merged if is_delta else OrderStatus.replaced
            old["reason"] = Reason.superseded
            old["superseded_by"] = oid
        if kind >= OrderKind.target_shares:
            slot["target_kind"] = kind
            slot["target_amount"] = amount
            slot["add_shares"] = 0.0
            slot["add_value"] = 0.0
            slot["add_percent"] = 0.0
        elif kind == OrderKind.shares:
            slot["add_shares"] += amount
        elif kind == OrderKind.value:
            slot["add_value"] += amount
        else:
            slot["add_percent"] += amount
        slot["order_id"] = oid
        slot["due_bar"] = due_bar
    n_orders[0] = first + count
    return first


@kernel
def close_nb(slots, orders, bar, asset, status, reason, filled_quantity):
    """Close the open order of `asset` with its outcome and empty the slot."""
    slot = slots[asset]
    record = orders[slot["order_id"]]
    record["status"] = status
    record["reason"] = reason
    record["filled_quantity"] += filled_quantity
    record["filled_bar"] = bar if status == OrderStatus.filled else -1
    clear_slot(slot)


@kernel
def fill_part_nb(slots, orders, bar, asset, filled_quantity):
    """Record part of `asset`'s open share order as filled; the rest stays open."""
    slot = slots[asset]
    record = orders[slot["order_id"]]
    record["filled_quantity"] += filled_quantity
    record["filled_bar"] = bar
    slot["add_shares"] -= filled_quantity


@kernel
def clear_slot(slot):
    """An empty slot: no open order."""
    slot["order_id"] = -1
    slot["due_bar"] = NEVER
    slot["target_kind"] = NO_TARGET
    slot["target_amount"] = 0.0
    slot["add_shares"] = 0.0
    slot["add_value"] = 0.0
    slot["add_percent"] = 0.0


@kernel
def is_due(slot, bar) -> bool:
    """Whether the slot holds an open order that may fill at `bar`."""
    return slot["order_id"] >= 0 and slot["due_bar"] <= bar


class OrderBook:
    """Open orders by asset and the record of every order."""

    __slots__ = ("_n_orders", "_orders", "_slots")

    def __init__(self, n_assets: int, capacity: int = 1024) -> None:
        self._slots = np.zeros(n_assets, dtype=SLOT_DT)
        self._slots["order_id"] = -1
        self._slots["due_bar"] = NEVER
        self._slots["target_kind"] = NO_TARGET
        self._orders = np.empty(capacity, dtype=ORDER_DT)
        self._n_orders = np.zeros(1, dtype=np.int64)

    @property
    def n_orders(self) -> int:
        return int(self._n_orders[0])

    @property
    def records(self) -> np.ndarray:
        """Every order placed so far (`ORDER_DT`, indexed by id; a sealed copy)."""
        return sealed(self._orders[: self.n_orders])

    def record(self, name: str) -> np.ndarray:
        """One field of every order placed so far, indexed by order id (a sealed copy)."""
        return sealed(self._orders[name][: self.n_orders])

    @property
    def open_ids(self) -> np.ndarray:
        """Id of each asset's open order, −1 where none (a sealed copy)."""
        return sealed(self._slots["order_id"])

    @property
    def slots(self) -> np.ndarray:
        """Each asset's open-order slot (`SLOT_DT`, a sealed copy)."""
        return sealed(self._slots)

    def pending(self, positions: np.ndarray, book_value: float,
                prices: np.ndarray) -> np.ndarray:
        """Shares each asset's open order would trade at `prices` (sealed; 0 where none)."""
        out = np.zeros(len(self._slots))
        pending_shares(self._slots, positions, book_value, prices, out)
        return sealed(out)

    def reserve(self, room: int) -> None:
        """Make room for `room` more order records."""
        n = self.n_orders
        if n + room > len(self._orders):
            grown = np.empty(max(n + room, 2 * len(self._orders)), dtype=ORDER_DT)
            grown[:n] = self._orders[:n]
            self._orders = grown

    def submit(self, bar: int, due_bar: int, assets: np.ndarray, kind: int,
               amounts: np.ndarray) -> np.ndarray:
        """Place one order of `kind` per asset (unique assets); returns the new order ids."""
        count = len(assets)
        self.reserve(count)
        first = submit_nb(self._slots, self._orders, self._n_orders, bar, due_bar,
                          np.ascontiguousarray(assets, dtype=np.int64), kind,
                          np.ascontiguousarray(amounts, dtype=np.float64), count)
        return np.arange(first, first + count, dtype=np.int64)

    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arrays the compiled loop hands to this module's kernels (slots, orders,
        count); nothing else writes them."""
        return self._slots, self._orders, self._n_orders
