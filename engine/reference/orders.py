"""Decisions and open orders in the reference: what a strategy asked for, and what waits.

A decision is a list of calls made at one bar's close, in the order the strategy made
them: `Call(kind, asset, amount)` for one order method, `Rebalance(weights)` for a move to
target weights. Each asset has at most one open order: a target replaces it, a delta is
added to it (docs/semantics.md, "Orders").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DELTA_KINDS = ("shares", "value", "percent")
TARGET_KINDS = ("target_shares", "target_value", "target_percent")
KINDS = DELTA_KINDS + TARGET_KINDS


@dataclass(frozen=True)
class Call:
    """One order method called at a decision: `kind` of `amount` for `asset`."""

    kind: str
    asset: str
    amount: float


@dataclass(frozen=True)
class Rebalance:
    """`rebalance(weights)`: targets for the weights, 0 for what is held or open otherwise."""

    weights: dict[str, float] = field(default_factory=dict)


class Order:
    """An open order: an optional target plus the deltas added to it since.

    `id` is the id of the last call placed on the asset (the one the fill is booked to),
    `created` that call's bar and `due` the first bar the order may fill at. Orders are
    values: a change makes a new one.
    """

    __slots__ = ("asset", "created", "due", "id", "percent", "shares", "target_amount",
                 "target_kind", "value")

    def __init__(self, id: int, asset: str, created: int, due: int,
                 target_kind: str | None = None, target_amount: float = 0.0,
                 shares: float = 0.0, value: float = 0.0, percent: float = 0.0) -> None:
        self.id, self.asset, self.created, self.due = id, asset, created, due
        self.target_kind, self.target_amount = target_kind, target_amount
        self.shares, self.value, self.percent = shares, value, percent

    @classmethod
    def new(cls, call_id: int, asset: str, bar: int, due: int, kind: str,
            amount: float) -> Order:
        if kind in TARGET_KINDS:
            return cls(call_id, asset, bar, due, kind, amount)
        return cls(call_id, asset, bar, due, None, 0.0, amount if kind == "shares" else 0.0,
                   amount if kind == "value" else 0.0, amount if kind == "percent" else 0.0)

    def merged(self, call_id: int, bar: int, due: int, kind: str, amount: float) -> Order:
        """This order after a new call on its asset: a target replaces, a delta adds."""
        if kind in TARGET_KINDS:
            return Order(call_id, self.asset, bar, due, kind, amount)
        parts = {"shares": self.shares, "value": self.value, "percent": self.percent}
        parts[kind] += amount
        return Order(call_id, self.asset, bar, due, self.target_kind, self.target_amount,
                     **parts)

    def less(self, shares: float) -> Order:
        """What is left of a share order after `shares` of it filled."""
        return Order(self.id, self.asset, self.created, self.due, shares=self.shares - shares)

    def requested(self, position: float, book_value: float, price: float) -> tuple[float, float]:
        """(share delta, approximate cash value) of this order at `price` and `book_value`.

        The cash value is the sequencing key: `target value − position × price` plus what
        the deltas add, in this arithmetic (not `delta × price`) so ties break as
        vectorbt's `call_seq='auto'` does.
        """
        delta = value = 0.0
        kind = self.target_kind
        if kind == "target_percent":
            target_value = self.target_amount * book_value
            delta = target_value / price - position
            value = target_value - position * price
        elif kind == "target_value":
            delta = self.target_amount / price - position
            value = self.target_amount - position * price
        elif kind == "target_shares":
            delta = self.target_amount - position
            value = self.target_amount * price - position * price
        if self.shares or self.value or self.percent:
            delta = delta + self.shares + self.value / price + (self.percent * book_value) / price
            value = value + self.shares * price + self.value + self.percent * book_value
        return delta, value


def whole_shares(amount: float) -> float:
    """Truncate toward zero unless within 1e-4 of a whole share (then round): zipline's."""
    nearest = float(round(amount))
    return nearest if abs(amount - nearest) <= 1e-4 else float(math.trunc(amount))
