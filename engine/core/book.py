"""The order book: the one owner of orders, open and closed.

Each asset has one slot (`SLOT_DT`) for its open order: an optional target (shares, value
or percent) plus delta amounts that accumulate. A slot's `order_id` is the one mark of an
open order (−1: none). A target replaces the open order; a delta folds into it (see
docs/semantics.md). Every order ever placed keeps a record (`ORDER_DT`), indexed by id,
whose status stays `open` until the book closes it. The kernels here are the only code
that writes slots and records; everyone else reads sealed copies.

Resting orders (limit, stop, stop-limit, trailing stop, and the exits the risk rules
create) are records too, several per asset if need be; `resting[:n_resting]` lists the
ids of those still open, in id order, so the compiled loop visits only them and skips the
pass entirely when the count is 0. Where they fill inside a bar is
`engine.core.kernels.matching` and `fill_pass`; every change those make to an order goes
through a kernel here.
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import NEVER, kernel, read_only
from engine.core.kernels.sizing import pending_shares
from engine.core.records import (
    NO_TARGET,
    OPEN_ORDER_DT,
    ORDER_DT,
    SLOT_DT,
    BookArrays,
    OrderKind,
    OrderStatus,
    OrderType,
    Origin,
    Reason,
)
from engine.data.market import sealed


@kernel
def submit_nb(slots, orders, n_orders, bar, due_bar, assets, kind, amounts, count):
    """Place one order of `kind` for each of the first `count` assets (unique); the caller
    reserves room. Returns the id of the first new order (the rest follow in order)."""
    first = n_orders[0]
    for i in range(count):
        submit_one_nb(slots, orders, n_orders, bar, due_bar, assets[i], kind, amounts[i])
    return first


@kernel(inline=True)
def submit_one_nb(slots, orders, n_orders, bar, due_bar, asset, kind, amount) -> int:
    """Place one order of `kind` for `asset` into its slot: a target replaces the slot's
    open order, a delta is folded into it. Its id; the caller reserves room. The records
    are changed through record kernels (`supersede`, `enter_slot`): a call that passes
    records, not arrays, costs no reference counting, which is most of a placement; it is
    inlined into its callers (one call per order) for the same reason."""
    oid = n_orders[0]
    record = orders[oid]
    new_record(record, bar, asset, kind, amount, due_bar)
    slot = slots[asset]
    previous = slot["order_id"]
    if previous >= 0:
        supersede(orders[previous], record, oid, kind)
    enter_slot(slot, oid, due_bar, kind, amount)
    n_orders[0] = oid + 1
    return oid


@kernel
def supersede(old, record, oid, kind) -> None:
    """The slot's open order `old` replaced by a target, or merged into a delta order
    (`record`, id `oid`), which then carries a bracket entry's waiting children."""
    is_delta = kind < OrderKind.target_shares
    old["status"] = OrderStatus.merged if is_delta else OrderStatus.replaced
    old["reason"] = Reason.superseded
    old["superseded_by"] = oid
    if is_delta and old["has_children"]:
        record["has_children"] = 1  # the entry still happens: children wait


@kernel
def enter_slot(slot, oid, due_bar, kind, amount) -> None:
    """Order `oid` of `kind` and `amount` into an asset's slot: a target replaces what it
    held, a delta adds to it."""
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


@kernel
def new_record(record, bar, asset, kind, amount, active_from):
    """Fill in a new open order record: a market order unless the caller says more."""
    record["created_bar"] = bar
    record["asset"] = asset
    record["kind"] = kind
    record["amount"] = amount
    record["status"] = OrderStatus.open
    record["reason"] = Reason.none
    record["superseded_by"] = -1
    record["filled_bar"] = -1
    record["filled_quantity"] = 0.0
    record["type"] = OrderType.market
    record["limit_price"] = np.nan
    record["stop_price"] = np.nan
    record["trail"] = np.nan
    record["trail_mode"] = 0
    record["reference"] = np.nan
    record["valid_until"] = NEVER
    record["active_from"] = active_from
    record["parent"] = -1
    record["group"] = -1
    record["origin"] = Origin.user
    record["triggered"] = 0
    record["has_children"] = 0


@kernel
def reject_nb(orders, n_orders, bar, asset, kind, amount, order_type, reason) -> int:
    """Record an order refused when placed (a portfolio rule); no slot changes. Its id."""
    oid = n_orders[0]
    record = orders[oid]
    new_record(record, bar, asset, kind, amount, NEVER)
    record["type"] = order_type
    record["status"] = OrderStatus.rejected
    record["reason"] = reason
    n_orders[0] = oid + 1
    return oid


