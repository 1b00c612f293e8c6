"""Faults to inject into the corpus loop (`loop.Broker`), one class per way of going wrong.

Each fault acts on the rebalances `start ≤ k < stop` (k counts decisions from 0; `stop`
None: to the end) and overrides only the hooks it needs; the broker calls a fault's hooks
only while it is active. `cause` is the trade-gap cause the fault is, by construction;
negative controls (`cause = "unexplained"`) are faults outside the analyzer's vocabulary.
`in_books` marks a fault that changes only the books (cash or positions), not the fills
of its own batch: its onset is the bar of its first batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from tests.gap_corpus.loop import Costs, Order, Ticket


@dataclass(frozen=True)
class Fault:
    start: int = 0
    stop: int | None = None
    cause: ClassVar[str] = ""
    in_books: ClassVar[bool] = False

    @property
    def words(self) -> str:
        span = f"from rebalance {self.start}"
        if self.stop == self.start + 1:
            span = f"at rebalance {self.start} only"
        elif self.stop is not None:
            span += f" to {self.stop - 1}"
        return f"{(self.__doc__ or '').splitlines()[0].rstrip('.')} {span}"

    # Hooks, in the order the broker calls them; each returns its input unchanged here.
    def schedule(self, k: int, delay: int, point: str) -> tuple[int, str]:
        return delay, point

    def targets(self, k: int, weights: dict[str, float]) -> dict[str, float]:
        return weights

    def assets(self, k: int, names: list[str], weights: dict[str, float],
               held: dict[str, float]) -> list[str]:
        return names

    def quote(self, k: int, asset: str, price: float) -> float:
        return price

    def position(self, k: int, asset: str, weight: float, read: float, stale: float) -> float:
        return read

    def sequence(self, k: int, orders: list[Order]) -> list[Order]:
        return orders

    def costs(self, k: int, costs: Costs) -> Costs:
        return costs

    def shares(self, k: int, order: Order, shares: float, done: list[Ticket]) -> float:
        return shares

    def lot(self, k: int) -> float | None:
        return None

    def fees_in_cash(self, k: int) -> bool:
        return True

    def ticket(self, k: int, ticket: Ticket, costs: Costs) -> Ticket:
        return ticket

    def extra(self, k: int, bar: int, done: list[Ticket], broker, point: str,
              costs: Costs) -> list[Ticket]:
        return []

    def postings(self, k: int) -> int:
        return 1

    def postings_as_executed(self, k: int) -> int:
        return 1

    def at_open(self, bar: int, broker) -> list[Ticket]:
        """Orders no decision made, filled at this bar's open before its batch (a risk
        manager's); the broker books and logs them."""
        return []

    def rows(self, k: int) -> int:
        return 1


# Duplicates


@dataclass(frozen=True)
class BookedTwice(Fault):
    """Fills booked twice in the ledger, logged once."""

    cause: ClassVar[str] = "duplicate_fill"
    in_books: ClassVar[bool] = True

    def postings(self, k: int) -> int:
        return 2


@dataclass(frozen=True)
class BookedTwiceAsExecuted(Fault):
    """Fills applied twice as they execute (the batch's later orders see it), logged once."""

    cause: ClassVar[str] = "duplicate_fill"

    def postings(self, k: int) -> int:
        return 2

    def postings_as_executed(self, k: int) -> int:
        return 2


@dataclass(frozen=True)
class RowLoggedTwice(Fault):
    """Every fill logged twice (a duplicated row) and booked once."""

    cause: ClassVar[str] = "duplicate_fill"

    def rows(self, k: int) -> int:
        return 2


@dataclass(frozen=True)
class LoggedTwice(Fault):
    """Every fill logged and booked twice (repeated rows)."""

    cause: ClassVar[str] = "duplicate_fill"

    def postings(self, k: int) -> int:
        return 2

    def rows(self, k: int) -> int:
        return 2


# Accumulation and stale positions


@dataclass(frozen=True)
class WholeTarget(Fault):
    """Whole target bought on held assets (exits still sold)."""

    cause: ClassVar[str] = "accumulation"

    def position(self, k, asset, weight, read, stale):
        return 0.0 if weight != 0.0 else read


@dataclass(frozen=True)
class ExitsLost(Fault):
    """Exits lost: targets of 0 never ordered."""

    cause: ClassVar[str] = "accumulation"

    def assets(self, k, names, weights, held):
        return [a for a in names if weights.get(a, 0.0) != 0.0]


@dataclass(frozen=True)
class ZeroPosition(Fault):
    """Positions read as zero."""

    cause: ClassVar[str] = "accumulation"

    def position(self, k, asset, weight, read, stale):
        return 0.0


@dataclass(frozen=True)
class StalePosition(Fault):
    """Orders sized from the positions before the previous batch."""

    cause: ClassVar[str] = "stale_position"

    def position(self, k, asset, weight, read, stale):
        return stale


# Timing


@dataclass(frozen=True)
class ShiftTwice(Fault):
    """Fills two bars after the decision (a shift applied twice)."""

    cause: ClassVar[str] = "timing"

    def schedule(self, k, delay, point):
        return 2, point


@dataclass(frozen=True)
class LookAhead(Fault):
    """Fills at the decision bar's own close."""

    cause: ClassVar[str] = "look_ahead"

    def schedule(self, k, delay, point):
        return 0, "close"


@dataclass(frozen=True)
class CloseFill(Fault):
    """Fills at the close of the fill bar instead of its open."""

    cause: ClassVar[str] = "timing"

    def schedule(self, k, delay, point):
        return delay, "close"


