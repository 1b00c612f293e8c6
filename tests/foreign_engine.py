"""An event-driven backtester in another style than `engine/demo`, with its own wiring faults.

Written the way queue-driven backtesters are usually written: one `queue.Queue` of
`MarketEvent`, `SignalEvent`, `OrderEvent` and `FillEvent`; a `DataHandler` that announces
each bar's open and close; a `Strategy` that emits target weights (a decision at a close);
a `NaivePortfolio` that keeps `current_positions` and `current_holdings` dicts, turns the
targets into orders at the next open and books the fills; an `ExecutionHandler` that fills
each order at the open with a fee. It knows nothing of `engine/demo` or of the analysis.

Bug-free, it trades as `engine.run_backtest` does under the `tradegap` profile with
`fees`: the book valued at the open once per batch, target minus position per asset, the
batch in ascending order value (sells first), a sell capped at the position, a buy that
does not fit the cash shrunk to it (fees included). Each fault is a wiring mistake of this
style, switched on from a bar (`Fault(name, since, param)`), listed in `FAULTS`.
"""

from __future__ import annotations

import math
import queue
from collections import deque
from dataclasses import dataclass, field

import polars as pl

OPEN, CLOSE = "open", "close"
NOISE = 1e-12

# Each fault: what the engine gets wrong.
FAULTS = {
    "fill_twice": "each FillEvent handled twice by the portfolio as it arrives",
    "positions_from_order": "positions updated from the order's quantity, not the fill's",
    "day_copy": "the cash check reads the holdings copied when the day began",
    "yesterday_close": "orders sized from the decision's close instead of the open",
    "fees_twice": "the commission taken from cash twice",
    "fee_logged_twice": "the log's fee the commission and its tax summed, where the "
                        "commission already includes the tax: twice what cash paid "
                        "(`param`: the tax's share of the commission, 1 unless given)",
    "whole_target": "the whole target converted to an order, not its delta",
    "same_close": "signals filled at the close of their own bar",
    "per_share_fee": "commission $0.005 a share, at least $1, instead of a rate",
    "stop_loss": "the strategy sells at the next open once a close is `param` under entry",
    "whole_shares": "orders rounded down to whole shares",
    "sizing_bias": "orders sized 1% too large from `since` on (outside any vocabulary)",
    "lost_order": "the `param`-th buy of the batch at `since` lost by the execution handler",
}


@dataclass(frozen=True)
class Fault:
    """A wiring fault switched on from bar `since` (its parameter, if it has one)."""

    name: str
    since: int = 0
    param: float | None = None

    def __str__(self) -> str:
        extra = "" if self.param is None else f" {self.param:g}"
        return f"{self.name}{extra} from bar {self.since}"


@dataclass(frozen=True)
class Faults:
    """The faults an engine is wired with."""

    faults: tuple[Fault, ...] = ()

    def on(self, name: str, bar: int) -> Fault | None:
        for fault in self.faults:
            if fault.name == name and bar >= fault.since:
                return fault
        return None

    def without(self, name: str) -> Faults:
        return Faults(tuple(f for f in self.faults if f.name != name))


# events


@dataclass(frozen=True)
class MarketEvent:
    bar: int
    phase: str


@dataclass(frozen=True)
class SignalEvent:
    """Target weights decided at the close of `bar` (`exit`: sell these assets whole)."""

    bar: int
    weights: dict[str, float]
    exit: bool = False


@dataclass(frozen=True)
class OrderEvent:
    bar: int
    phase: str
    asset: str
    quantity: float  # signed shares


@dataclass(frozen=True)
class FillEvent:
    bar: int
    asset: str
    quantity: float  # signed; 0 when nothing filled
    price: float
    commission: float
    ordered: float  # the order's quantity


def add(a: float, b: float) -> float:
    """a + b, float dust around zero being zero (the ledger's rule)."""
    total = a + b
    return 0.0 if abs(total) <= max(1e-9 * max(abs(a), abs(b)), NOISE) else total