@kernel(inline=True)
def place_nb(orders, n_orders, resting, n_resting, bar, asset, order_type, quantity, limit,
             stop, trail, trail_mode, reference, valid_until, active_from, parent, group,
             origin) -> int:
    """Place one resting order of `quantity` signed shares; returns its id. `group` −2
    starts a new OCO group named by this id (−1: none). The caller reserves room. Inlined
    into its callers: a call that passes the book's arrays costs reference counting."""
    oid = n_orders[0]
    record = orders[oid]
    new_record(record, bar, asset, OrderKind.shares, quantity, active_from)
    record["type"] = order_type
    record["limit_price"] = limit
    record["stop_price"] = stop
    record["trail"] = trail
    record["trail_mode"] = trail_mode
    record["reference"] = reference
    record["valid_until"] = valid_until
    record["parent"] = parent
    record["group"] = oid if group == -2 else group
    record["origin"] = origin
    if parent >= 0:  # the order carrying the entry releases or cancels it
        orders[entry_of(orders, parent)]["has_children"] = 1
    n_orders[0] = oid + 1
    resting[n_resting[0]] = oid
    n_resting[0] += 1
    return oid


@kernel
def close_resting_nb(orders, oid, bar, status, reason, filled_quantity):
    """Close resting order `oid` with its outcome (it leaves `resting` at the next
    `sweep_nb`)."""
    record = orders[oid]
    record["status"] = status
    record["reason"] = reason
    record["filled_quantity"] += filled_quantity
    record["filled_bar"] = bar if status == OrderStatus.filled else -1


@kernel
def cancel_group_nb(orders, resting, n_resting, group, keep, reason) -> None:
    """Cancel the open orders of OCO `group` other than `keep`."""
    for k in range(n_resting[0]):
        record = orders[resting[k]]
        if (record["group"] == group and resting[k] != keep
                and record["status"] == OrderStatus.open):
            record["status"] = OrderStatus.cancelled
            record["reason"] = reason


@kernel
def entry_of(orders, parent) -> int:
    """The order that carries bracket parent `parent`'s entry: itself, or the order a
    later delta order merged it into (followed to the last merge)."""
    while orders[parent]["status"] == OrderStatus.merged and orders[parent]["superseded_by"] >= 0:
        parent = orders[parent]["superseded_by"]
    return parent


@kernel
def release_children_nb(orders, resting, n_resting, parent, bar, filled, base) -> None:
    """A bracket entry's outcome (`parent`: the order carrying it, see `entry_of`): filled
    → its waiting children are checked from the next bar, a trailing child's reference
    starting at `base` (the stop base); otherwise they are cancelled."""
    for k in range(n_resting[0]):
        record = orders[resting[k]]
        if (record["parent"] >= 0 and record["status"] == OrderStatus.open
                and entry_of(orders, record["parent"]) == parent):
            if filled:
                if record["active_from"] == NEVER:
                    record["active_from"] = bar + 1
                    if record["type"] == OrderType.trailing_stop:
                        record["reference"] = base
            elif record["active_from"] == NEVER:  # an entry that filled in part keeps them
                record["status"] = OrderStatus.cancelled
                record["reason"] = Reason.cancelled


@kernel
def cancel_asset_nb(orders, resting, n_resting, asset, rules_only, reason) -> None:
    """Cancel the open resting orders of `asset` (only the risk rules' with `rules_only`)."""
    for k in range(n_resting[0]):
        record = orders[resting[k]]
        if (record["asset"] == asset and record["status"] == OrderStatus.open
                and (record["origin"] != Origin.user or not rules_only)):
            record["status"] = OrderStatus.cancelled
            record["reason"] = reason


@kernel
def cancel_assets_nb(orders, resting, n_resting, closing, reason) -> None:
    """`cancel_asset_nb` for every asset at once, in one pass over the resting orders:
    `closing[asset]` 1 cancels the risk rules' open orders, 2 every open resting order,
    0 none. For a batch of fills, whose assets differ (one pass, not one per fill)."""
    for k in range(n_resting[0]):
        record = orders[resting[k]]
        how = closing[record["asset"]]
        if (how > 0 and record["status"] == OrderStatus.open
                and (record["origin"] != Origin.user or how == 2)):
            record["status"] = OrderStatus.cancelled
            record["reason"] = reason


