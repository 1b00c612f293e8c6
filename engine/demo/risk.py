"""The risk manager: a stop-loss exit for every position opened from flat.

The stop sits `stop` below the entry's fill price and is checked from the bar after the
entry, after that bar's open batch: an open at or below it exits at the open, a low at or
below it exits at the stop. A position closed by any fill loses its stop.
"""

from __future__ import annotations

from engine.demo.bus import EventBus
from engine.demo.events import FillEvent, OrderEvent
from engine.demo.market import RANGE, MarketData, MarketEvent
from engine.demo.records import Order
from engine.demo.wiring import Wiring


class RiskManager:
    """Arms stops on entries and sends exits to the broker when the bar reaches them."""

    def __init__(self, market: MarketData, bus: EventBus, wiring: Wiring) -> None:
        self.market = market
        self.bus = bus
        self.wiring = wiring
        self.stops: dict[str, tuple[float, int]] = {}  # asset → (level, first bar checked)
        bus.subscribe(FillEvent, self.on_fill)
        bus.subscribe(MarketEvent, self.on_market)

    def on_fill(self, event: FillEvent) -> None:
        fill = event.fill
        if event.after == 0.0:
            self.stops.pop(fill.asset, None)
            return
        bug = self.wiring.on("risk_manager", fill.bar)
        if bug and event.before == 0.0 and event.after > 0.0:
            self.stops[fill.asset] = (fill.price * (1 - bug.param), fill.bar + 1)

    def on_market(self, event: MarketEvent) -> None:
        if event.phase != RANGE or not self.stops:
            return
        t = event.bar
        opens, lows = self.market.open[t], self.market.low[t]
        for asset in sorted(self.stops):
            level, first = self.stops[asset]
            if t < first or asset not in lows:
                continue
            if opens[asset] <= level:
                price = opens[asset]
            elif lows[asset] <= level:
                price = level
            else:
                continue
            self.bus.publish(OrderEvent(t, RANGE, Order(asset, 0.0, 0.0, "risk", price)))
