"""Wrong phase order: orders are sized from the positions held before the previous batch.

The loop snapshots the positions at the start of each fill batch, but sizing reads the
snapshot taken at the start of the batch before, so the latest batch of fills is missed.
Execution (the long-only cap on sells) still sees the real positions.
"""

from __future__ import annotations

import contextlib

import numpy as np

from engine.core.book import OpenOrders, OrderBook
from engine.core.execution import size_orders
from engine.core.ledger import Ledger
from tests.gap_zoo import run_under


class _Stale:
    """What the broken loop remembers between batches."""

    def __init__(self) -> None:
        self.ledger: Ledger | None = None
        self.assets = np.empty(0, dtype=np.int64)
        self.basis = np.empty(0)
        self.before_last_batch = np.empty(0)


def patched_classes(state: _Stale) -> tuple[type[Ledger], type[OrderBook]]:
    """A ledger that registers itself and an order book that snapshots at each batch."""

    class RegisteredLedger(Ledger):
        def __init__(self, n_assets: int, initial_cash: float) -> None:
            super().__init__(n_assets, initial_cash)
            state.ledger = self
            state.before_last_batch = np.zeros(n_assets)

    class SnapshottingBook(OrderBook):
        def due(self, bar: int, can_fill: np.ndarray) -> np.ndarray:
            assets = super().due(bar, can_fill)
            if len(assets) and state.ledger is not None:
                state.assets = assets
                state.basis = state.before_last_batch
                state.before_last_batch = state.ledger.positions.copy()
            return assets

    return RegisteredLedger, SnapshottingBook


@contextlib.contextmanager
def patched():
    """The loop sizes orders from stale positions while this is active."""
    from unittest import mock

    state = _Stale()
    ledger, book = patched_classes(state)

    def size_from_stale(
        orders: OpenOrders, position: np.ndarray, book_value: float, price: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return size_orders(orders, state.basis[state.assets], book_value, price)

    with (
        mock.patch("engine.core.loop.Ledger", ledger),
        mock.patch("engine.core.loop.OrderBook", book),
        mock.patch("engine.core.loop.size_orders", size_from_stale),
    ):
        yield


run = run_under(patched)
