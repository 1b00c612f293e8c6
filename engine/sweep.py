"""Parameter sweeps at engine speed: many settings on one validated market, in one call.

A sweep is a list of `Point`s (a strategy setting, top-K and rebalance interval, and the
execution settings that differ from a base config). The market is validated and pivoted
once, each strategy setting's weights are built and validated once, and the points run
on a pool of threads: the compiled loop releases the interpreter lock, so the points of a
sweep use every core. Each point's result is the one `run_backtest` gives for it alone.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from engine.progress import progress


@dataclass(frozen=True)
class Point:
    """One parameter set: top-K, rebalance interval and the settings changed from the base."""

    top_k: int
    every: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """`k25 every21 fees=0.001 fill=next_open`: the point as a reader names it."""
        changed = " ".join(f"{name}={value}" for name, value in self.settings.items())
        return f"k{self.top_k} every{self.every}" + (f" {changed}" if changed else "")


def grid(top_k: Iterable[int], every: Iterable[int], **axes: Iterable[Any]) -> list[Point]:
    """Every combination of top-K, interval and the given settings' values, in that order."""
    names = list(axes)
    return [Point(k, n, dict(zip(names, values, strict=True)))
            for k, n in itertools.product(top_k, every)
            for values in itertools.product(*(list(axes[name]) for name in names))]


def run_sweep(
    prices: Any, scores: pl.DataFrame, points: Sequence[Point], base: Any = None,
    workers: int | None = None, keep: Callable[[Point, Any], Any] | None = None,
) -> list[tuple[Point, Any]]:
    """Backtest every point on `prices` with the top-K weights of `scores` (`timestamp,
    asset, score`); `base` is the `BacktestConfig` the points' settings change.

    Returns (point, what `keep` makes of its `BacktestResult`) in the points' order; by
    default the result itself (every table is then built when read). `workers` threads
    (default: the machine's cores) share the read-only market.
    """
    from engine import BacktestConfig, market_of
    from engine.backtest import run_weights, valid_weights
    from engine.research.weights import top_k_weights

    base = base or BacktestConfig()
    market = market_of(prices)
    configs = [base.with_(**point.settings) for point in points]
    keys = [(point.top_k, point.every, config.allow_short, config.allow_leverage)
            for point, config in zip(points, configs, strict=True)]
    weights = {}
    for key, config in zip(keys, configs, strict=True):
        if key not in weights:
            top = top_k_weights(scores, k=key[0], every=key[1])
            weights[key] = valid_weights(top, market, config)

    def one(index: int) -> tuple[Point, Any]:
        result = run_weights(market, weights[keys[index]], configs[index])
        return points[index], keep(points[index], result) if keep else result

    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = pool.map(one, range(len(points)))
        return list(progress(done, total=len(points), what="sweep", unit="point"))


def summary(swept: Sequence[tuple[Point, Any]]) -> pl.DataFrame:
    """One row per point: its label, strategy setting, changed settings and metrics."""
    rows = []
    for point, result in swept:
        metrics = result if isinstance(result, dict) else result.metrics
        rows.append({"point": point.label, "top_k": point.top_k, "every": point.every,
                     **{name: str(value) for name, value in point.settings.items()},
                     **{name: float(value) for name, value in metrics.items()
                        if isinstance(value, int | float)}})
    return pl.DataFrame(rows)