@kernel
def update_rules_nb(orders, resting, n_resting, positions, last_fill) -> None:
    """The risk rules' open exits of the assets a bar's fills moved (`last_fill[asset]` ≥ 0:
    the asset's last fill row): cancelled when the position is flat or reversed
    (`position_closed`), else resized to it; an asset whose exits stay is marked
    `last_fill = −2 − row`. One pass over the resting orders."""
    for k in range(n_resting[0]):
        record = orders[resting[k]]
        asset = record["asset"]
        row = last_fill[asset]
        if (row == -1 or record["origin"] == Origin.user
                or record["status"] != OrderStatus.open):
            continue
        exit_quantity = -positions[asset]
        if exit_quantity * record["amount"] > 0:
            record["amount"] = exit_quantity
            if row >= 0:
                last_fill[asset] = -2 - row
        else:
            record["status"] = OrderStatus.cancelled
            record["reason"] = Reason.position_closed


@kernel
def set_reference_nb(orders, oid, reference) -> None:
    """Move a trailing stop's reference (its best price so far)."""
    orders[oid]["reference"] = reference


@kernel
def set_triggered_nb(orders, oid, state) -> None:
    """An order's trigger state (ORDER_DT `triggered`): 1, a stop-limit whose stop was
    reached (a plain limit from now on); 2, under the `close` path, an order whose condition
    held on a close (it keeps filling)."""
    orders[oid]["triggered"] = state


@kernel
def fill_part_resting_nb(orders, oid, bar, filled_quantity) -> None:
    """Record part of resting order `oid` as filled (the volume cap cut it short); the
    rest stays open."""
    record = orders[oid]
    record["filled_quantity"] += filled_quantity
    record["filled_bar"] = bar


@kernel
def sweep_nb(orders, resting, n_resting, bar) -> None:
    """End of bar: open orders past `valid_until` expire; waiting bracket children whose
    entry ended unfilled (expired, rejected, replaced, ...) are cancelled; closed orders
    leave `resting`."""
    kept = 0
    for k in range(n_resting[0]):
        oid = resting[k]
        record = orders[oid]
        if record["status"] == OrderStatus.open and record["valid_until"] <= bar:
            record["status"] = OrderStatus.expired
            record["reason"] = Reason.expired
            if record["has_children"]:
                release_children_nb(orders, resting, n_resting, oid, bar, False, np.nan)
        parent = record["parent"]
        if parent >= 0:
            parent = entry_of(orders, parent)
        if (record["status"] == OrderStatus.open and parent >= 0
                and record["active_from"] == NEVER
                and orders[parent]["status"] != OrderStatus.open
                and orders[parent]["status"] != OrderStatus.filled):
            record["status"] = OrderStatus.cancelled  # its entry ended unfilled
            record["reason"] = Reason.cancelled
        if record["status"] == OrderStatus.open:
            resting[kept] = oid
            kept += 1
    n_resting[0] = kept


