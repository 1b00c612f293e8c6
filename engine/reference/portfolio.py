"""Portfolio rules, checked as each decision places its orders (docs/semantics.md).

A decision starts a `Plan`: the equity and the positions it expects (held, plus the open
entries), estimated at the decision close. Each order it places is checked against the
plan (`Plan.breaks`) and, if allowed, moves the plan's position of its asset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.reference.bars import CLOSE, Bars
from engine.reference.book import Book
from engine.reference.orders import TARGET_KINDS
from engine.reference.resting import Resting
from engine.reference.rules import Rules

TOLERANCE = 1e-9


@dataclass
class Plan:
    """Positions as planned at a decision made with the closes of bar `known`."""

    equity: float
    known: int
    planned: dict[str, float]
    drawdown: float

    @classmethod
    def at_decision(cls, book: Book, resting: list[Resting], peak: float, equity: float,
                    known: int) -> Plan:
        """Held, plus the open entries (resting orders that are neither bracket children
        nor rule exits); the drawdown from `peak` (the equity peak so far)."""
        planned = dict(book.positions)
        for order in resting:
            if order.status == "open" and order.parent is None and not order.close_position:
                planned[order.asset] = planned.get(order.asset, 0.0) + order.quantity
        peak = max(peak, equity)
        return cls(equity, known, planned, 1.0 - equity / peak if peak > 0 else 0.0)

    def breaks(self, bars: Bars, rules: Rules, asset: str, kind: str, amount: float
               ) -> str | None:
        """The portfolio rule an order would break (None: none), estimated at the decision
        close; an order that does not increase the asset's exposure breaks none."""
        close = bars.last(self.known, asset, CLOSE)
        equity = self.equity
        planned = self.planned
        before = planned.get(asset, 0.0)
        if math.isnan(close) or equity <= 0:
            return None
        if kind in TARGET_KINDS:
            after = (amount if kind == "target_shares" else
                     amount / close if kind == "target_value" else amount * equity / close)
        else:
            after = before + (amount if kind == "shares" else amount / close
                              if kind == "value" else amount * equity / close)
        if abs(after) <= abs(before) and before * after >= 0:
            planned[asset] = after
            return None
        broken = None
        if rules.halt_drawdown and self.drawdown >= rules.halt_drawdown - TOLERANCE:
            broken = "halt_drawdown"
        elif rules.max_positions and before == 0.0 and sum(
                1 for q in planned.values() if q != 0.0) >= rules.max_positions:
            broken = "max_positions"
        elif rules.max_weight and abs(after) * close / equity > rules.max_weight + TOLERANCE:
            broken = "max_weight"
        elif rules.max_gross:
            last = bars.last
            gross = abs(after) * close + sum(
                abs(q) * last(self.known, a, CLOSE) for a, q in planned.items()
                if a != asset and q != 0.0)
            if gross / equity > rules.max_gross + TOLERANCE:
                broken = "max_gross"
        if broken is None:
            planned[asset] = after
        return broken