# Sequencing


@dataclass(frozen=True)
class BuysFirst(Fault):
    """Buys executed before sells."""

    cause: ClassVar[str] = "sequencing"

    def sequence(self, k, orders):
        return [o for o in orders if o.shares > 0] + [o for o in orders if not o.shares > 0]


@dataclass(frozen=True)
class ColumnOrder(Fault):
    """Orders executed in column (asset) order."""

    cause: ClassVar[str] = "sequencing"

    def sequence(self, k, orders):
        return sorted(orders, key=lambda o: o.asset)


# Costs and prices


@dataclass(frozen=True)
class FeeRate(Fault):
    """Fees at another rate."""

    rate: float = 0.002
    cause: ClassVar[str] = "fee"

    def costs(self, k, costs):
        return replace(costs, fees=self.rate)


@dataclass(frozen=True)
class FeesOutOfCash(Fault):
    """Fees logged but left out of the cash."""

    cause: ClassVar[str] = "sizing_basis"
    in_books: ClassVar[bool] = True

    def fees_in_cash(self, k):
        return False


@dataclass(frozen=True)
class OneOffFee(Fault):
    """One fill charged three times its fee."""

    asset: str = ""
    factor: float = 3.0
    cause: ClassVar[str] = "fee"

    def ticket(self, k, ticket, costs):
        if ticket.asset != self.asset:
            return ticket
        fee = ticket.fee * self.factor
        return replace(ticket, fee=fee, flow=ticket.flow - (fee - ticket.fee))


@dataclass(frozen=True)
class OneOffQuote(Fault):
    """One asset's price 1% off at one bar (sized and filled at it)."""

    asset: str = ""
    factor: float = 1.01
    cause: ClassVar[str] = "fill_price"

    def quote(self, k, asset, price):
        return price * self.factor if asset == self.asset else price


@dataclass(frozen=True)
class OneOffFill(Fault):
    """One buy filled 1% above the price it was sized at."""

    asset: str = ""
    factor: float = 1.01
    cause: ClassVar[str] = "fill_price"

    def ticket(self, k, ticket, costs):
        if ticket.asset != self.asset:
            return ticket
        price = ticket.price * self.factor
        fee = abs(ticket.quantity) * price * costs.fees + costs.fixed_fee
        return replace(ticket, price=price, fee=fee,
                       flow=-(ticket.quantity * price) - fee)


# Rounding


@dataclass(frozen=True)
class Lots(Fault):
    """Orders floored to whole lots."""

    size: float = 1.0
    cause: ClassVar[str] = "rounding"

    def lot(self, k):
        return self.size


# Negative controls: outside the vocabulary


@dataclass(frozen=True)
class SizingBias(Fault):
    """Targets sized 1% too large."""

    factor: float = 1.01
    cause: ClassVar[str] = "unexplained"

    def targets(self, k, weights):
        return {a: w * self.factor for a, w in weights.items()}


@dataclass(frozen=True)
class QuantityTimes(Fault):
    """One asset's order × 1.5."""

    asset: str = ""
    factor: float = 1.5
    cause: ClassVar[str] = "unexplained"

    def shares(self, k, order, shares, done):
        return shares * self.factor if order.asset == self.asset else shares


@dataclass(frozen=True)
class LostBuy(Fault):
    """One buy silently lost (the asset has a bar)."""

    asset: str = ""
    cause: ClassVar[str] = "unexplained"

    def shares(self, k, order, shares, done):
        return 0.0 if order.asset == self.asset and shares > 0 else shares


@dataclass(frozen=True)
class ExtraFill(Fault):
    """A fill of an asset nobody decided."""

    asset: str = ""
    quantity: float = 25.0
    cause: ClassVar[str] = "unexplained"

    def extra(self, k, bar, done, broker, point, costs):
        j = broker.tape.column[self.asset]
        price = broker.quote(bar, j, point, [], k)
        fee = self.quantity * price * costs.fees + costs.fixed_fee
        return [Ticket(bar, self.asset, self.quantity, price, fee,
                       -(self.quantity * price) - fee)]


@dataclass(frozen=True)
class PartialExit(Fault):
    """Exits sell only 90% of the position."""

    share: float = 0.9
    cause: ClassVar[str] = "unexplained"

    def shares(self, k, order, shares, done):
        return shares * self.share if order.weight == 0.0 and shares < 0 else shares


# Orders no decision made


@dataclass(frozen=True)
class StopLossManager(Fault):
    """A risk manager selling a position at the next open once a close is `level` below
    its entry's fill price."""

    level: float = 0.1
    cause: ClassVar[str] = "exit_rule"

    def at_open(self, bar: int, broker) -> list[Ticket]:
        tape, out = broker.tape, []
        entries: dict[str, float] = {}
        held: dict[str, float] = {}
        for ticket in broker.journal:
            before = held.get(ticket.asset, 0.0)
            held[ticket.asset] = before + ticket.quantity
            if before <= 1e-9 < held[ticket.asset]:
                entries[ticket.asset] = ticket.price
        for asset, position in sorted(broker.ledger.holdings().items()):
            j = tape.column[asset]
            close, open_ = tape.close[bar - 1, j] if bar else np.nan, tape.open[bar, j]
            if position <= 0 or np.isnan(close) or np.isnan(open_) or asset not in entries:
                continue
            if close <= entries[asset] * (1 - self.level):
                ticket = broker.fill(bar, asset, -position, open_, broker.ledger.cash,
                                     broker.costs, [], 0)
                if ticket is not None:
                    out.append(ticket)
        return out
