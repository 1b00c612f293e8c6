"""The engine: market events on a bus drive the strategy, the broker and the risk manager.

Each bar is announced at its open, its range and its close; after each announcement the
bus is drained, so every order, batch and fill it set off has been handled before the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from engine.demo.broker import Broker
from engine.demo.bus import EventBus
from engine.demo.market import CLOSE, OPEN, RANGE, MarketData, MarketEvent
from engine.demo.records import fill_frame
from engine.demo.risk import RiskManager
from engine.demo.strategy import RankingStrategy
from engine.demo.wiring import Wiring

CORRECT = Wiring()


@dataclass(frozen=True)
class EngineRun:
    """What one run produced: its fill log, the decisions it made (as target weights),
    the equity its own account reported at each close, and how it was wired."""

    fills: pl.DataFrame
    weights: pl.DataFrame
    equity: pl.DataFrame
    initial_cash: float
    wiring: Wiring

    @property
    def final_equity(self) -> float:
        return float(self.equity["equity"][-1])

    @property
    def total_return(self) -> float:
        return self.final_equity / self.initial_cash - 1.0


def run_engine(prices: pl.DataFrame, scores: pl.DataFrame, *, k: int, every: int,
               invested: float = 1.0, fees: float = 0.001, cash: float = 1_000_000.0,
               wiring: Wiring = CORRECT) -> EngineRun:
    """Run the engine on `prices` (a bar for every asset on every day) and `scores`
    (`timestamp, asset, score`: the strategy ranks them at each decision's close)."""
    market = MarketData(prices)
    bar_of = {t: i for i, t in enumerate(market.timestamps)}
    by_bar: dict[int, dict[str, float]] = {}
    for t, asset, score in scores.select("timestamp", "asset", "score").iter_rows():
        if score is not None and score == score:
            by_bar.setdefault(bar_of[t], {})[asset] = float(score)
    bus = EventBus()
    broker = Broker(market, bus, cash, fees, wiring)
    strategy = RankingStrategy(market, bus, by_bar, k, every, invested, broker.account, wiring)
    RiskManager(market, bus, wiring)
    equity = []
    for bar in range(len(market)):
        for phase in (OPEN, RANGE, CLOSE):
            bus.publish(MarketEvent(bar, phase))
            bus.drain()
        equity.append(broker.account.value(market.close[bar]))
    stamps = market.timestamps
    weights = pl.DataFrame(
        [(stamps[bar], asset, w) for bar, targets in strategy.decisions
         for asset, w in sorted(targets.items())],
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "weight": pl.Float64},
        orient="row")
    return EngineRun(fill_frame(broker.log, stamps), weights,
                     pl.DataFrame({"timestamp": stamps, "equity": equity},
                                  schema={"timestamp": pl.Datetime("us"),
                                          "equity": pl.Float64}),
                     float(cash), wiring)
