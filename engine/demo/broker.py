"""The broker: it owns the account (a `Portfolio`) and the fill log, and executes orders.

A batch (one decision's orders) runs in ascending order value, so sells come first and buys
follow from the smallest; a sell is capped at the position; a buy that does not fit the
cash is shrunk to it (fees included); fee = shares × price × fee rate. Each fill is booked
on the account and then announced on the bus (`FillEvent`), where the log records it.
Wiring bugs (`wiring.py`) change where a fill is booked, charged, checked and logged.
"""

from __future__ import annotations

from engine.demo.bus import EventBus
from engine.demo.events import BatchEvent, FillEvent, OrderEvent
from engine.demo.market import MarketData
from engine.demo.portfolio import Portfolio
from engine.demo.records import Fill, Order
from engine.demo.wiring import Wiring

NOISE = 1e-12  # an order this small (in shares) is nothing


def fits(cost: float, cash: float) -> bool:
    """Whether `cash` pays `cost`, a cost within float noise of it counting as paid."""
    return cost <= cash or abs(cost - cash) <= max(1e-9 * max(abs(cost), abs(cash)), NOISE)


class Broker:
    """Executes the strategy's batches and the risk manager's exits against its account."""

    def __init__(self, market: MarketData, bus: EventBus, cash: float, fee_rate: float,
                 wiring: Wiring) -> None:
        self.market = market
        self.bus = bus
        self.account = Portfolio(cash)
        self.opening = float(cash)
        self.fee_rate = fee_rate
        self.wiring = wiring
        self.log: list[Fill] = []
        self.waiting: list[Order] = []
        bus.subscribe(OrderEvent, self.on_order)
        bus.subscribe(BatchEvent, self.on_batch)
        bus.subscribe(FillEvent, self.on_fill)

    # the bus

    def on_order(self, event: OrderEvent) -> None:
        if event.order.origin == "risk":
            self.execute_exit(event.bar, event.order)
        else:
            self.waiting.append(event.order)

    def on_batch(self, event: BatchEvent) -> None:
        orders, self.waiting = self.waiting, []
        self.execute_batch(event.bar, event.phase, orders)

    def on_fill(self, event: FillEvent) -> None:
        """Every fill goes to the log; with `double_dispatch` the account books it again."""
        fill = event.fill
        self.log.append(fill)
        if self.wiring.on("double_dispatch", fill.bar):
            self.account.apply(fill)

    # execution

    def execute_batch(self, bar: int, phase: str, orders: list[Order]) -> None:
        """One decision's orders at this phase's prices, in ascending order value."""
        prices = self.market.prices(bar, phase)
        stale = self.wiring.on("stale_cash", bar)
        lost = self.wiring.on("lost_order", bar)
        balance = None  # what a stale cash check reads (see `wiring.py`)
        buys = 0
        for order in sorted(orders, key=lambda o: o.value):
            price = prices[order.asset]
            if order.shares > 0:
                buys += 1
                if lost and buys == lost.param:
                    continue
                if balance is None:
                    balance = self.opening if stale and stale.param == "opening" \
                        else self.account.cash
                cash = balance if stale else self.account.cash
                fill = self.buy(bar, order.asset, order.shares, price, cash)
            else:
                size = min(-order.shares, self.account.get_position(order.asset))
                fill = self.sell(bar, order.asset, size, price)
            if fill is not None:
                self.book(fill)

    def execute_exit(self, bar: int, order: Order) -> None:
        """A risk manager's exit: the whole position at the order's price."""
        fill = self.sell(bar, order.asset, self.account.get_position(order.asset),
                         order.price, origin="risk")
        if fill is not None:
            self.book(fill)

    def buy(self, bar: int, asset: str, shares: float, price: float, cash: float
            ) -> Fill | None:
        """`shares` at `price`, shrunk to `cash` (fees included) when they do not fit."""
        if shares <= NOISE:
            return None
        fee = shares * price * self.fee_rate
        if fits(shares * price + fee, cash):
            return Fill(bar, asset, shares, price, fee)
        if cash <= 0.0:
            return None
        spend = cash / (1 + self.fee_rate)
        size = spend / price
        return Fill(bar, asset, size, price, cash - spend) if size > NOISE else None

    def sell(self, bar: int, asset: str, size: float, price: float, origin: str = "strategy"
             ) -> Fill | None:
        if size <= NOISE:
            return None
        fee = size * price * self.fee_rate
        if size * price - fee < 0:
            return None
        return Fill(bar, asset, -size, price, fee, origin)

    def book(self, fill: Fill) -> None:
        """Book a fill on the account, then announce it (at once when the bus is wired to
        deliver fills as they happen)."""
        before = self.account.get_position(fill.asset)
        self.account.apply(fill)
        if self.wiring.on("fees_twice", fill.bar):
            self.account.charge(fill.fee)
        if self.wiring.on("double_log", fill.bar):
            self.log.append(fill)
        event = FillEvent(fill, before, self.account.get_position(fill.asset))
        dispatch = self.wiring.on("double_dispatch", fill.bar)
        if dispatch and dispatch.param == "as_executed":
            self.bus.dispatch(event)
        else:
            self.bus.publish(event)
