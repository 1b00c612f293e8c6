"""What a run records beside its fills: every order's fate and the equity after each bar.

A run that makes the reference's result keeps a `Journal`; a replay stepped from another
engine's book (the gap analysis) keeps an `Unrecorded` one: it reads only the fills and the
book, and its order ids (exits numbered from a given id) are not a run's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class OrderRecord:
    """One order as the result reports it; `filled_at` is the bar of its last fill."""

    id: int
    created: int  # the bar it was placed at
    asset: str
    kind: str
    amount: float
    status: str = "open"
    reason: str | None = None
    filled_at: int | None = None
    filled_quantity: float = 0.0


class Journal:
    """Every order by id (in the order placed) and (cash, positions value) after each bar."""

    def __init__(self) -> None:
        self.orders: dict[int, OrderRecord] = {}
        self.equity: list[tuple[float, float]] = []

    def opened(self, order_id: int, t: int, asset: str, kind: str, amount: float,
               reason: str | None = None) -> None:
        self.orders[order_id] = OrderRecord(order_id, t, asset, kind, amount, reason=reason)

    def refused(self, order_id: int, t: int, asset: str, kind: str, amount: float,
                reason: str) -> None:
        self.orders[order_id] = OrderRecord(order_id, t, asset, kind, amount, "rejected",
                                            reason)

    def settled(self, order_id: int, t: int, status: str, reason: str | None,
                quantity: float) -> None:
        """An order ended (`status`): its reason, its last fill's bar if it filled."""
        record = self.orders[order_id]
        record.status, record.reason = status, reason
        record.filled_at = t if status == "filled" else None
        record.filled_quantity += quantity

    def filled_part(self, order_id: int, t: int, quantity: float) -> None:
        """Part of an order filled at bar `t`; the rest stays open."""
        record = self.orders[order_id]
        record.filled_at = t
        record.filled_quantity += quantity

    def folded(self, order_id: int, into: int, replaced: bool) -> None:
        """A new order of the same asset replaced (a target) or absorbed (a delta) it."""
        record = self.orders[order_id]
        record.status = "replaced" if replaced else "merged"
        record.reason = f"{'replaced by' if replaced else 'merged into'} order {into}"

    def marked(self, t: int, cash: float, positions_value: Callable[[int], float]) -> None:
        """The bar `t` ended with `cash` and positions worth `positions_value(t)`."""
        self.equity.append((cash, positions_value(t)))


class Unrecorded(Journal):
    """A journal that keeps nothing (a replay reads only its fills and its book)."""

    def opened(self, order_id: int, t: int, asset: str, kind: str, amount: float,
               reason: str | None = None) -> None:
        pass

    def refused(self, order_id: int, t: int, asset: str, kind: str, amount: float,
                reason: str) -> None:
        pass

    def settled(self, order_id: int, t: int, status: str, reason: str | None,
                quantity: float) -> None:
        pass

    def filled_part(self, order_id: int, t: int, quantity: float) -> None:
        pass

    def folded(self, order_id: int, into: int, replaced: bool) -> None:
        pass

    def marked(self, t: int, cash: float, positions_value: Callable[[int], float]) -> None:
        pass
