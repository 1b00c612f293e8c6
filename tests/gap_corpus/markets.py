"""The corpus's markets: generated bars and momentum target weights, built once per process.

Each market fixes its size, its seed, whether bars are missing, how often it rebalances and
what the weights of a decision sum to: 1 leaves no cash to spare (the last buy of each
batch shrinks to the cash left), less than 1 leaves cash over.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import polars as pl

from engine.data.synthetic import generate_market, momentum_scores
from engine.research.weights import top_k_weights
from tests.gap_corpus.loop import Tape

INITIAL_CASH = 1_000_000.0


@dataclass(frozen=True)
class MarketSpec:
    name: str
    n_assets: int
    n_days: int
    seed: int
    gaps: bool
    k: int  # names held
    every: int  # bars between decisions
    invested: float  # what a decision's weights sum to
    fees: float = 0.001  # A's fees, a fraction of traded value
    volume_scale: float = 1.0  # thin markets (zipline's volume cap)

    @property
    def words(self) -> str:
        cash = "no cash to spare" if self.invested >= 1 else f"{self.invested:.0%} invested"
        bars = "missing bars" if self.gaps else "complete"
        return (f"{self.n_assets} assets × {self.n_days} bars (seed {self.seed}, {bars}), "
                f"top {self.k} every {self.every}, {cash}")


MARKETS = {m.name: m for m in (
    MarketSpec("tight5", 30, 200, 11, False, 8, 5, 1.0),
    MarketSpec("spare21", 40, 250, 12, False, 10, 21, 0.9),
    MarketSpec("daily", 24, 150, 13, False, 6, 1, 1.0),
    MarketSpec("gaps5", 50, 300, 20, True, 10, 5, 0.95),
    MarketSpec("spare1", 60, 120, 15, False, 15, 1, 0.9),
    MarketSpec("gaps21", 20, 180, 20, True, 5, 21, 1.0),
    MarketSpec("tight21", 36, 260, 17, False, 9, 21, 1.0),
    MarketSpec("thin", 20, 140, 18, False, 5, 5, 1.0, volume_scale=0.1),
    MarketSpec("seed", 500, 21 * 240, 7, False, 25, 21, 1.0),
)}


@cache
def prices(name: str) -> pl.DataFrame:
    spec = MARKETS[name]
    bars = generate_market(spec.n_assets, spec.n_days, spec.seed, gaps=spec.gaps)
    if spec.volume_scale != 1.0:
        bars = bars.with_columns((pl.col("volume") * spec.volume_scale).round(0))
    return bars


@cache
def weights(name: str) -> pl.DataFrame:
    spec = MARKETS[name]
    chosen = top_k_weights(momentum_scores(prices(name)), k=spec.k, every=spec.every)
    return chosen.with_columns(pl.col("weight") * spec.invested)


@cache
def tape(name: str) -> Tape:
    return Tape.of(prices(name))
