"""Strategies: a batch callback per timestamp, and the built-in target-weight strategy."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.context import Context
from engine.data.market import Market


class Strategy:
    """Base strategy: `on_bar` is called at the close of every decision timestamp."""

    def decision_bars(self, market: Market) -> np.ndarray | None:
        """Boolean mask of the bars at which to call `on_bar`; None means every bar."""
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

    An asset missing from a decision timestamp has target weight 0.
    """

    def __init__(self, weights: pl.DataFrame) -> None:
        self._weights = weights
        self._dense = np.empty((0, 0))

    def decision_bars(self, market: Market) -> np.ndarray:
        self._dense = decision_weights(market, self._weights)
        return ~np.isnan(self._dense[:, 0])

    def on_bar(self, ctx: Context) -> None:
        ctx.rebalance(self._dense[ctx.bar])
