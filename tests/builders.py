"""Tiny hand-made markets and weight tables for tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

START = dt.datetime(2024, 1, 1)


def calendar(n_bars: int) -> list[dt.datetime]:
    return [START + dt.timedelta(days=i) for i in range(n_bars)]


def bars(
    open_: np.ndarray | list,
    close: np.ndarray | list,
    assets: list[str] | None = None,
    volume: float = 1e6,
) -> pl.DataFrame:
    """Long bars from (T, N) open and close arrays; NaN marks a missing bar."""
    open_ = np.atleast_2d(np.asarray(open_, dtype=float).T).T
    close = np.atleast_2d(np.asarray(close, dtype=float).T).T
    n_bars, n_assets = close.shape
    assets = assets or [f"A{i}" for i in range(n_assets)]
    times = calendar(n_bars)
    rows = [
        (times[t], assets[j], open_[t, j], max(open_[t, j], close[t, j]),
         min(open_[t, j], close[t, j]), close[t, j], volume)
        for t in range(n_bars) for j in range(n_assets)
        if np.isfinite(close[t, j])
    ]
    return pl.DataFrame(
        rows, schema=["timestamp", "asset", "open", "high", "low", "close", "volume"],
        orient="row",
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


def weights(decisions: dict[int, dict[str, float]]) -> pl.DataFrame:
    """Weights table from {bar: {asset: weight}}."""
    times = calendar(max(decisions) + 1)
    rows = [(times[t], a, w) for t, ws in sorted(decisions.items()) for a, w in ws.items()]
    return pl.DataFrame(rows, schema=["timestamp", "asset", "weight"], orient="row").with_columns(
        pl.col("timestamp").cast(pl.Datetime("us"))
    )


def random_universe(
    n_assets: int, n_bars: int, seed: int, missing: float = 0.0
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Random-walk bars, returned with their (T, N) open and close arrays."""
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (n_bars, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.006, close.shape))
    if missing:
        gaps = rng.random(close.shape) < missing
        gaps[0] = False
        close = np.where(gaps, np.nan, close)
        open_ = np.where(gaps, np.nan, open_)
    return bars(open_, close, [f"S{j:03d}" for j in range(n_assets)]), open_, close


def top_k_weights(
    n_assets: int, n_bars: int, k: int, every: int, seed: int, names: list[str] | None = None
) -> pl.DataFrame:
    """Equal weights on the top k of a random score, every `every` bars."""
    rng = np.random.default_rng(seed + 1)
    names = names or [f"S{j:03d}" for j in range(n_assets)]
    decisions = {}
    for t in range(0, n_bars - 1, every):
        top = np.argsort(-rng.normal(size=n_assets), kind="stable")[:k]
        decisions[t] = {names[j]: 1.0 / k for j in sorted(top)}
    return weights(decisions)
