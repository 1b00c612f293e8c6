"""The ledger: the one owner of cash and positions.

Positions are a float array over the asset index; cash is one float. `apply_fills` is the
only function that changes either; everyone else reads `cash` and a read-only view of
`positions`.
"""

from __future__ import annotations

import numpy as np

REL_TOL = 1e-9
ABS_TOL = 1e-12


def cancels(before: np.ndarray, change: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Where `total` (= before + change) is float dust: the ledger's rule for exactly zero.

    `|total| ≤ max(1e-9 × max(|before|, |change|), 1e-12)`.
    """
    scale = np.maximum(np.abs(before), np.abs(change))
    scale *= REL_TOL
    np.maximum(scale, ABS_TOL, out=scale)
    return np.abs(total) <= scale


def snap_to_zero(before: np.ndarray, change: np.ndarray) -> np.ndarray:
    """`before + change`, set to exactly 0 where the two cancel within tolerance.

    Closed positions and spent cash stay at exactly zero instead of float dust.
    """
    total = before + change
    total[cancels(before, change, total)] = 0.0
    return total


class Ledger:
    """Cash and positions of one portfolio, changed only by `apply_fills`."""

    __slots__ = ("_cash", "_positions", "_view")

    def __init__(self, n_assets: int, initial_cash: float) -> None:
        self._cash = float(initial_cash)
        self._positions = np.zeros(n_assets, dtype=np.float64)
        self._view = self._positions.view()
        self._view.flags.writeable = False

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def positions(self) -> np.ndarray:
        """Read-only view of the positions, in shares, by asset index."""
        return self._view

    def value(self, prices: np.ndarray) -> float:
        """Cash plus held positions at `prices`, added one by one in asset order from cash.

        The sequential order makes the value bit-equal to a plain loop's (and vectorbt's).
        """
        terms = np.zeros(len(self._positions) + 1)
        terms[0] = self._cash
        np.multiply(self._positions, prices, out=terms[1:], where=self._positions != 0)
        return float(terms.cumsum()[-1])

    def apply_fills(
        self, assets: np.ndarray, quantity: np.ndarray, price: np.ndarray, fee: np.ndarray
    ) -> None:
        """Book filled orders: positions += quantity, cash -= quantity × price + fee.

        `assets` holds each asset at most once, and the rows are in execution order. Cash
        is summed in that order; a result within 1e-9 of the largest flow is exactly 0.
        """
        if len(assets) == 0:
            return
        before = self._positions[assets]
        after = before + quantity
        closing = (before * quantity < 0).nonzero()[0]
        if len(closing):
            after[closing] = snap_to_zero(before[closing], quantity[closing])
        self._positions[assets] = after
        flows = np.empty(len(assets) + 1)
        flows[0] = self._cash
        np.subtract(-(quantity * price), fee, out=flows[1:])
        cash = float(np.cumsum(flows)[-1])
        scale = max(abs(self._cash), float(np.abs(flows[1:]).max()))
        self._cash = 0.0 if abs(cash) <= max(REL_TOL * scale, ABS_TOL) else cash