@kernel
def cancel_nb(slots, orders, resting, n_resting, oid, bar) -> bool:
    """Cancel open order `oid` (resting or a slot's market order); False if not open."""
    record = orders[oid]
    if record["status"] != OrderStatus.open:
        return False
    asset = record["asset"]
    if slots[asset]["order_id"] == oid:
        close_nb(slots, orders, bar, asset, OrderStatus.cancelled, Reason.cancelled, 0.0)
    else:
        close_resting_nb(orders, oid, bar, OrderStatus.cancelled, Reason.cancelled, 0.0)
    if record["has_children"]:
        release_children_nb(orders, resting, n_resting, oid, bar, False, np.nan)
    return True


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

    __slots__ = ("_n_orders", "_n_resting", "_orders", "_resting", "_slots")

    def __init__(self, n_assets: int, capacity: int = 1024) -> None:
        self._slots = np.zeros(n_assets, dtype=SLOT_DT)
        self._slots["order_id"] = -1
        self._slots["due_bar"] = NEVER
        self._slots["target_kind"] = NO_TARGET
        self._orders = np.empty(capacity, dtype=ORDER_DT)
        self._n_orders = np.zeros(1, dtype=np.int64)
        self._resting = np.empty(capacity, dtype=np.int64)
        self._n_resting = np.zeros(1, dtype=np.int64)

    @property
    def n_orders(self) -> int:
        return int(self._n_orders[0])

    @property
    def records(self) -> np.ndarray:
        """Every order placed so far (`ORDER_DT`, indexed by id; a sealed copy)."""
        return sealed(self._placed())

    def get(self, order_id: int) -> np.void:
        """One order's record (a copy)."""
        return self._orders[order_id].copy()

    def record(self, name: str) -> np.ndarray:
        """One field of every order placed so far, indexed by order id (a sealed copy)."""
        return sealed(self._placed()[name])

    def release(self) -> None:
        """Give the order records back to the system, for a caller done with them (a
        command that has written its orders table); reading them afterwards is an error."""
        self._orders = np.empty(0, dtype=ORDER_DT)
        self._resting = np.empty(0, dtype=np.int64)

    def _placed(self) -> np.ndarray:
        """The records of every order placed so far (a view)."""
        if len(self._orders) < self.n_orders:
            raise RuntimeError("the order records were released (OrderBook.release)")
        return self._orders[: self.n_orders]

    def view(self) -> np.ndarray:
        """Every order placed so far (indexed by id) as a read-only view of the records,
        not a copy: for one pass that reads them at once (the result tables', whole or a
        slice of ids at a time)."""
        return read_only(self._placed())

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
            resting = np.empty(len(grown), dtype=np.int64)
            resting[: self.n_resting] = self._resting[: self.n_resting]
            self._resting = resting

    def submit(self, bar: int, due_bar: int, assets: np.ndarray, kind: int,
               amounts: np.ndarray) -> np.ndarray:
        """Place one order of `kind` per asset (unique assets); returns the new order ids."""
        count = len(assets)
        self.reserve(count)
        first = submit_nb(self._slots, self._orders, self._n_orders, bar, due_bar,
                          np.ascontiguousarray(assets, dtype=np.int64), kind,
                          np.ascontiguousarray(amounts, dtype=np.float64), count)
        return np.arange(first, first + count, dtype=np.int64)

    @property
    def n_resting(self) -> int:
        return int(self._n_resting[0])

    @property
    def resting_ids(self) -> np.ndarray:
        """Ids of the resting orders not yet closed, in id order (a sealed copy)."""
        return sealed(self._resting[: self.n_resting])

    def open_orders(self) -> np.ndarray:
        """Every open order, market slots and resting, in id order (`OPEN_ORDER_DT`: the
        `ORDER_DT` record with its `order_id`; sealed)."""
        ids = np.concatenate([self._slots["order_id"][self._slots["order_id"] >= 0],
                              self._resting[: self.n_resting]])
        ids = np.sort(ids)
        ids = ids[self._orders["status"][ids] == OrderStatus.open]
        listed = np.empty(len(ids), dtype=OPEN_ORDER_DT)
        listed["order_id"] = ids
        for name in ORDER_DT.names:
            listed[name] = self._orders[name][ids]
        return sealed(listed)

    def place(self, bar: int, asset: int, order_type: int, quantity: float,
              limit: float = np.nan, stop: float = np.nan, trail: float = np.nan,
              trail_mode: int = 0, reference: float = np.nan, valid_until: int = NEVER,
              active_from: int | None = None, parent: int = -1, group: int = -1,
              origin: int = Origin.user) -> int:
        """Place one resting order (see `place_nb`); returns its id."""
        self.reserve(1)
        return int(place_nb(self._orders, self._n_orders, self._resting, self._n_resting, bar,
                            asset, order_type, float(quantity), float(limit), float(stop),
                            float(trail), trail_mode, float(reference), valid_until,
                            bar + 1 if active_from is None else active_from, parent, group,
                            origin))

    def reject(self, bar: int, asset: int, kind: int, amount: float, order_type: int,
               reason: int) -> int:
        """Record an order refused when placed; returns its id."""
        self.reserve(1)
        return int(reject_nb(self._orders, self._n_orders, bar, asset, kind, float(amount),
                             order_type, reason))

    def cancel(self, order_id: int, bar: int) -> bool:
        """Cancel an open order (and a bracket parent's waiting children)."""
        if not 0 <= order_id < self.n_orders:
            raise KeyError(f"no order {order_id}")
        return bool(cancel_nb(self._slots, self._orders, self._resting, self._n_resting,
                              order_id, bar))

    def state(self) -> BookArrays:
        """The arrays the compiled loop hands to this module's kernels (slots, orders,
        count, resting ids, their count); nothing else writes them."""
        return BookArrays(self._slots, self._orders, self._n_orders, self._resting,
                          self._n_resting)
