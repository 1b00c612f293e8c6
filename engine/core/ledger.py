"""The ledger: the one owner of cash, positions and the journal of fills.

Positions are a float array over the asset index, cash one float, and the journal holds
every fill booked (`FILL_DT`), in execution order. `apply_fills_nb` is the only code that
changes any of them; it books a batch of fills sequentially, so two fills of one asset in
a batch both count. Everyone else reads copies that cannot be written (`sealed`).
"""

from __future__ import annotations

import numpy as np

from engine.core.kernels import ABS_TOL, REL_TOL, cancels, kernel, read_only
from engine.core.records import FILL_DT, LedgerArrays
from engine.data.market import sealed


@kernel
def add_position(before: float, change: float) -> float:
    """`before + change`, exactly 0 when a reducing change cancels the position."""
    after = before + change
    if before * change < 0 and cancels(before, change, after):
        return 0.0
    return after


@kernel
def apply_fills_nb(cash, positions, journal, n_fills, bar, assets, quantity, price, fee,
                   order_id, count):
    """Book the first `count` fills of a batch at `bar`, in execution order.

    positions += quantity (fill by fill); cash −= quantity × price + fee, summed in order
    from the cash before, and exactly 0 when within 1e-9 of the largest flow. The caller
    reserves room in the journal.
    """
    if count == 0:
        return
    total = cash[0]
    scale = abs(total)
    n = n_fills[0]
    for i in range(count):
        asset = assets[i]
        positions[asset] = add_position(positions[asset], quantity[i])
        flow = -(quantity[i] * price[i]) - fee[i]
        total += flow
        scale = max(scale, abs(flow))
        row = journal[n + i]
        row["bar"] = bar
        row["asset"] = asset
        row["quantity"] = quantity[i]
        row["price"] = price[i]
        row["fee"] = fee[i]
        row["order_id"] = order_id[i]
    n_fills[0] = n + count
    cash[0] = 0.0 if abs(total) <= max(REL_TOL * scale, ABS_TOL) else total


@kernel
def book_value(cash: float, positions, prices) -> float:
    """Cash plus held positions at `prices`, added one by one in asset order from cash.

    The sequential order makes the value bit-equal to a plain loop's (and vectorbt's).
    """
    value = cash
    for j in range(len(positions)):
        if positions[j] != 0:
            value += positions[j] * prices[j]
    return value


@kernel
def positions_value(positions, prices) -> float:
    """Σ position × price over held assets, in asset order from 0 (the equity mark)."""
    value = 0.0
    for j in range(len(positions)):
        if positions[j] != 0:
            value += positions[j] * prices[j]
    return value


class Ledger:
    """Cash, positions and fills of one portfolio, changed only by `apply_fills_nb`."""

    __slots__ = ("_cash", "_journal", "_n_fills", "_positions")

    def __init__(self, n_assets: int, initial_cash: float, capacity: int = 1024) -> None:
        self._cash = np.array([float(initial_cash)])
        self._positions = np.zeros(n_assets, dtype=np.float64)
        self._journal = np.empty(capacity, dtype=FILL_DT)
        self._n_fills = np.zeros(1, dtype=np.int64)

    @property
    def cash(self) -> float:
        return float(self._cash[0])

    @property
    def positions(self) -> np.ndarray:
        """Shares held by asset index (a sealed copy)."""
        return sealed(self._positions)

    @property
    def n_fills(self) -> int:
        return int(self._n_fills[0])

    @property
    def fills(self) -> np.ndarray:
        """Every fill booked so far (`FILL_DT` records, a sealed copy)."""
        return sealed(self._journal[: self.n_fills])

    def view(self) -> np.ndarray:
        """Every fill booked so far as a read-only view of the records, not a copy: for
        one pass that reads them at once (the result tables')."""
        return read_only(self._journal[: self.n_fills])

    def value(self, prices: np.ndarray) -> float:
        """Cash plus held positions at `prices` (see `book_value`)."""
        return book_value(self.cash, self._positions, np.asarray(prices, dtype=np.float64))

    def reserve(self, room: int) -> None:
        """Make room for `room` more fills in the journal."""
        needed = self.n_fills + room
        if needed > len(self._journal):
            grown = np.empty(max(needed, 2 * len(self._journal)), dtype=FILL_DT)
            grown[: self.n_fills] = self._journal[: self.n_fills]
            self._journal = grown

    def apply_fills(self, bar: int, assets, quantity, price, fee, order_id=None) -> None:
        """Book fills given as aligned arrays (see `apply_fills_nb`)."""
        assets = np.asarray(assets, dtype=np.int64)
        count = len(assets)
        order_id = np.full(count, -1, np.int64) if order_id is None else order_id
        self.reserve(count)
        apply_fills_nb(self._cash, self._positions, self._journal, self._n_fills, bar, assets,
                       np.asarray(quantity, dtype=np.float64), np.asarray(price, np.float64),
                       np.asarray(fee, np.float64), np.asarray(order_id, np.int64), count)

    def state(self) -> LedgerArrays:
        """The arrays the compiled loop hands to `apply_fills_nb` (cash, positions, journal,
        count); nothing else writes them."""
        return LedgerArrays(self._cash, self._positions, self._journal, self._n_fills)
