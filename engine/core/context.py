"""What a strategy sees and does at one timestamp: read-only state and the order methods.

Every array a strategy sees is sealed (read-only, with no writable base): market rows,
positions, open orders. Every order method takes one asset or an array of assets (names
or column indices) and a scalar or an array of amounts, and queues the orders for their
fill time through the order book's kernels. Target methods replace the asset's open
order, so they net pending orders (docs/semantics.md); profiles that size at the decision
turn targets into share orders here, with the same kernels the compiled loop uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.core.book import OrderBook
from engine.core.config import KernelSettings
from engine.core.kernels.loop import N_FLOAT_WORK, N_INT_WORK, due_bar, rebalance
from engine.core.kernels.sizing import decision_orders
from engine.core.ledger import Ledger
from engine.core.records import DecisionSizing, OrderKind
from engine.data.market import Market, sealed


class Context:
    """The strategy's view of bar `bar`: ledger state, bars, open orders, order methods."""

    def __init__(self, market: Market, ledger: Ledger, book: OrderBook,
                 settings: KernelSettings) -> None:
        self._market = market
        self._ledger = ledger
        self._book = book
        self._settings = settings
        self._names = {name: i for i, name in enumerate(market.assets.to_list())}
        self.bar = 0
        self.equity = float("nan")

    @property
    def timestamp(self) -> Any:
        return self._market.timestamps[self.bar]

    @property
    def assets(self) -> list[str]:
        return self._market.assets.to_list()

    @property
    def positions(self) -> np.ndarray:
        """Shares held by asset index, after this bar's fills (read-only)."""
        return self._ledger.positions

    @property
    def cash(self) -> float:
        return self._ledger.cash

    @property
    def open(self) -> np.ndarray:
        return self._market.open[self.bar]

    @property
    def high(self) -> np.ndarray:
        return self._market.high[self.bar]

    @property
    def low(self) -> np.ndarray:
        return self._market.low[self.bar]

    @property
    def close(self) -> np.ndarray:
        return self._market.close[self.bar]

    @property
    def volume(self) -> np.ndarray:
        return self._market.volume[self.bar]

    @property
    def last_close(self) -> np.ndarray:
        """Last known close of every asset (NaN before its first bar)."""
        return self._market.last_close[self.bar]

    @property
    def has_open_order(self) -> np.ndarray:
        return sealed(self._book.open_ids >= 0)

    @property
    def pending(self) -> np.ndarray:
        """Shares the open orders would trade if filled at this close (0 where none)."""
        return self._book.pending(self._ledger.positions, self.equity, self.last_close)

    def asset_index(self, asset: Any) -> np.ndarray:
        """Column indices of one asset or many, given as names or indices."""
        if isinstance(asset, str | int | np.integer):
            asset = [asset]
        arr = np.asarray(asset)
        if arr.dtype.kind in "iu":
            if arr.size and (arr.min() < 0 or arr.max() >= self._market.n_assets):
                raise KeyError(f"asset index out of range: {arr.tolist()}")
            return arr.astype(np.int64)
        try:
            return np.fromiter((self._names[a] for a in arr.tolist()), np.int64, arr.size)
        except KeyError as missing:
            raise KeyError(f"unknown asset {missing}") from None

    def order(self, asset: Any, shares: Any) -> np.ndarray:
        """Trade a number of shares (negative sells); returns the order ids."""
        return self._submit(asset, OrderKind.shares, shares)

    def order_value(self, asset: Any, value: Any) -> np.ndarray:
        """Trade shares worth `value` at the fill price."""
        return self._submit(asset, OrderKind.value, value)

    def order_percent(self, asset: Any, percent: Any) -> np.ndarray:
        """Trade shares worth `percent` of the book value at the fill."""
        return self._submit(asset, OrderKind.percent, percent)

    def order_target(self, asset: Any, shares: Any) -> np.ndarray:
        """Trade the delta to hold `shares`."""
        return self._submit(asset, OrderKind.target_shares, shares)

    def order_target_value(self, asset: Any, value: Any) -> np.ndarray:
        """Trade the delta to hold shares worth `value` at the fill price."""
        return self._submit(asset, OrderKind.target_value, value)

    def order_target_percent(self, asset: Any, percent: Any) -> np.ndarray:
        """Trade the delta to hold `percent` of the book value at the fill."""
        return self._submit(asset, OrderKind.target_percent, percent)

    def rebalance(self, weights: Mapping[Any, float] | np.ndarray) -> np.ndarray:
        """Move the book to target weights; what is held and not in `weights` goes to 0.

        `weights` is a mapping of asset to weight or an array over the asset index.
        Orders are submitted sells first, by the delta estimated at this close.
        """
        n_assets = self._market.n_assets
        if isinstance(weights, Mapping):
            target = np.zeros(n_assets)
            if weights:
                target[self.asset_index(list(weights))] = list(weights.values())
        else:
            target = np.array(weights, dtype=np.float64)
            if target.shape != (n_assets,):
                raise ValueError(f"weights must have one entry per asset; got {target.shape}")
        if not np.isfinite(target).all():
            raise ValueError("weights must be finite")
        first = self._book.n_orders
        self._book.reserve(n_assets)
        placed = rebalance(self._settings, self.bar, target, self.equity,
                           self._ledger.positions, self.last_close, *self._book.state(),
                           np.empty((N_INT_WORK, n_assets), np.int64),
                           np.empty((N_FLOAT_WORK, n_assets)))
        return np.arange(first, first + placed, dtype=np.int64)

    def _submit(self, asset: Any, kind: int, amount: Any) -> np.ndarray:
        assets = self.asset_index(asset)
        amounts = np.broadcast_to(np.asarray(amount, dtype=np.float64), assets.shape).copy()
        if not np.isfinite(amounts).all():
            raise ValueError(f"order amounts must be finite; got {amounts.tolist()}")
        if len(np.unique(assets)) != len(assets):
            raise ValueError("an asset appears twice in one order call")
        rule = self._settings.decision_sizing
        if kind >= OrderKind.target_shares and rule != DecisionSizing.at_fill:
            shares = np.empty(len(assets))
            decision_orders(rule, kind, amounts, self.equity, self._ledger.positions[assets],
                            self.last_close[assets], shares)
            assets, amounts, kind = assets[shares != 0], shares[shares != 0], OrderKind.shares
        return self._book.submit(self.bar, due_bar(self._settings, self.bar), assets, kind,
                                 amounts)
