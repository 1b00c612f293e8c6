"""Strategies: a batch callback per timestamp, and the built-in target-weight strategy."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.context import Context
from engine.data.market import Market

WeightTable = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class Strategy:
    """Base strategy: `on_bar` is called at the close of every decision timestamp."""

    def decision_bars(self, market: Market) -> np.ndarray | None:
        """Boolean mask of the bars at which to call `on_bar`; None means every bar."""
        return None

    def weight_table(self, market: Market) -> WeightTable | None:
        """Target weights decided inside the compiled loop instead of calling `on_bar`.

        (decision mask per bar, first row of each bar (T + 1 entries), asset index,
        weight); None (the default) means the loop calls `on_bar`.
        """
        return None

    def on_bar(self, ctx: Context) -> None:
        """Look at `ctx` and place orders; they fill at the configured fill time."""


def decision_weights(market: Market, weights: pl.DataFrame) -> np.ndarray:
    """(T, N) target weights: decision rows complete with 0 for absent assets, NaN elsewhere."""
    dense = market.pivot(weights, "weight")
    decided = ~np.isnan(dense).all(axis=1)
    dense[decided] = np.nan_to_num(dense[decided])
    return dense


class TargetWeights(Strategy):
    """Rebalance to the weights given for each decision timestamp (`timestamp, asset, weight`).

    An asset missing from a decision timestamp has target weight 0. The rebalances run
    inside the compiled loop (`weight_table`), exactly as `ctx.rebalance` would do them.
    """

    def __init__(self, weights: pl.DataFrame) -> None:
        self._weights = weights
        self._table: WeightTable | None = None

    def weight_table(self, market: Market) -> WeightTable:
        """The weights by bar; rows must be sorted by (timestamp, asset), as loaded."""
        rows = market.bar_index(self._weights["timestamp"])
        assets = market.asset_index(self._weights["asset"])
        start = np.searchsorted(rows, np.arange(market.n_bars + 1)).astype(np.int64)
        decide = start[1:] > start[:-1]
        weight = self._weights["weight"].to_numpy().astype(np.float64)
        self._table = (decide, start, assets, weight)
        return self._table

    def decision_bars(self, market: Market) -> np.ndarray:
        return self.weight_table(market)[0]

    def on_bar(self, ctx: Context) -> None:
        _, start, assets, weight = self._table
        target = np.zeros(len(ctx.assets))
        rows = slice(start[ctx.bar], start[ctx.bar + 1])
        target[assets[rows]] = weight[rows]
        ctx.rebalance(target)
