"""Target weights built from scores: `timestamp, asset, score` in, `timestamp, asset, weight`
out, sorted by (timestamp, asset); each output timestamp is one decision at its close.
"""

from __future__ import annotations

import polars as pl

from engine.errors import InputError


def top_k_weights(scores: pl.DataFrame, k: int, every: int) -> pl.DataFrame:
    """Weight 1/k on the k highest scores at every `every`-th scored timestamp, from the first.

    Null and NaN scores are ignored; a timestamp counts only if some asset has a score. Ties
    go to the asset whose name sorts first; with fewer than k scored assets the weights sum
    to less than 1. Scores without one finite value are an `InputError`: an empty weight
    table would only fail later, in every backtest.
    """
    if k < 1 or every < 1:
        raise ValueError(f"k and every must be at least 1, got k={k}, every={every}")
    scored = scores.select("timestamp", "asset", pl.col("score").cast(pl.Float64)).filter(
        pl.col("score").is_not_null() & pl.col("score").is_not_nan()
    )
    if scored.height == 0:
        raise InputError("signals", f"no target weights: none of the {scores.height} score "
                         "rows has a finite score")
    decisions = scored["timestamp"].unique().sort().gather_every(every)
    return (
        scored.filter(pl.col("timestamp").is_in(decisions.implode()))
        .sort(["timestamp", "score", "asset"], descending=[False, True, False])
        .filter(pl.int_range(pl.len()).over("timestamp") < k)
        .select("timestamp", "asset", pl.lit(1.0 / k, dtype=pl.Float64).alias("weight"))
        .sort("timestamp", "asset")
    )
