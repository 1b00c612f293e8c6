"""The strategy: every `every`-th scored close it ranks the assets by score and targets the
top `k` at `invested / k` each; at the next open it calls `order_target_percent` for every
target and every asset it holds.

`order_target_percent(asset, pct)` orders `pct × book value / price − position` shares,
the position being `get_position` plus the shares already ordered in this batch; the book
value is the broker's account at the prices of the moment. Positions are read from the
portfolio the strategy was given, or, when wired so, from a position cache.
"""

from __future__ import annotations

from engine.demo.bus import EventBus
from engine.demo.events import BatchEvent, OrderEvent
from engine.demo.market import CLOSE, OPEN, MarketData, MarketEvent
from engine.demo.portfolio import Portfolio
from engine.demo.records import Order
from engine.demo.wiring import Wiring


class PositionCache:
    """Snapshots of the account's positions, taken when each batch starts."""

    def __init__(self, account: Portfolio) -> None:
        self.account = account
        self.snapshots: list[dict[str, float]] = []

    def refresh(self) -> None:
        self.snapshots.append(dict(self.account.positions))

    def lagged(self, batches: int) -> dict[str, float]:
        """The positions as they were `batches` batches before this one (empty before)."""
        return self.snapshots[-1 - batches] if len(self.snapshots) > batches else {}


class RankingStrategy:
    """Top-k by score, equal weight, traded at the open after each decision."""

    def __init__(self, market: MarketData, bus: EventBus, scores: dict[int, dict[str, float]],
                 k: int, every: int, invested: float, account: Portfolio, wiring: Wiring
                 ) -> None:
        self.market = market
        self.bus = bus
        self.scores = scores
        self.k = k
        self.invested = invested
        self.account = account
        self.wiring = wiring
        self.portfolio = account  # the portfolio `get_position` reads
        self.second = Portfolio(account.cash)  # a copy nobody sends fills to
        self.cache = PositionCache(account)
        self.decision_bars = set(sorted(scores)[::every])
        self.scheduled: dict[int, dict[str, float]] = {}
        self.decisions: list[tuple[int, dict[str, float]]] = []
        self.pending: dict[str, float] = {}
        self.trading_bar = -1
        bus.subscribe(MarketEvent, self.on_market)

    def on_market(self, event: MarketEvent) -> None:
        if event.phase == OPEN and event.bar in self.scheduled:
            self.trade(event.bar, OPEN, self.scheduled.pop(event.bar))
        elif event.phase == CLOSE and event.bar in self.decision_bars:
            targets = self.rank(event.bar)
            self.decisions.append((event.bar, targets))
            wrong = self.wiring.on("wrong_bar", event.bar)
            delay = wrong.param if wrong else 1
            if delay == 0:
                self.trade(event.bar, CLOSE, targets)
            elif event.bar + delay < len(self.market):
                self.scheduled[event.bar + delay] = targets

    def rank(self, bar: int) -> dict[str, float]:
        """The k highest scores (ties to the name that sorts first) at `invested / k`."""
        ranked = sorted(self.scores[bar].items(), key=lambda item: (-item[1], item[0]))
        return {asset: self.invested / self.k for asset, _ in ranked[: self.k]}

    def trade(self, bar: int, phase: str, targets: dict[str, float]) -> None:
        """`order_target_percent` for every target and every held asset, then the batch."""
        self.cache.refresh()
        self.trading_bar = bar
        self.pending = {}
        self.prices = self.market.prices(bar, phase)
        self.book_value = self.account.value(self.prices)
        held = {a for a in self.holdings(bar)}
        for asset in sorted({a for a, w in targets.items() if w != 0.0} | held):
            self.order_target_percent(asset, targets.get(asset, 0.0), bar, phase)
        self.bus.publish(BatchEvent(bar, phase))

    def holdings(self, bar: int) -> dict[str, float]:
        """The positions the strategy believes it holds."""
        if self.wiring.on("second_portfolio", bar):
            return self.second.positions
        late = self.wiring.on("late_cache", bar)
        if late:
            return self.cache.lagged(late.param)
        return self.portfolio.positions

    def get_position(self, asset: str, bar: int) -> float:
        return self.holdings(bar).get(asset, 0.0)

    def order_target_percent(self, asset: str, pct: float, bar: int, phase: str) -> None:
        price = self.prices[asset]
        target = pct * self.book_value
        bias = self.wiring.on("sizing_bias", bar)
        if bias and pct != 0.0:
            target *= 1 + bias.param
        position = self.get_position(asset, bar) + self.pending.get(asset, 0.0)
        if pct != 0.0 and self.wiring.on("whole_target", bar):
            position = 0.0
        shares = target / price - position
        if shares == 0.0:
            return
        self.pending[asset] = self.pending.get(asset, 0.0) + shares
        self.bus.publish(OrderEvent(bar, phase, Order(asset, shares, target - position * price)))
