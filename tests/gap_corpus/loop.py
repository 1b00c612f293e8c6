"""A plain per-order rebalancing loop, written apart from the engine and the reference.

It imports nothing from `engine`: it is a third, independent reading of vectorbt 1.2's
`Portfolio.from_orders(size_type='targetpercent', cash_sharing=True, call_seq='auto',
price=open, min_size=0)` with the weights on the row after the decision (NOTES §1), so that
the corpus's B sides do not share the analyzer's oracle or its formulas.

Style: a calendar of scheduled batches drives a `Broker`; the broker turns one decision's
weights into order tickets, executes them one by one against a working cash, and settles
the filled tickets into a `Ledger` of FIFO lots (position = the sum of an asset's lots) and
into a journal (the fill log). Without faults, per batch:

1. the book is valued once, at each asset's quote at the fill point (the last quote seen
   for an asset without a bar now): cash + Σ lots × quote;
2. each asset that has a weight or a position gets a ticket for
   `weight × value / quote − position` shares, keyed by `weight × value − position × quote`;
3. tickets run in ascending key order (stable; sells first, largest first, then buys from
   the smallest), an asset without a bar now is skipped (vectorbt drops it);
4. a sell is capped at the position; a buy that does not fit the working cash shrinks to
   `(cash − fixed fee) / (1 + fees) / price`; fee = shares × price × fees + fixed fee;
   sums within 1e-9 (relative) of zero are zero, as in vectorbt.

Faults (`faults.py`) are objects with hooks the broker calls at each of these steps; each
acts on rebalances `start ≤ k < stop` (k counts decisions from 0).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

REL, ABS = 1e-9, 1e-12


def near_zero(a: float, b: float = 0.0) -> bool:
    """Whether a and b are equal within vectorbt's tolerance (1e-9 relative, 1e-12 absolute)."""
    return a == b or abs(a - b) <= max(REL * max(abs(a), abs(b)), ABS)


def plus(a: float, b: float) -> float:
    """a + b, exactly 0 when the two cancel within the tolerance."""
    if (a > 0) != (b > 0) and near_zero(abs(a), abs(b)):
        return 0.0
    total = a + b
    return 0.0 if near_zero(total) else total


@dataclass(frozen=True)
class Tape:
    """Prices as (bar × asset) arrays, NaN where an asset has no bar."""

    timestamps: list[datetime]
    assets: list[str]
    open: np.ndarray
    close: np.ndarray
    column: dict[str, int]

    @classmethod
    def of(cls, prices: pl.DataFrame) -> Tape:
        stamps = prices["timestamp"].unique().sort()
        names = prices["asset"].unique().sort()
        rows = stamps.search_sorted(prices["timestamp"]).to_numpy()
        cols = names.search_sorted(prices["asset"]).to_numpy()
        arrays = []
        for name in ("open", "close"):
            dense = np.full((len(stamps), len(names)), np.nan)
            dense[rows, cols] = prices[name].to_numpy()
            arrays.append(dense)
        return cls(stamps.to_list(), names.to_list(), *arrays,
                   {a: j for j, a in enumerate(names.to_list())})

    def decisions(self, weights: pl.DataFrame) -> list[tuple[int, dict[str, float]]]:
        """(decision bar, {asset: weight}) in time order."""
        row = {t: i for i, t in enumerate(self.timestamps)}
        out: dict[int, dict[str, float]] = {}
        for t, asset, w in weights.select("timestamp", "asset", "weight").iter_rows():
            out.setdefault(row[t], {})[asset] = float(w)
        return sorted(out.items())


@dataclass
class Lot:
    quantity: float  # signed: a lot of a short position is negative
    price: float


@dataclass(frozen=True)
class Ticket:
    """One fill: what the journal logs, and the cash it moves (`flow`)."""

    bar: int
    asset: str
    quantity: float
    price: float
    fee: float
    flow: float


class Ledger:
    """Cash and FIFO lots; `post` is the only way they change."""

    def __init__(self, cash: float) -> None:
        self.cash = cash
        self.lots: dict[str, deque[Lot]] = {}

    def position(self, asset: str) -> float:
        total = 0.0
        for lot in self.lots.get(asset, ()):
            total += lot.quantity
        return 0.0 if near_zero(total) else total

    def holdings(self) -> dict[str, float]:
        return {a: q for a in sorted(self.lots) if (q := self.position(a)) != 0.0}

    def post(self, ticket: Ticket) -> None:
        self.cash = plus(self.cash, ticket.flow) if ticket.flow < 0 else self.cash + ticket.flow
        lots = self.lots.setdefault(ticket.asset, deque())
        left = ticket.quantity
        while lots and left and (lots[0].quantity > 0) != (left > 0):  # close old lots first
            first = lots[0]
            if abs(first.quantity) <= abs(left) or near_zero(abs(first.quantity), abs(left)):
                left = plus(left, first.quantity)
                lots.popleft()
            else:
                first.quantity += left
                left = 0.0
        if left and not near_zero(left):
            lots.append(Lot(left, ticket.price))
        if not lots:
            del self.lots[ticket.asset]

    def copy(self) -> Ledger:
        twin = Ledger(self.cash)
        twin.lots = {a: deque(Lot(lot.quantity, lot.price) for lot in lots)
                     for a, lots in self.lots.items()}
        return twin


