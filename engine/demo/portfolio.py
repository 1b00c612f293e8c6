"""A portfolio: cash and non-zero positions, changed only by `apply` (one fill) and
`charge` (a fee taken once more).

Sums within `max(1e-9 × the larger term, 1e-12)` of zero are zero (docs/semantics.md), so a
position sold in full is gone and not float noise.
"""

from __future__ import annotations

from engine.demo.records import Fill


def settle(a: float, b: float) -> float:
    """`a + b`, exactly 0.0 when it is float noise relative to its terms."""
    total = a + b
    limit = max(1e-9 * max(abs(a), abs(b)), 1e-12)
    return 0.0 if -limit <= total <= limit else total


class Portfolio:
    """Cash and positions; `value` marks them at given prices."""

    def __init__(self, cash: float) -> None:
        self.cash = float(cash)
        self.positions: dict[str, float] = {}

    def get_position(self, asset: str) -> float:
        return self.positions.get(asset, 0.0)

    def apply(self, fill: Fill) -> None:
        """Book one fill: its value and fee leave (or enter) cash, its quantity the position."""
        self.cash = settle(self.cash, -fill.quantity * fill.price - fill.fee)
        after = settle(self.positions.get(fill.asset, 0.0), fill.quantity)
        if after == 0.0:
            self.positions.pop(fill.asset, None)
        else:
            self.positions[fill.asset] = after

    def charge(self, fee: float) -> None:
        self.cash = settle(self.cash, -fee)

    def value(self, prices: dict[str, float], fallback: dict[str, float] | None = None
              ) -> float:
        """Cash plus every position at `prices` (or `fallback` where `prices` has none),
        added in asset order."""
        total = self.cash
        for asset in sorted(self.positions):
            price = prices.get(asset)
            if price is None and fallback is not None:
                price = fallback[asset]
            total += self.positions[asset] * price
        return total
