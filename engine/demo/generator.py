"""A generator of engines: random compositions of wiring bugs with random onsets, on random
markets, each returned with its fill log and the truth about it.

`draw_engine(seed)` draws a market (universe size, days, data seed, names held, rebalance
interval, share invested, fee rate) and one to three wiring bugs (sometimes a negative
control among them), each from the start or from a decision in the run. It runs the
engine with them, the reference (the trusted side A, `tradegap` rules), and the engine
once more without each bug: a bug whose removal changes no fill left no trace and cannot be
named. `CAUSES_OF` maps each bug to the analysis's cause names that name it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.data.synthetic import generate_market, momentum_scores
from engine.demo.engine import EngineRun, run_engine
from engine.demo.wiring import Bug, Wiring
from engine.gap.vocabulary import CAUSES
from engine.reference import Rules, rules_for, run_reference
from engine.results.compare import Tolerance, join_sides

INITIAL_CASH = 1_000_000.0

# The analysis's causes that name each bug (any one of them does). A bug none of whose
# causes is in the analysis's vocabulary is outside it: it must come out `unexplained`.
CAUSES_OF: dict[str, tuple[str, ...]] = {
    "double_dispatch": ("duplicate_fill",),
    "second_portfolio": ("accumulation",),
    "late_cache": ("stale_position",),
    "whole_target": ("accumulation",),
    "wrong_bar": ("look_ahead", "timing"),
    "fees_twice": ("sizing_basis", "fee"),
    "stale_cash": ("cash_limit",),
    "risk_manager": ("exit_rule",),  # orders no decision made: a rule of B's own
    "double_log": ("duplicate_fill",),
    "sizing_bias": (),
    "lost_order": (),
}
CONTROLS = ("sizing_bias", "lost_order")
WIRING_BUGS = tuple(name for name in CAUSES_OF if name not in CONTROLS)


def causes_of(bug: Bug) -> tuple[str, ...]:
    """The causes that name `bug` (a wrong bar at the decision's own close is look-ahead,
    two bars late is timing)."""
    if bug.name == "wrong_bar":
        return ("look_ahead", "timing") if bug.param == 0 else ("timing",)
    return CAUSES_OF[bug.name]


def in_vocabulary(bug: Bug) -> bool:
    return any(cause in CAUSES for cause in causes_of(bug))


@dataclass(frozen=True)
class Market:
    """A drawn market and strategy: `n_assets` × `n_days` bars from `data_seed`, top `k`
    every `every` bars at `invested / k` each, fees a fraction of traded value."""

    n_assets: int
    n_days: int
    data_seed: int
    k: int
    every: int
    invested: float
    fees: float

    def words(self) -> str:
        return (f"{self.n_assets} assets × {self.n_days} days (data seed {self.data_seed}), "
                f"top {self.k} every {self.every}, {self.invested:.0%} invested, "
                f"fees {self.fees:.2%}")


@dataclass(frozen=True)
class Planted:
    """One planted bug and what it did: the causes that name it, whether any is in the
    vocabulary, whether it changed a fill and the first bar whose fills it changed."""

    bug: Bug
    causes: tuple[str, ...]
    in_vocabulary: bool
    changed: bool
    first_changed: int | None


@dataclass(frozen=True)
class DrawnEngine:
    """A drawn engine's run (side B), the reference's fills on the same decisions (side A,
    with its rules) and the truth about the bugs."""

    seed: int
    market: Market
    prices: pl.DataFrame
    weights: pl.DataFrame
    fills: pl.DataFrame
    reference: pl.DataFrame
    rules: Rules
    run: EngineRun
    planted: tuple[Planted, ...]

    @property
    def wiring(self) -> Wiring:
        return self.run.wiring

    @property
    def all_in_vocabulary(self) -> bool:
        return all(p.in_vocabulary for p in self.planted)

    def words(self) -> str:
        bugs = ", ".join(str(p.bug) + ("" if p.changed else " (no trace)")
                         for p in self.planted) or "no bugs"
        return f"draw {self.seed}: {bugs}; {self.market.words()}"


def draw_market(rng: np.random.Generator) -> Market:
    n_assets = int(rng.integers(12, 41))
    return Market(n_assets=n_assets, n_days=int(rng.integers(120, 241)),
                  data_seed=int(rng.integers(0, 2**31)),
                  k=int(rng.integers(3, max(4, n_assets // 3) + 1)),
                  every=int(rng.choice([3, 5, 10, 21])),
                  invested=float(rng.choice([1.0, 1.0, 0.95, 0.9])),
                  fees=float(rng.choice([0.0, 0.0005, 0.001, 0.001, 0.002])))


def draw_bugs(rng: np.random.Generator, decision_bars: list[int], controls: bool = True,
              forced: str | None = None) -> tuple[Bug, ...]:
    """One to three wiring bugs (a negative control in about one draw in six), each from
    the start or from a decision after the first few; `forced` is always among them."""
    count = int(rng.choice([1, 1, 2, 2, 3]))
    names = list(rng.choice(WIRING_BUGS, size=count, replace=False))
    if controls and rng.random() < 1 / 6:
        names[-1] = str(rng.choice(CONTROLS))
    if forced is not None and forced not in names:
        names[0] = forced
    bugs = []
    late = decision_bars[2:-2] or decision_bars[-1:]
    for name in names:
        since = 0 if rng.random() < 0.5 else int(rng.choice(late))
        bugs.append(Bug(str(name), since, _param(rng, str(name))))
    return tuple(bugs)


def _param(rng: np.random.Generator, name: str):
    if name == "double_dispatch":
        return str(rng.choice(["as_executed", "after_batch"]))
    if name == "stale_cash":
        return str(rng.choice(["first_buy", "opening"]))
    if name == "late_cache":
        return int(rng.choice([1, 2]))
    if name == "wrong_bar":
        return int(rng.choice([0, 2]))
    if name == "risk_manager":
        return float(rng.choice([0.03, 0.05, 0.08, 0.1]))
    if name == "sizing_bias":
        return float(rng.choice([0.01, 0.02]))
    if name == "lost_order":
        return int(rng.integers(1, 4))
    return None


def draw_engine(seed: int, controls: bool = True, forced: str | None = None) -> DrawnEngine:
    """The engine of draw `seed` with its truth (the same seed draws the same engine;
    `forced`: a bug put in every draw, in place of the first one drawn)."""
    rng = np.random.default_rng([seed, 15])
    market = draw_market(rng)
    prices = generate_market(market.n_assets, market.n_days, market.data_seed, gaps=False)
    scores = momentum_scores(prices)
    clean = _run(prices, scores, market, Wiring())
    stamps = prices["timestamp"].unique().sort().to_list()
    bar_of = {t: i for i, t in enumerate(stamps)}
    decision_bars = [bar_of[t] for t in clean.weights["timestamp"].unique().sort().to_list()]
    wiring = Wiring(draw_bugs(rng, decision_bars, controls, forced))
    return build(seed, market, prices, scores, wiring, clean.weights)


def build(seed: int, market: Market, prices: pl.DataFrame, scores: pl.DataFrame,
          wiring: Wiring, weights: pl.DataFrame | None = None) -> DrawnEngine:
    """Run an engine wired with `wiring`, the reference, and the truth about each bug."""
    run = _run(prices, scores, market, wiring)
    weights = run.weights if weights is None else weights
    config = {"fees": market.fees, "initial_cash": INITIAL_CASH}
    reference = run_reference(prices, weights, config).fills.select(
        "timestamp", "asset", "quantity", "price", "fee")
    bar_of = {t: i for i, t in enumerate(prices["timestamp"].unique().sort().to_list())}
    planted = []
    for bug in wiring.bugs:
        without = _run(prices, scores, market, wiring.without(bug.name))
        joined = join_sides(run.fills, without.fills, Tolerance())
        differ = joined.filter(pl.col("divergent"))
        first = bar_of[differ["timestamp"].min()] if differ.height else None
        planted.append(Planted(bug, causes_of(bug), in_vocabulary(bug), differ.height > 0,
                               first))
    return DrawnEngine(seed, market, prices, weights, run.fills, reference,
                       rules_for(config), run, tuple(planted))


def _run(prices: pl.DataFrame, scores: pl.DataFrame, market: Market, wiring: Wiring
         ) -> EngineRun:
    return run_engine(prices, scores, k=market.k, every=market.every,
                      invested=market.invested, fees=market.fees, cash=INITIAL_CASH,
                      wiring=wiring)
