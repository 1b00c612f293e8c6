"""A backtester with an algorithm API (zipline/backtrader-like), with its own wiring faults.

The user writes an algorithm: `initialize(context)` once, `handle_data(context, data)` at
every bar's close, reading `data.current` / `data.history` and `context.portfolio`
(`cash`, `positions[asset]` with `amount`, `cost_basis`, `last_sale_price`,
`portfolio_value`), and calling `order_target_percent(asset, pct)`. A `Blotter` keeps the
open orders (a second call for an asset in the same bar replaces the first: open orders
are netted); at the next bar's open it turns them into share orders from the book valued
at that open, in ascending order value (sells first), and fills them with a
`PerDollar` commission: a sell capped at the position, a buy that does not fit the cash
shrunk to it, its commission what the cash leaves over. A `Ledger` owns cash and
positions and books each fill. An optional `RiskManager` (take-profit, trailing stop or
time exit) runs after the algorithm at each close and orders a whole position out.

The bundled algorithm ranks assets by a trailing return, holds the top K at equal weight
and rebalances every N bars. Bug-free, its fills equal `engine.run_backtest`'s (`tradegap`
profile, the same fee rate) on the weights it records. Each fault is a wiring mistake of
this style, switched on from a bar (`Fault(name, since, param)`), listed in `FAULTS`. It
knows nothing of `engine/demo`, `tests/foreign_engine.py`'s loop or the gap analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import polars as pl

from tests.foreign_engine import NOISE, Fault, Faults, add

FAULTS = {
    "sell_twice": "the blotter hands each sell's fill to the ledger twice (buys once)",
    "cost_value": "portfolio value computed from each position's cost basis, not its mark",
    "stale_mark": "the batch sized from marks of the previous close (the open not marked yet)",
    "no_netting": "order_target_percent adds an order beside the open one instead of "
                  "replacing it",
    "fee_drift": "the commission charged by the blotter never leaves the ledger's cash",
    "same_close": "orders filled at the close of the bar that placed them",
    "take_profit": "a risk manager sells once a close is `param` above the cost basis",
    "trailing_stop": "a risk manager sells once a close is `param` under the highest close "
                     "since the entry",
    "time_exit": "a risk manager sells `param` bars after the entry",
    "lot10": "orders rounded down to lots of 10 shares",
    "cache_alternate": "the positions the blotter nets against are refreshed at every "
                       "other batch only",
    "dropped_order": "the `param`-th order of the batch at `since` silently dropped "
                     "(outside any vocabulary)",
    "oversize": "orders for the first asset of the book 2% too large from `since` on "
                "(outside any vocabulary)",
}


@dataclass
class Position:
    amount: float = 0.0
    cost_basis: float = 0.0
    last_sale_price: float = 0.0
    opened: int = -1  # the bar the position opened from flat
    peak: float = 0.0  # the highest close since then


@dataclass
class Portfolio:
    """What the algorithm sees: cash, positions and the book's value at their marks."""

    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    value_from_cost: bool = False

    @property
    def portfolio_value(self) -> float:
        value = self.cash
        for asset in sorted(self.positions):
            p = self.positions[asset]
            if p.amount != 0.0:
                value += p.amount * (p.cost_basis if self.value_from_cost else
                                     p.last_sale_price)
        return value


@dataclass(frozen=True)
class Transaction:
    bar: int
    asset: str
    amount: float
    price: float
    commission: float


class Ledger:
    """Owns cash and positions; books transactions, marks positions."""

    def __init__(self, cash: float) -> None:
        self.portfolio = Portfolio(float(cash))

    def mark(self, prices: dict[str, float]) -> None:
        for asset, p in self.portfolio.positions.items():
            if asset in prices:
                p.last_sale_price = prices[asset]

    def book(self, txn: Transaction, with_commission: bool = True) -> None:
        p = self.portfolio.positions.setdefault(txn.asset, Position())
        before = p.amount
        after = add(before, txn.amount)
        if before <= 0.0 < after:
            p.cost_basis, p.opened, p.peak = txn.price, txn.bar, txn.price
        elif txn.amount > 0 and before > 0:
            p.cost_basis = (p.cost_basis * before + txn.price * txn.amount) / after
        p.amount = after
        p.last_sale_price = txn.price
        cost = txn.amount * txn.price + (txn.commission if with_commission else 0.0)
        self.portfolio.cash = add(self.portfolio.cash, -cost)