@dataclass
class Order:
    asset: str
    weight: float
    shares: float  # requested delta, signed
    key: float  # approximate order value, the sort key


@dataclass
class Costs:
    fees: float = 0.0
    fixed_fee: float = 0.0
    slippage: float = 0.0


@dataclass
class Batch:
    k: int  # rebalance index
    decided: int  # decision bar
    weights: dict[str, float]
    point: str  # "open" or "close"


@dataclass
class Broker:
    """Executes batches for one run; `faults` hook into every step."""

    tape: Tape
    costs: Costs
    faults: list = field(default_factory=list)
    ledger: Ledger = field(default_factory=lambda: Ledger(0.0))
    journal: list[Ticket] = field(default_factory=list)
    before: list[dict[str, float]] = field(default_factory=list)  # holdings before each batch
    batch_bars: dict[int, int] = field(default_factory=dict)  # rebalance → bar it filled at
    watch: object = None  # a fault whose own effect on each batch is recorded in `changed`
    changed: list[int] = field(default_factory=list)  # bars where `watch` changed the fills

    def active(self, k: int) -> list:
        return [f for f in self.faults if f.start <= k and (f.stop is None or k < f.stop)]

    def quote(self, bar: int, j: int, point: str, faults: list, k: int) -> float:
        prices = self.tape.open if point == "open" else self.tape.close
        price = prices[bar, j]
        for fault in faults:
            price = fault.quote(k, self.tape.assets[j], price)
        return price

    def last_quote(self, bar: int, j: int, point: str) -> float:
        prices = self.tape.open if point == "open" else self.tape.close
        column = prices[: bar + 1, j]
        seen = column[~np.isnan(column)]
        return float(seen[-1]) if len(seen) else math.nan

    def execute(self, bar: int, batch: Batch, faults: list) -> list[Ticket]:
        """One batch: value, ticket, sequence, execute, settle. Returns the logged tickets."""
        k, point = batch.k, batch.point
        self.batch_bars.setdefault(k, bar)
        without = None
        if self.watch is not None and self.watch in faults:
            twin = Broker(self.tape, self.costs, ledger=self.ledger.copy(),
                          before=list(self.before))
            without = twin.execute(bar, batch, [f for f in faults if f is not self.watch])
        col = self.tape.column
        held = self.ledger.holdings()
        self.before.append(held)
        weights = dict(batch.weights)
        for fault in faults:
            weights = fault.targets(k, weights)
        names = sorted({a for a, w in weights.items() if w != 0.0} | set(held))
        for fault in faults:
            names = fault.assets(k, names, weights, held)
        quotes = {}
        for a in sorted(set(names) | set(held)):
            now = self.quote(bar, col[a], point, faults, k)
            quotes[a] = now if not math.isnan(now) else self.last_quote(bar, col[a], point)
        value = self.ledger.cash
        for a in sorted(held):
            value += held[a] * quotes[a]
        stale = self.before[-2] if len(self.before) > 1 else {}
        orders = []
        for a in names:
            w = weights.get(a, 0.0)
            read = held.get(a, 0.0)
            for fault in faults:
                read = fault.position(k, a, w, read, stale.get(a, 0.0))
            target = w * value
            orders.append(Order(a, w, target / quotes[a] - read, target - read * quotes[a]))
        orders.sort(key=lambda o: (math.isnan(o.key), 0.0 if math.isnan(o.key) else o.key))
        for fault in faults:
            orders = fault.sequence(k, orders)
        costs = self.costs
        for fault in faults:
            costs = fault.costs(k, costs)
        cash = self.ledger.cash
        tickets: list[Ticket] = []
        for order in orders:
            price = self.quote(bar, col[order.asset], point, faults, k)
            if math.isnan(price):
                continue  # no bar now: dropped
            shares = order.shares
            for fault in faults:
                shares = fault.shares(k, order, shares, tickets)
            ticket = self.fill(bar, order.asset, shares, price, cash, costs, faults, k)
            if ticket is not None:
                for fault in faults:
                    ticket = fault.ticket(k, ticket, costs)
                for _ in range(max((f.postings_as_executed(k) for f in faults), default=1)):
                    cash = plus(cash, ticket.flow) if ticket.flow < 0 else cash + ticket.flow
                tickets.append(ticket)
        for fault in faults:
            tickets = tickets + fault.extra(k, bar, tickets, self, point, costs)
        postings = max((f.postings(k) for f in faults), default=1)
        rows = max((f.rows(k) for f in faults), default=1)
        booked = [t for t in tickets for _ in range(postings)]
        logged = [t for t in tickets for _ in range(rows)]
        for ticket in booked:
            self.ledger.post(ticket)
        self.journal += logged
        if without is not None and not same_tickets(logged, without):
            self.changed.append(bar)
        return logged

    def fill(self, bar: int, asset: str, shares: float, price: float, cash: float,
             costs: Costs, faults: list, k: int) -> Ticket | None:
        """Execute one order against `cash`; None when nothing fills."""
        lot = None
        for fault in faults:
            lot = fault.lot(k) or lot
        in_cash = all(f.fees_in_cash(k) for f in faults)
        cash = 0.0 if near_zero(cash) else cash
        if shares > 0:
            adj = price * (1 + costs.slippage)
            if cash <= 0.0:
                return None
            size = shares if lot is None else shares // lot * lot
            if near_zero(size):
                return None
            spend = size * adj
            fee = spend * costs.fees + costs.fixed_fee
            if spend + fee <= cash or near_zero(spend + fee, cash):
                flow = -(spend + fee)
            else:
                budget = plus(cash, -costs.fixed_fee) / (1 + costs.fees)
                if budget <= 0:
                    return None
                size = budget / adj
                if lot is None:
                    fee, flow = cash - budget, -cash
                else:
                    size = size // lot * lot
                    fee = size * adj * costs.fees + costs.fixed_fee
                    flow = -(size * adj + fee)
            if size <= 0.0:
                return None
            return Ticket(bar, asset, size, adj, fee, flow + (0.0 if in_cash else fee))
        position = self.ledger.position(asset)
        if position <= 0.0:
            return None
        adj = price * (1 - costs.slippage)
        size = min(position, -shares)
        if lot is not None:
            size = size // lot * lot
        if near_zero(size):
            return None
        fee = size * adj * costs.fees + costs.fixed_fee
        proceeds = plus(size * adj, -fee)
        if proceeds < 0:
            return None
        return Ticket(bar, asset, -size, adj, fee, proceeds + (0.0 if in_cash else fee))


