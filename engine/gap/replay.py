"""Replay target weights under any `Semantics`, from any state: the gap analysis' test bench.

A plain per-order loop (like `engine.reference`, whose arithmetic it follows so that the
default semantics reproduce tradegap's fills bit for bit), with every semantic choice and
classic bug a switch. `Replayer.batch` sizes and executes one batch from a given state, so
one candidate explanation can be tried at one point; `replay` runs a whole backtest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from engine.gap.semantics import Semantics

REL, ABS = 1e-9, 1e-12
Fill = tuple[datetime, str, float, float, float]  # timestamp, asset, quantity, price, fee


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= max(REL * max(abs(a), abs(b)), ABS)


def _add(a: float, b: float) -> float:
    return 0.0 if abs(a + b) <= max(REL * max(abs(a), abs(b)), ABS) else a + b


@dataclass
class Book:
    """A portfolio's state: cash, positions, last closes, and positions before the last batch."""

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    last_close: dict[str, float] = field(default_factory=dict)
    before_last_batch: dict[str, float] = field(default_factory=dict)
    last_open: dict[str, float] = field(default_factory=dict)

    def copy(self) -> Book:
        return Book(self.cash, dict(self.positions), dict(self.last_close),
                    dict(self.before_last_batch), dict(self.last_open))

    def value(self, prices: dict[str, float]) -> float:
        """Cash plus held positions, summed in asset order (as the engine does)."""
        total = self.cash
        for asset in sorted(self.positions):
            quantity = self.positions[asset]
            if quantity != 0.0:
                total += quantity * prices.get(asset, self.last_close.get(asset, 0.0))
        return total


