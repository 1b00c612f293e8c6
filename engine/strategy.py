"""Strategies: a batch callback per timestamp, and the built-in target-weight strategy."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.context import Context
from engine.market import Market


class Strategy:
    """Base strategy: `on_bar` is called at the close of every decision timestamp."""

    def decision_bars(self, market: Market) -> np.ndarray | None:
        """Boolean mask of the bars at which to call `on_bar`; None means every bar."""
        return None

    def on_bar(self, ctx: Context) -> None:
        """Look at `ctx` and place orders; they fill at the configured fill time."""


class TargetWeights(Strategy):
    """Rebalance to the weights given for each decision timestamp (`timestamp, asset, weight`).

    An asset missing from a decision timestamp has target weight 0.
    """

    def __init__(self, weights: pl.DataFrame) -> None:
        self._weights = weights
        self._rows: dict[int, np.ndarray] = {}

    def decision_bars(self, market: Market) -> np.ndarray:
        bars = market.bar_index(self._weights["timestamp"])
        cols = market.asset_index(self._weights["asset"])
        decisions = np.unique(bars)
        dense = np.zeros((len(decisions), market.n_assets))
        dense[np.searchsorted(decisions, bars), cols] = self._weights["weight"].to_numpy()
        self._rows = dict(zip(decisions.tolist(), dense, strict=True))
        mask = np.zeros(market.n_bars, dtype=bool)
        mask[decisions] = True
        return mask

    def on_bar(self, ctx: Context) -> None:
        ctx.rebalance(self._rows[ctx.bar])