# components


class DataHandler:
    """Bars as dicts per bar; announces each bar's open, then its close."""

    def __init__(self, prices: pl.DataFrame, events: queue.Queue) -> None:
        self.events = events
        self.timestamps = prices["timestamp"].unique().sort().to_list()
        index = {t: i for i, t in enumerate(self.timestamps)}
        self.open = [{} for _ in self.timestamps]
        self.close = [{} for _ in self.timestamps]
        for t, asset, o, c in prices.select("timestamp", "asset", "open", "close").iter_rows():
            self.open[index[t]][asset] = o
            self.close[index[t]][asset] = c
        self.assets = sorted({a for row in self.close for a in row})

    def prices(self, bar: int, phase: str) -> dict[str, float]:
        return self.open[bar] if phase == OPEN else self.close[bar]


class TargetWeightStrategy:
    """Emits each decision's target weights at its close; with a `stop_loss` fault, also a
    whole-position exit of every holding whose close is `param` under its entry price."""

    def __init__(self, decisions: dict[int, dict[str, float]], events: queue.Queue,
                 faults: Faults) -> None:
        self.decisions = decisions
        self.events = events
        self.faults = faults

    def calculate_signals(self, event: MarketEvent, data: DataHandler, portfolio) -> None:
        if event.phase != CLOSE:
            return
        stop = self.faults.on("stop_loss", event.bar)
        if stop:
            close = data.close[event.bar]
            hit = {a: 0.0 for a, q in portfolio.current_positions.items()
                   if q > 0 and a in portfolio.entry_price and a in close
                   and close[a] <= portfolio.entry_price[a] * (1 - stop.param)}
            if hit:
                self.events.put(SignalEvent(event.bar, hit, exit=True))
        if event.bar in self.decisions:
            self.events.put(SignalEvent(event.bar, self.decisions[event.bar]))