class PerDollar:
    """Commission as a fraction of the traded value."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def calculate(self, amount: float, price: float) -> float:
        return abs(amount) * price * self.rate

    def affordable(self, cash: float, price: float) -> float:
        """The most shares `cash` pays for, commission included."""
        return cash / (1 + self.rate) / price


@dataclass
class Order:
    asset: str
    target: float  # a fraction of the portfolio's value
    placed: int


class Blotter:
    """Open orders, and their execution at a fill point against the ledger."""

    def __init__(self, ledger: Ledger, commission: PerDollar, faults: Faults) -> None:
        self.ledger = ledger
        self.commission = commission
        self.faults = faults
        self.open_orders: list[Order] = []
        self.transactions: list[Transaction] = []
        self.batches = 0
        self.cache: dict[str, float] = {}  # positions as last refreshed

    def place(self, order: Order) -> None:
        if not self.faults.on("no_netting", order.placed):
            self.open_orders = [o for o in self.open_orders if o.asset != order.asset]
        self.open_orders.append(order)

    def execute(self, bar: int, prices: dict[str, float]) -> None:
        """Every open order, sized from the book valued once at `prices`, sells first."""
        if not self.open_orders:
            return
        portfolio = self.ledger.portfolio
        self.batches += 1
        held = {a: p.amount for a, p in portfolio.positions.items()}
        if not self.faults.on("cache_alternate", bar) or self.batches % 2 == 1:
            self.cache = held
        value = portfolio.portfolio_value
        oversize = self.faults.on("oversize", bar)
        first = min((a for a, q in held.items() if q != 0.0), default=None)
        sized = []
        for order in self.open_orders:
            price = prices[order.asset]
            target = order.target * value
            if oversize and order.asset == first and target != 0.0:
                target *= 1.02
            amount = target / price - self.cache.get(order.asset, 0.0)
            if abs(amount) > NOISE:
                sized.append((target - self.cache.get(order.asset, 0.0) * price,
                              order.asset, amount))
        self.open_orders = []
        sized.sort(key=lambda s: (s[0], s[1]))
        dropped = self.faults.on("dropped_order", bar)
        for n, (_, asset, amount) in enumerate(sized, 1):
            if dropped and bar == dropped.since and n == dropped.param:
                continue
            self.fill(bar, asset, amount, prices[asset])

    def fill(self, bar: int, asset: str, amount: float, price: float) -> None:
        portfolio = self.ledger.portfolio
        lots = 10.0 if self.faults.on("lot10", bar) else None
        position = portfolio.positions.get(asset, Position()).amount
        if amount < 0:
            n = -min(-amount, max(position, 0.0))
            if lots:
                n = -math.floor(-n / lots) * lots
            if n > -NOISE:
                return
            fee = self.commission.calculate(n, price)
        else:
            n = math.floor(amount / lots) * lots if lots else amount
            cash = portfolio.cash
            fee = self.commission.calculate(n, price)
            cost = n * price + fee
            if not (cost <= cash or abs(cost - cash) <= max(1e-9 * max(abs(cost), abs(cash)),
                                                              NOISE)):
                if cash <= 0.0:
                    return
                n = self.commission.affordable(cash, price)
                if lots:
                    n = math.floor(n / lots) * lots
                    fee = self.commission.calculate(n, price)
                else:
                    fee = cash - n * price
            if n <= NOISE:
                return
        txn = Transaction(bar, asset, n, price, fee)
        self.transactions.append(txn)
        charged = not self.faults.on("fee_drift", bar)
        self.ledger.book(txn, charged)
        if n < 0 and self.faults.on("sell_twice", bar):
            self.ledger.book(txn, charged)


class BarData:
    """The `data` an algorithm reads at a bar: current prices and the closes so far."""

    def __init__(self, closes: list[dict[str, float]], bar: int, assets: list[str]) -> None:
        self.closes, self.bar, self.assets = closes, bar, assets

    def current(self, asset: str, field_: str = "price") -> float:
        return self.closes[self.bar][asset]

    def history(self, asset: str, n: int) -> list[float] | None:
        if self.bar + 1 < n:
            return None
        return [self.closes[t][asset] for t in range(self.bar + 1 - n, self.bar + 1)]


class TopKMomentum:
    """Ranks assets by their `lookback`-bar return; holds the top `k` at `invested / k`,
    rebalanced every `every` bars from the first bar with a score. At a rebalance it first
    sends every holding to 0, then the chosen to their weight (open orders are netted)."""

    def __init__(self, k: int, every: int, lookback: int = 21, invested: float = 1.0) -> None:
        self.k, self.every, self.lookback, self.invested = k, every, lookback, invested

    def initialize(self, context) -> None:
        context.scored_bars = 0
        context.decisions = {}

    def handle_data(self, context, data: BarData) -> None:
        scores = {}
        for asset in data.assets:
            closes = data.history(asset, self.lookback + 1)
            if closes is not None:
                scores[asset] = closes[-1] / closes[0] - 1.0
        if not scores:
            return
        context.scored_bars += 1
        if (context.scored_bars - 1) % self.every:
            return
        chosen = sorted(scores, key=lambda a: (-scores[a], a))[:self.k]
        weight = self.invested / self.k
        context.decisions[data.bar] = {a: weight for a in chosen}
        for asset, position in sorted(context.portfolio.positions.items()):
            if position.amount != 0.0:
                context.order_target_percent(asset, 0.0)
        for asset in sorted(chosen):
            context.order_target_percent(asset, weight)


class RiskManager:
    """After the algorithm, at each close: a whole position out at the next open once the
    fault's rule says so (take-profit on the cost basis, trailing stop on the closes, or a
    time exit counted from the entry)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def check(self, context, data: BarData) -> None:
        bar = data.bar
        for asset, p in sorted(context.portfolio.positions.items()):
            if p.amount <= 0.0:
                continue
            close = data.current(asset)
            p.peak = max(p.peak, close)
            exit_ = False
            if (rule := self.faults.on("take_profit", bar)):
                exit_ |= close >= p.cost_basis * (1 + rule.param)
            if (rule := self.faults.on("trailing_stop", bar)):
                exit_ |= close <= p.peak * (1 - rule.param)
            if (rule := self.faults.on("time_exit", bar)):
                exit_ |= bar + 1 - p.opened >= rule.param
            if exit_:
                context.order_target_percent(asset, 0.0)
                context.exits.append((bar + 1, asset))