def same_tickets(x: list[Ticket], y: list[Ticket]) -> bool:
    def close(a: float, b: float) -> bool:
        return abs(a - b) <= max(REL * max(abs(a), abs(b)), REL)

    return len(x) == len(y) and all(
        s.asset == t.asset and close(s.quantity, t.quantity) and close(s.price, t.price)
        and close(s.fee, t.fee) for s, t in zip(x, y, strict=True))


def run_loop(prices: pl.DataFrame, weights: pl.DataFrame, initial_cash: float,
             fees: float = 0.0, faults: list | tuple = (), tape: Tape | None = None
             ) -> pl.DataFrame:
    """Fills (`timestamp, asset, quantity, price, fee`) of the loop with `faults` injected."""
    tape = tape or Tape.of(prices)
    broker = run_broker(tape, weights, initial_cash, fees, faults)
    return journal_frame(broker.journal, tape)


def run_broker(tape: Tape, weights: pl.DataFrame, initial_cash: float, fees: float = 0.0,
               faults: list | tuple = (), watch: object = None) -> Broker:
    """The broker after a whole run (its journal, its batches' bars, what `watch` changed)."""
    broker = Broker(tape, Costs(fees=fees), list(faults), Ledger(float(initial_cash)),
                    watch=watch)
    calendar: dict[tuple[int, int], list[Batch]] = {}  # (bar, 0 open | 1 close) → batches
    decisions = dict(tape.decisions(weights))
    index = {bar: k for k, bar in enumerate(sorted(decisions))}
    n_bars = len(tape.timestamps)
    for bar in range(n_bars):
        for fault in faults:
            for ticket in fault.at_open(bar, broker):
                broker.ledger.post(ticket)
                broker.journal.append(ticket)
        for batch in calendar.pop((bar, 0), []):
            broker.execute(bar, batch, broker.active(batch.k))
        if bar in decisions:
            k = index[bar]
            delay, point = 1, "open"
            for fault in broker.active(k):
                delay, point = fault.schedule(k, delay, point)
            due = bar + delay
            if due < n_bars:
                calendar.setdefault((due, 0 if point == "open" else 1), []).append(
                    Batch(k, bar, decisions[bar], point))
        for batch in calendar.pop((bar, 1), []):
            broker.execute(bar, batch, broker.active(batch.k))
    return broker


def journal_frame(journal: list[Ticket], tape: Tape) -> pl.DataFrame:
    return pl.DataFrame(
        {"timestamp": [tape.timestamps[t.bar] for t in journal],
         "asset": [t.asset for t in journal],
         "quantity": [float(t.quantity) for t in journal],
         "price": [float(t.price) for t in journal],
         "fee": [float(t.fee) for t in journal]},
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64})
