"""What an engine believes (`Book`), and the records the reference loop passes around."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.reference.execution import add
from engine.reference.orders import Order

Fill = tuple[int, str, float, float, float, int]  # bar, asset, quantity, price, fee, order id
Overrides = dict[str, tuple[float | None, float | None, bool]]  # asset → (price, fee, sized)


@dataclass(frozen=True)
class Place:
    """One row of an order table (`resting.order_table_rows`), placed at its decision."""

    row: dict


@dataclass
class Book:
    """What an engine believes: cash, non-zero positions and open orders.

    `history` holds the positions before each of the last few fill batches, newest last.
    """

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    pending: dict[str, Order] = field(default_factory=dict)  # the open order of each asset
    history: tuple[dict[str, float], ...] = ()
    unnetted: tuple[Order, ...] = ()  # older open orders an engine without netting keeps
    seen: int = -1  # the last decision bar acted on (an engine that turns late skips none twice)

    def copy(self) -> Book:
        return Book(self.cash, dict(self.positions), dict(self.pending), self.history,
                    self.unnetted, self.seen)

    def open_orders(self) -> list[Order]:
        return [*self.unnetted, *self.pending.values()]

    def value(self, prices: dict[str, float]) -> float:
        """Cash plus every position at `prices`, added in asset order from cash."""
        total = self.cash
        for asset in sorted(self.positions):
            total += self.positions[asset] * prices[asset]
        return total

    def move(self, asset: str, quantity: float) -> None:
        """Add `quantity` to a position; a position that becomes exactly 0 is dropped."""
        positions = self.positions
        after = add(positions.get(asset, 0.0), quantity)
        if after == 0.0:
            positions.pop(asset, None)
        else:
            positions[asset] = after

    def remove(self, order: Order) -> None:
        """Take an open order out of the book."""
        if self.pending.get(order.asset) is order:
            del self.pending[order.asset]
        else:
            self.unnetted = tuple(o for o in self.unnetted if o is not order)