@dataclass
class AlgoBacktest:
    """The clock: at each bar's open the blotter fills the open orders; at its close the
    positions are marked, the algorithm and the risk manager run."""

    prices: pl.DataFrame
    algorithm: TopKMomentum
    cash: float
    fees: float
    faults: Faults = field(default_factory=Faults)
    exits: list[tuple[int, str]] = field(default_factory=list)
    decisions: dict[int, dict[str, float]] = field(default_factory=dict)

    def run(self) -> pl.DataFrame:
        """The fill log: timestamp, asset, amount as quantity (signed), price, commission
        as fee."""
        stamps = self.prices["timestamp"].unique().sort().to_list()
        index = {t: i for i, t in enumerate(stamps)}
        opens: list[dict[str, float]] = [{} for _ in stamps]
        closes: list[dict[str, float]] = [{} for _ in stamps]
        for t, asset, o, c in self.prices.select("timestamp", "asset", "open",
                                                  "close").iter_rows():
            opens[index[t]][asset], closes[index[t]][asset] = o, c
        assets = sorted({a for row in closes for a in row})
        ledger = Ledger(self.cash)
        blotter = Blotter(ledger, PerDollar(self.fees), self.faults)
        risk = RiskManager(self.faults)
        context = SimpleNamespace(portfolio=ledger.portfolio, exits=[])
        bar_now = [0]
        context.order_target_percent = lambda asset, pct: blotter.place(
            Order(asset, pct, bar_now[0]))
        self.algorithm.initialize(context)
        for bar in range(len(stamps)):
            bar_now[0] = bar
            ledger.portfolio.value_from_cost = bool(self.faults.on("cost_value", bar))
            if not self.faults.on("stale_mark", bar):
                ledger.mark(opens[bar])
            blotter.execute(bar, opens[bar])
            ledger.mark(closes[bar])
            data = BarData(closes, bar, assets)
            self.algorithm.handle_data(context, data)
            risk.check(context, data)
            if self.faults.on("same_close", bar):
                blotter.execute(bar, closes[bar])
        self.exits, self.decisions = context.exits, context.decisions
        rows = [(stamps[t.bar], t.asset, t.amount, t.price, t.commission)
                for t in blotter.transactions]
        return pl.DataFrame(rows, schema={
            "timestamp": self.prices.schema["timestamp"], "asset": pl.String,
            "quantity": pl.Float64, "price": pl.Float64, "fee": pl.Float64}, orient="row")

    def weights(self) -> pl.DataFrame:
        """The algorithm's decisions (after `run`) as target weights at their closes."""
        stamps = self.prices["timestamp"].unique().sort().to_list()
        rows = [(stamps[bar], a, w) for bar, chosen in sorted(self.decisions.items())
                for a, w in sorted(chosen.items())]
        return pl.DataFrame(rows, schema={"timestamp": self.prices.schema["timestamp"],
                                          "asset": pl.String, "weight": pl.Float64},
                            orient="row")


__all__ = ["FAULTS", "AlgoBacktest", "Fault", "Faults", "TopKMomentum"]