class Replayer:
    """Sizes and executes batches of target-percent orders under one `Semantics`."""

    def __init__(self, semantics: Semantics) -> None:
        self.s = semantics
        self._cash_seen = 0.0
        self.capped: set[str] = set()  # assets whose last fill the volume cap cut short

    def batch(
        self, book: Book, timestamp: datetime, orders: dict[str, float],
        fill_prices: dict[str, float], decision_close: dict[str, float],
        caps: dict[str, float] | None = None,
    ) -> list[Fill]:
        """Fill `orders` ({asset: target weight}, or shares when sized at the decision) at
        `fill_prices`, at most `caps[asset]` shares each; mutates `book`."""
        self.capped = set()
        s = self.s
        if s.valuation == "decision_close":
            prices = decision_close
        else:
            held_prices = book.last_open if s.held_valuation == "last_open" else book.last_close
            prices = {a: fill_prices.get(a, held_prices.get(a, 0.0)) for a in book.positions}
            prices.update(fill_prices)
        value = book.value(prices)
        basis = {"current": book.positions, "zero": {},
                 "previous": book.before_last_batch}[s.position_basis]
        requests = []
        if s.sizing != "fill":  # share orders sized at the decision, in submission order
            requests = [(0.0, asset, shares) for asset, shares in orders.items()]
        for asset in sorted(orders) if s.sizing == "fill" else ():
            price = prices[asset] if s.valuation == "decision_close" else fill_prices[asset]
            held = basis.get(asset, 0.0)
            target_value = orders[asset] * value
            delta = target_value / price - held
            requests.append((target_value - held * price, asset, delta))
        if s.sizing == "fill":
            requests.sort(key=lambda r: r[0])
        if s.sequence == "buys_first":
            requests = [r for r in requests if r[2] > 0] + [r for r in requests if r[2] <= 0]

        book.before_last_batch = dict(book.positions)
        self._cash_seen = book.cash  # the cash the batch checks buys against (fees included)
        fills: list[Fill] = []
        for _, asset, delta in requests:
            fill = self._execute(book, timestamp, asset, delta, fill_prices[asset],
                                 None if caps is None else caps[asset])
            if fill is not None:
                fills.append(fill)
        if s.duplicate_fills:  # the batch is sized once, then every fill is booked twice
            for fill in list(fills):
                self._book(book, fill)
            fills = [fill for fill in fills for _ in (0, 1)]
        return fills

    def _execute(
        self, book: Book, timestamp: datetime, asset: str, delta: float, price: float,
        cap: float | None = None,
    ) -> Fill | None:
        s = self.s
        if s.rounding == "floor":
            delta = float(delta // 1)
        size = abs(delta)
        if delta < 0:
            size = min(size, book.positions.get(asset, 0.0))
        if s.rounding == "truncate":
            size = size // 1
        if cap is not None and size > cap:
            size = cap
            self.capped.add(asset)
        if size <= ABS:
            return None
        if delta < 0:
            adjusted = price * (1 - s.slippage)
            fee = self._fee(size, adjusted)
            if _add(size * adjusted, -fee) < 0:
                return None
            fill = (timestamp, asset, -size, adjusted, fee)
        else:
            adjusted = price * (1 + s.slippage)
            fee = self._fee(size, adjusted)
            cost = size * adjusted + fee
            cash = self._cash_seen if abs(self._cash_seen) > ABS else 0.0
            if s.cash_policy != "allow_negative" and not (cost <= cash or _close(cost, cash)):
                if s.cash_policy == "reject" or cash <= 0:
                    return None
                size, fee = self._shrink(cash, adjusted)
                if size <= ABS:
                    return None
            fill = (timestamp, asset, size, adjusted, fee)
        self._book(book, fill)
        return fill

    def _book(self, book: Book, fill: Fill) -> None:
        """Apply a fill to the book (fees leave cash unless `fees_in_cash` is off)."""
        _, asset, quantity, price, fee = fill
        self._cash_seen = _add(self._cash_seen, -quantity * price - fee)
        book.cash = _add(book.cash, -quantity * price - (fee if self.s.fees_in_cash else 0.0))
        book.positions[asset] = _add(book.positions.get(asset, 0.0), quantity)

    def _fee(self, size: float, adjusted: float) -> float:
        s = self.s
        return size * adjusted * s.fees + max(size * s.per_share, s.min_fee) + s.fixed_fee

    def _shrink(self, cash: float, adjusted: float) -> tuple[float, float]:
        s = self.s
        if s.per_share == 0.0 and s.min_fee == 0.0:
            spend = (cash - s.fixed_fee) / (1 + s.fees)
            size = spend / adjusted
            if s.rounding == "none":
                return size, cash - spend
        else:
            unit = adjusted * (1 + s.fees)
            size = (cash - s.fixed_fee) / (unit + s.per_share)
            if size * s.per_share < s.min_fee:
                size = (cash - s.fixed_fee - s.min_fee) / unit
        if s.rounding != "none":
            size = size // 1
        return size, self._fee(size, adjusted)


@dataclass(frozen=True)
class Market:
    """Bars by timestamp, and decisions by timestamp, in the replay's plain form."""

    timestamps: list[datetime]
    opens: list[dict[str, float]]
    closes: list[dict[str, float]]
    volumes: list[dict[str, float]]
    decisions: dict[int, dict[str, float]]

    @classmethod
    def build(cls, prices: pl.DataFrame, weights: pl.DataFrame | None) -> Market:
        timestamps = prices["timestamp"].unique().sort().to_list()
        index = {t: i for i, t in enumerate(timestamps)}
        opens: list[dict[str, float]] = [{} for _ in timestamps]
        closes: list[dict[str, float]] = [{} for _ in timestamps]
        volumes: list[dict[str, float]] = [{} for _ in timestamps]
        rows = prices.select("timestamp", "asset", "open", "close", "volume").iter_rows()
        for t, asset, o, c, v in rows:
            opens[index[t]][asset] = o
            closes[index[t]][asset] = c
            volumes[index[t]][asset] = v
        decisions: dict[int, dict[str, float]] = {}
        if weights is not None:
            for t, asset, w in weights.select("timestamp", "asset", "weight").iter_rows():
                decisions.setdefault(index[t], {})[asset] = w
        return cls(timestamps, opens, closes, volumes, decisions)


@dataclass
class Run:
    """A replayed backtest: fills, the book before each fill batch, and equity per bar."""

    fills: list[Fill]
    books: dict[int, Book]  # bar index → book just before that bar's fill batch
    orders: dict[int, dict[str, float]]  # bar index → orders due in that batch
    equity: list[float]

    def fills_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.fills, orient="row", schema={
            "timestamp": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
            "price": pl.Float64, "fee": pl.Float64})