class NaivePortfolio:
    """Positions and holdings as dicts; targets become orders at the next open, sent one at
    a time so that each is checked against the cash its predecessors left."""

    def __init__(self, data: DataHandler, events: queue.Queue, cash: float,
                 faults: Faults) -> None:
        self.data = data
        self.events = events
        self.faults = faults
        self.current_positions: dict[str, float] = {}
        self.current_holdings = {"cash": float(cash), "commission": 0.0}
        self.day_holdings = dict(self.current_holdings)  # copied when each day begins
        self.entry_price: dict[str, float] = {}
        self.signals: dict[tuple[int, str], list[SignalEvent]] = {}
        self.working: deque[OrderEvent] = deque()
        self.ready: deque[tuple[int, str, SignalEvent]] = deque()
        self.exits: list[tuple[int, str]] = []  # (bar, asset) of the stop's exit orders

    # time

    def update_timeindex(self, event: MarketEvent) -> None:
        if event.phase == OPEN:
            self.day_holdings = dict(self.current_holdings)
        for signal in self.signals.pop((event.bar, event.phase), []):
            self.ready.append((event.bar, event.phase, signal))
        self.next_order()

    def update_signal(self, signal: SignalEvent) -> None:
        """Queue the signal for the next open (its own close with `same_close`)."""
        if self.faults.on("same_close", signal.bar) and not signal.exit:
            self.ready.append((signal.bar, CLOSE, signal))
            self.next_order()
        elif signal.bar + 1 < len(self.data.timestamps):
            self.signals.setdefault((signal.bar + 1, OPEN), []).append(signal)

    # orders

    def send_orders(self, bar: int, phase: str, signal: SignalEvent) -> None:
        """Target minus position for every target and every holding, in ascending value."""
        prices = self.data.prices(bar, phase)
        if signal.exit:
            orders = [(0.0, OrderEvent(bar, phase, a, -self.current_positions.get(a, 0.0)))
                      for a in sorted(signal.weights)]
            self.exits += [(bar, a) for a in sorted(signal.weights)]
            self.queue_orders(orders)
            return
        sizing = prices
        if self.faults.on("yesterday_close", bar):
            sizing = self.data.close[bar - 1]
        value = self.current_holdings["cash"]
        for asset in sorted(self.current_positions):
            q = self.current_positions[asset]
            if q != 0.0:
                value += q * sizing[asset]
        bias = self.faults.on("sizing_bias", bar)
        held = {a for a, q in self.current_positions.items() if q != 0.0}
        orders = []
        for asset in sorted({a for a, w in signal.weights.items() if w != 0.0} | held):
            price = sizing[asset]
            target = signal.weights.get(asset, 0.0) * value
            if bias and target != 0.0:
                target *= 1.01
            position = self.current_positions.get(asset, 0.0)
            if target != 0.0 and self.faults.on("whole_target", bar):
                position = 0.0
            quantity = target / price - position
            if abs(quantity) > NOISE:
                orders.append((target - position * price, OrderEvent(bar, phase, asset,
                                                                      quantity)))
        self.queue_orders(orders)

    def queue_orders(self, orders: list[tuple[float, OrderEvent]]) -> None:
        orders.sort(key=lambda pair: pair[0])  # stable: ties keep asset order
        self.working.extend(order for _, order in orders)

    def next_order(self) -> None:
        """Send the next order; once a signal's orders are all filled, size the next one's
        from the book they left."""
        while not self.working and self.ready:
            self.send_orders(*self.ready.popleft())
        if self.working:
            self.events.put(self.working.popleft())

    # fills

    def update_fill(self, fill: FillEvent) -> None:
        self.book(fill)
        if self.faults.on("fill_twice", fill.bar) and fill.quantity != 0.0:
            self.book(fill)
        self.next_order()

    def book(self, fill: FillEvent) -> None:
        if fill.quantity == 0.0:
            return
        moved = fill.ordered if self.faults.on("positions_from_order", fill.bar) \
            else fill.quantity
        before = self.current_positions.get(fill.asset, 0.0)
        after = add(before, moved)
        self.current_positions[fill.asset] = after
        if before <= 0.0 < after:
            self.entry_price[fill.asset] = fill.price
        elif after <= 0.0:
            self.entry_price.pop(fill.asset, None)
        cash = add(self.current_holdings["cash"], -(fill.quantity * fill.price
                                                     + fill.commission))
        if self.faults.on("fees_twice", fill.bar):
            cash = add(cash, -fill.commission)
        self.current_holdings["cash"] = cash
        self.current_holdings["commission"] += fill.commission


