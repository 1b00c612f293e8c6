"""`tradegap demo`: the story tradegap was built for, rebuilt on generated data.

A research team's event-driven engine ranked 500 assets by a score and held the top 25 at
4% each; it returned many times what a plain manual loop did on the same decisions. Its
faults were the classic ones. `SeedEngine` is such an engine, written as an event loop:
its `order_target_percent` sizes the whole target instead of the delta (so held names are
bought again and names that drop out are never sold), it never checks cash, and one
rebalance in the middle of the run books its fills twice (a bug that was fixed and came
back). `run_demo` runs it and the reference loop on the same prices and weights and
explains the gap.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.data.synthetic import generate_market, momentum_scores
from engine.gap.analyze import GapAnalysis, Side, analyze
from engine.gap.report import render_markdown, render_png
from engine.reference import rules_for, run_reference
from engine.research.weights import top_k_weights
from engine.results.artifacts import claim_output, to_json, write_output

FEES = 0.001


@dataclass(frozen=True)
class Event:
    """One event of the seed engine's queue."""

    kind: str  # "bar" | "signal" | "order" | "fill"
    bar: int
    asset: str = ""
    value: float = 0.0  # signal: target weight; order, fill: shares
    price: float = 0.0


class SeedEngine:
    """An event-driven engine with the seed's bugs (see the module docstring)."""

    def __init__(self, prices: pl.DataFrame, weights: pl.DataFrame, cash: float,
                 double_booked_rebalance: int) -> None:
        self.times = prices["timestamp"].unique().sort().to_list()
        index = {t: i for i, t in enumerate(self.times)}
        self.opens: dict[tuple[int, str], float] = {}
        self.closes: list[dict[str, float]] = [{} for _ in self.times]
        for t, asset, open_, close in prices.select("timestamp", "asset", "open",
                                                    "close").iter_rows():
            self.opens[(index[t], asset)] = open_
            self.closes[index[t]][asset] = close
        self.known: dict[str, float] = {}  # last close of every asset, as the bars go by
        self.signals: dict[int, dict[str, float]] = {}
        for t, asset, weight in weights.iter_rows():
            self.signals.setdefault(index[t], {})[asset] = weight
        self.cash = cash
        self.holdings: dict[str, float] = {}
        decisions = sorted(self.signals)
        self.double_booked = decisions[min(double_booked_rebalance, len(decisions) - 1)] + 1
        self.log: list[tuple] = []

    def run(self) -> pl.DataFrame:
        queue: deque[Event] = deque()
        waiting: list[Event] = []
        for bar in range(len(self.times)):
            self.known.update(self.closes[bar])
            queue.append(Event("bar", bar))
            while queue:
                event = queue.popleft()
                if event.kind == "bar":
                    queue.extend(Event("fill", bar, o.asset, o.value,
                                       self.opens[(bar, o.asset)])
                                 for o in waiting if (bar, o.asset) in self.opens)
                    waiting = [o for o in waiting if (bar, o.asset) not in self.opens]
                    for asset, weight in self.signals.get(bar, {}).items():
                        queue.append(Event("signal", bar, asset, weight))
                elif event.kind == "signal":
                    shares = self.order_target_percent(event.asset, event.value)
                    if shares:
                        waiting.append(Event("order", bar, event.asset, shares))
                elif event.kind == "fill":
                    self.book(event)
        return pl.DataFrame(self.log, orient="row", schema={
            "timestamp": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
            "price": pl.Float64, "fee": pl.Float64})

    def order_target_percent(self, asset: str, weight: float) -> float:
        """The whole target in shares at the last close: the held position is not netted."""
        close = self.known.get(asset, 0.0)
        return weight * self.equity() / close if weight and close else 0.0

    def book(self, fill: Event) -> None:
        fee = abs(fill.value) * fill.price * FEES
        self.log.append((self.times[fill.bar], fill.asset, fill.value, fill.price, fee))
        times = 2 if fill.bar == self.double_booked else 1
        for _ in range(times):
            self.cash -= fill.value * fill.price + fee
            self.holdings[fill.asset] = self.holdings.get(fill.asset, 0.0) + fill.value

    def equity(self) -> float:
        return self.cash + sum(q * self.known[a] for a, q in self.holdings.items())


def run_demo(out: str | Path, n_assets: int = 500, n_days: int = 1260,
             force: bool = False) -> GapAnalysis:
    """The seed engine against the reference loop on generated data; reports in `out`."""
    claim_output(out, "demo", force=force)
    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=5, gaps=False)
    weights = top_k_weights(momentum_scores(prices), 25, 21)
    cash = 1_000_000.0
    manual = run_reference(prices, weights, {"fees": FEES, "initial_cash": cash})
    rebalances = weights["timestamp"].n_unique()
    engine = SeedEngine(prices, weights, cash, double_booked_rebalance=rebalances // 2).run()
    analysis = analyze(Side(manual.fills.drop("order_id"), rules=rules_for({"fees": FEES}),
                            name="manual loop"),
                       Side(engine, name="event-driven engine"), prices, weights, cash)

    def fill(tmp: Path) -> None:
        prices.write_parquet(tmp / "prices.parquet")
        weights.write_parquet(tmp / "weights.parquet")
        engine.write_parquet(tmp / "engine_fills.parquet")
        manual.fills.drop("order_id").write_parquet(tmp / "manual_fills.parquet")
        (tmp / "gap_summary.json").write_text(to_json(analysis.summary))
        (tmp / "gap_report.md").write_text(render_markdown(analysis))
        (tmp / "gap_report.png").write_bytes(render_png(analysis))

    write_output(out, "demo", fill, force=force)
    return analysis