def replay(market: Market, semantics: Semantics, initial_cash: float) -> Run:
    """Run the decisions through `semantics` and record everything the analysis needs.

    Pending orders are target weights, or share counts when `semantics.sizing` sizes them
    at the decision (kept in submission order, with the bar that created them).
    """
    replayer = Replayer(semantics)
    book = Book(cash=float(initial_cash))
    pending: dict[str, float] = {}
    created: dict[str, int] = {}
    run = Run([], {}, {}, [])
    at_close = semantics.fill != "next_open"
    for i, timestamp in enumerate(market.timestamps):
        if semantics.submission_check and i:
            _screen(book, pending, created, i, semantics.fees)
        if semantics.fill != "same_close":
            prices = market.closes[i] if at_close else market.opens[i]
            if semantics.without_bar == "drop":
                pending = {a: w for a, w in pending.items() if a in prices}
            due = {a: w for a, w in pending.items() if a in prices}
            if due:
                run.books[i], run.orders[i] = book.copy(), due
                decision_close = dict(book.last_close)
                caps = _caps(due, market.volumes[i], semantics.volume_limit)
                batch = replayer.batch(book, timestamp, due, prices, decision_close, caps)
                run.fills += batch
                _carry(pending, due, batch, replayer.capped)
        book.last_close.update(market.closes[i])
        book.last_open.update(market.opens[i])
        if i in market.decisions:
            if semantics.sizing == "fill":
                pending = _decide(book, pending, market.decisions[i])
            else:
                _decide_shares(book, pending, created, i, market.decisions[i], semantics.sizing)
        if semantics.fill == "same_close":
            prices = market.closes[i]
            if semantics.without_bar == "drop":
                pending = {a: w for a, w in pending.items() if a in prices}
            due = {a: w for a, w in pending.items() if a in prices}
            if due:
                run.books[i], run.orders[i] = book.copy(), due
                caps = _caps(due, market.volumes[i], semantics.volume_limit)
                batch = replayer.batch(book, timestamp, due, prices, dict(prices), caps)
                run.fills += batch
                _carry(pending, due, batch, replayer.capped)
        run.equity.append(book.value(book.last_close))
    return run


def _caps(due: dict[str, float], volumes: dict[str, float], limit: float
          ) -> dict[str, float] | None:
    """Most shares each due order may fill now under a volume limit (None: no limit)."""
    return {a: math.floor(limit * volumes[a]) for a in due} if limit else None


def _carry(pending: dict[str, float], due: dict[str, float], batch: list[Fill],
           capped: set[str]) -> None:
    """Close the due orders, keeping the unfilled part of those the volume cap cut short."""
    filled: dict[str, float] = {}
    for _, asset, quantity, _, _ in batch:
        filled[asset] = filled.get(asset, 0.0) + quantity
    for asset, amount in due.items():
        if asset in capped:
            pending[asset] = amount - filled.get(asset, 0.0)
        else:
            del pending[asset]


def _decide(book: Book, pending: dict[str, float], weights: dict[str, float]) -> dict[str, float]:
    """Target weights for a decision: non-zero weights, and 0 for what is held or pending."""
    orders = {a: w for a, w in weights.items() if w != 0.0}
    for asset, quantity in book.positions.items():
        if quantity != 0.0:
            orders.setdefault(asset, 0.0)
    for asset in pending:
        orders.setdefault(asset, 0.0)
    return orders


def _decide_shares(book: Book, pending: dict[str, float], created: dict[str, int], bar: int,
                   weights: dict[str, float], sizing: str) -> None:
    """Share orders sized at the decision close (backtrader's or zipline's arithmetic),
    submitted sells first by the estimated value delta; pending orders are not netted."""
    value = book.value(book.last_close)
    held = {a: q for a, q in book.positions.items() if q != 0.0}
    chosen = sorted({a for a, w in weights.items() if w != 0.0} | set(held) | set(pending))
    estimate = {a: weights.get(a, 0.0) * value - held.get(a, 0.0) * book.last_close[a]
                for a in chosen if a in book.last_close}
    for asset in sorted(estimate, key=estimate.__getitem__):
        close, position = book.last_close[asset], held.get(asset, 0.0)
        target = weights.get(asset, 0.0) * value
        if sizing == "decision_floor":
            delta_value = target - position * close
            shares = math.copysign(abs(delta_value) // close, delta_value)
            if target == 0.0 and position != 0.0:
                shares = -position
        else:
            amount = target / close - position
            shares = float(round(amount)) if abs(amount - round(amount)) <= 1e-4 \
                else float(math.trunc(amount))
        if shares != 0.0:
            pending[asset] = pending.pop(asset, 0.0) + shares
            created[asset] = bar


def _screen(book: Book, pending: dict[str, float], created: dict[str, int], bar: int,
            fees: float) -> None:
    """backtrader's check at submission: pseudo-execute the last decision's orders in order
    at their creation close; refuse each after which cash is negative (its cost stays)."""
    cash = book.cash
    for asset in [a for a in pending if created.get(a) == bar - 1]:
        shares, price = pending[asset], book.last_close[asset]
        value = abs(shares) * price
        cash = cash + value - value * fees if shares < 0 else cash - value - value * fees
        if cash < 0.0:
            del pending[asset]