class SimulatedExecutionHandler:
    """Fills each order at its phase's price with a fee: a sell capped at the position, a
    buy shrunk to the cash it may spend; writes every fill to the log."""

    def __init__(self, data: DataHandler, events: queue.Queue, fees: float,
                 portfolio: NaivePortfolio, faults: Faults) -> None:
        self.data = data
        self.events = events
        self.fees = fees
        self.portfolio = portfolio
        self.faults = faults
        self.log: list[tuple] = []
        self.buys: dict[int, int] = {}

    def commission(self, bar: int, shares: float, price: float) -> float:
        if self.faults.on("per_share_fee", bar):
            return max(0.005 * shares, 1.0)
        return shares * price * self.fees

    def largest_buy(self, bar: int, price: float, cash: float) -> float:
        """The most shares `cash` pays for, commission included."""
        if self.faults.on("per_share_fee", bar):
            n = cash / (price + 0.005)
            return n if 0.005 * n >= 1.0 else (cash - 1.0) / price
        return (cash / (1 + self.fees)) / price

    def execute_order(self, order: OrderEvent) -> None:
        bar, price = order.bar, self.data.prices(order.bar, order.phase)[order.asset]
        whole = self.faults.on("whole_shares", bar)
        if order.quantity < 0:
            n = min(-order.quantity, self.portfolio.current_positions.get(order.asset, 0.0))
            n = math.floor(n) if whole else n
            fill = self.fill(order, -n, price) if n > NOISE else None
        else:
            self.buys[bar] = self.buys.get(bar, 0) + 1
            lost = self.faults.on("lost_order", bar)
            if lost and bar == lost.since and self.buys[bar] == lost.param:
                fill = None
            else:
                fill = self.buy(order, price, whole)
        self.events.put(fill or FillEvent(bar, order.asset, 0.0, price, 0.0, order.quantity))

    def buy(self, order: OrderEvent, price: float, whole) -> FillEvent | None:
        bar = order.bar
        n = math.floor(order.quantity) if whole else order.quantity
        holdings = self.portfolio.day_holdings if self.faults.on("day_copy", bar) \
            else self.portfolio.current_holdings
        cash = holdings["cash"]
        cost = n * price + self.commission(bar, n, price)
        if not (cost <= cash or abs(cost - cash) <= max(1e-9 * max(abs(cost), abs(cash)),
                                                          NOISE)):
            if cash <= 0.0:
                return None
            n = self.largest_buy(bar, price, cash)
            n = math.floor(n) if whole else n
        return self.fill(order, n, price) if n > NOISE else None

    def fill(self, order: OrderEvent, n: float, price: float) -> FillEvent:
        fee = self.commission(order.bar, abs(n), price)
        shrunk = n > 0 and not self.faults.on("per_share_fee", order.bar) \
            and not self.faults.on("whole_shares", order.bar) \
            and n < order.quantity
        if shrunk:  # the fee of a buy shrunk to the cash is what the cash leaves over
            holdings = self.portfolio.day_holdings if self.faults.on("day_copy", order.bar) \
                else self.portfolio.current_holdings
            fee = holdings["cash"] - n * price
        doubled = self.faults.on("fee_logged_twice", order.bar)
        logged = fee * (1.0 + (doubled.param or 1.0)) if doubled else fee
        self.log.append((self.data.timestamps[order.bar], order.asset, n, price, logged))
        return FillEvent(order.bar, order.asset, n, price, fee, order.quantity)


@dataclass
class Backtest:
    """The event loop: each bar's open, then its close, every event handled in turn."""

    prices: pl.DataFrame
    weights: pl.DataFrame
    cash: float
    fees: float
    faults: Faults = field(default_factory=Faults)
    exits: list[tuple[int, str]] = field(default_factory=list)  # the stop's, once run

    def run(self) -> pl.DataFrame:
        """The fill log: timestamp, asset, quantity (signed), price, fee."""
        events: queue.Queue = queue.Queue()
        data = DataHandler(self.prices, events)
        bar_of = {t: i for i, t in enumerate(data.timestamps)}
        decisions: dict[int, dict[str, float]] = {}
        for t, asset, w in self.weights.select("timestamp", "asset", "weight").iter_rows():
            decisions.setdefault(bar_of[t], {})[asset] = w
        portfolio = NaivePortfolio(data, events, self.cash, self.faults)
        strategy = TargetWeightStrategy(decisions, events, self.faults)
        execution = SimulatedExecutionHandler(data, events, self.fees, portfolio, self.faults)
        for bar in range(len(data.timestamps)):
            for phase in (OPEN, CLOSE):
                events.put(MarketEvent(bar, phase))
                while True:
                    try:
                        event = events.get(block=False)
                    except queue.Empty:
                        break
                    if isinstance(event, MarketEvent):
                        portfolio.update_timeindex(event)
                        strategy.calculate_signals(event, data, portfolio)
                    elif isinstance(event, SignalEvent):
                        portfolio.update_signal(event)
                    elif isinstance(event, OrderEvent):
                        execution.execute_order(event)
                    elif isinstance(event, FillEvent):
                        portfolio.update_fill(event)
        self.exits = portfolio.exits
        return pl.DataFrame(execution.log, schema={
            "timestamp": self.prices.schema["timestamp"], "asset": pl.String,
            "quantity": pl.Float64, "price": pl.Float64, "fee": pl.Float64}, orient="row")
