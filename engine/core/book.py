"""The order book: the one owner of orders, open and closed.

Each asset has at most one open order, held column-wise in slot arrays over the asset
index: an optional target (shares, value or percent) plus delta amounts that accumulate.
A target replaces the open order; a delta folds into it (see docs/semantics.md). Every
order ever placed keeps a record, indexed by order id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHARES, VALUE, PERCENT, TARGET_SHARES, TARGET_VALUE, TARGET_PERCENT = range(6)
KIND_NAMES = ("shares", "value", "percent", "target_shares", "target_value", "target_percent")

FILLED, REJECTED, NOOP, REPLACED, MERGED, OPEN = range(6)
STATUS_NAMES = ("filled", "rejected", "noop", "replaced", "merged", "open")

(NO_REASON, SHRUNK_TO_CASH, INSUFFICIENT_CASH, FEE_EXCEEDS_PROCEEDS, SUPERSEDED, MARGIN,
 NO_PRICE) = range(7)
REASON_NAMES = (None, "shrunk_to_cash", "insufficient_cash", "fee_exceeds_proceeds", None,
                "margin", "no_price")
REASON_CODES = {name: code for code, name in enumerate(REASON_NAMES) if name}

NEVER = np.iinfo(np.int64).max  # due bar of an asset without an open order

_RECORD_FIELDS = {  # field: (dtype, value before the order is placed or closed)
    "created_bar": (np.int64, 0),
    "asset": (np.int64, 0),
    "kind": (np.int8, 0),
    "amount": (np.float64, 0.0),
    "status": (np.int8, OPEN),
    "reason": (np.int8, NO_REASON),
    "superseded_by": (np.int64, -1),
    "filled_bar": (np.int64, -1),
    "filled_quantity": (np.float64, 0.0),
}


@dataclass(frozen=True)
class OpenOrders:
    """Open orders of a batch, aligned arrays over its assets (see `engine.core.book`)."""

    target_kind: np.ndarray
    target_amount: np.ndarray
    add_shares: np.ndarray | None = None
    add_value: np.ndarray | None = None
    add_percent: np.ndarray | None = None


class OrderBook:
    """Open orders by asset and the record of every order."""

    def __init__(self, n_assets: int, capacity: int = 1024) -> None:
        self.open_id = np.full(n_assets, -1, dtype=np.int64)
        self.due_bar = np.full(n_assets, NEVER, dtype=np.int64)
        self.target_kind = np.full(n_assets, -1, dtype=np.int8)
        self.target_amount = np.zeros(n_assets)
        self.add_shares = np.zeros(n_assets)
        self.add_value = np.zeros(n_assets)
        self.add_percent = np.zeros(n_assets)
        self.n_open = 0
        self.has_deltas = False
        self._n = 0
        self._records = {
            name: np.full(capacity, empty, dtype=dtype)
            for name, (dtype, empty) in _RECORD_FIELDS.items()
        }

    @property
    def n_orders(self) -> int:
        return self._n

    def record(self, name: str) -> np.ndarray:
        """One field of every order placed so far, indexed by order id (read-only)."""
        view = self._records[name][: self._n]
        view.flags.writeable = False
        return view

    def submit(
        self, bar: int, due_bar: int, assets: np.ndarray, kind: int, amounts: np.ndarray
    ) -> np.ndarray:
        """Place one order of `kind` per asset; returns the new order ids.

        `assets` (int64, unique) and `amounts` (float64) are aligned arrays.
        """
        n = len(assets)
        ids = np.arange(self._n, self._n + n, dtype=np.int64)
        self._grow(self._n + n)
        rec = self._records
        sl = slice(self._n, self._n + n)
        rec["created_bar"][sl] = bar
        rec["asset"][sl] = assets
        rec["kind"][sl] = kind
        rec["amount"][sl] = amounts
        self._n += n

        previous = self.open_id[assets]
        had = (previous >= 0).nonzero()[0]
        if len(had):
            old = previous[had]
            rec["status"][old] = MERGED if kind < TARGET_SHARES else REPLACED
            rec["reason"][old] = SUPERSEDED
            rec["superseded_by"][old] = ids[had]
        self.n_open += n - len(had)

        if kind >= TARGET_SHARES:
            self.target_kind[assets] = kind
            self.target_amount[assets] = amounts
            if self.has_deltas:
                self.add_shares[assets] = 0.0
                self.add_value[assets] = 0.0
                self.add_percent[assets] = 0.0
        else:
            self.has_deltas = True
        if kind == SHARES:
            self.add_shares[assets] += amounts
        elif kind == VALUE:
            self.add_value[assets] += amounts
        elif kind == PERCENT:
            self.add_percent[assets] += amounts
        self.open_id[assets] = ids
        self.due_bar[assets] = due_bar
        return ids

    def open_orders(self, assets: np.ndarray) -> OpenOrders:
        """The open orders of `assets` as aligned arrays."""
        if not self.has_deltas:
            return OpenOrders(self.target_kind[assets], self.target_amount[assets])
        return OpenOrders(
            self.target_kind[assets], self.target_amount[assets], self.add_shares[assets],
            self.add_value[assets], self.add_percent[assets],
        )

    def due(self, bar: int, can_fill: np.ndarray) -> np.ndarray:
        """Assets whose open order is due at `bar` and that can fill now (ascending)."""
        if self.n_open == 0:
            return np.empty(0, dtype=np.int64)
        return ((self.due_bar <= bar) & can_fill).nonzero()[0]

    def close(
        self,
        bar: int,
        assets: np.ndarray,
        status: np.ndarray,
        reason: np.ndarray,
        filled_quantity: np.ndarray,
    ) -> None:
        """Close the open orders of `assets` with their outcome and clear their slots."""
        ids = self.open_id[assets]
        rec = self._records
        rec["status"][ids] = status
        rec["reason"][ids] = reason
        rec["filled_quantity"][ids] += filled_quantity
        rec["filled_bar"][ids] = np.where(status == FILLED, bar, -1)
        self.open_id[assets] = -1
        self.due_bar[assets] = NEVER
        self.target_kind[assets] = -1
        if self.has_deltas:
            self.add_shares[assets] = 0.0
            self.add_value[assets] = 0.0
            self.add_percent[assets] = 0.0
        self.n_open -= len(assets)

    def fill_part(self, bar: int, assets: np.ndarray, filled_quantity: np.ndarray) -> None:
        """Record part of `assets`' open share orders as filled; the rest stays open."""
        ids = self.open_id[assets]
        self._records["filled_quantity"][ids] += filled_quantity
        self._records["filled_bar"][ids] = bar
        self.add_shares[assets] -= filled_quantity

    def _grow(self, needed: int) -> None:
        capacity = len(self._records["asset"])
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        for name, column in self._records.items():
            grown = np.full(capacity, _RECORD_FIELDS[name][1], dtype=column.dtype)
            grown[: self._n] = column[: self._n]
            self._records[name] = grown
