"""What a strategy sees and does at one timestamp: read-only state and the order methods.

Every order method takes one asset or an array of assets (names or column indices) and a
scalar or an array of amounts, and queues the orders for their fill time. Target methods
replace the asset's open order, so they net pending orders (docs/semantics.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.core.book import (
    PERCENT,
    SHARES,
    TARGET_PERCENT,
    TARGET_SHARES,
    TARGET_VALUE,
    VALUE,
    OrderBook,
)
from engine.core.execution import size_orders
from engine.core.ledger import Ledger
from engine.core.profiles import PROFILES, Profile
from engine.data.market import Market


class Context:
    """The strategy's view of bar `bar`: ledger state, bars, open orders, order methods."""

    def __init__(
        self, market: Market, ledger: Ledger, book: OrderBook, fill_delay: int,
        profile: Profile = PROFILES["tradegap"],
    ) -> None:
        self._market = market
        self._ledger = ledger
        self._book = book
        self._fill_delay = fill_delay
        self._profile = profile
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
        return self._book.open_id >= 0

    @property
    def pending(self) -> np.ndarray:
        """Shares the open orders would trade if filled at this close (0 where none)."""
        book = self._book
        open_ = (book.open_id >= 0).nonzero()[0]
        out = np.zeros(self._market.n_assets)
        if len(open_):
            out[open_], _ = size_orders(
                book.open_orders(open_), self._ledger.positions[open_], self.equity,
                self.last_close[open_],
            )
        return out

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
        return self._submit(asset, SHARES, shares)

    def order_value(self, asset: Any, value: Any) -> np.ndarray:
        """Trade shares worth `value` at the fill price."""
        return self._submit(asset, VALUE, value)

    def order_percent(self, asset: Any, percent: Any) -> np.ndarray:
        """Trade shares worth `percent` of the book value at the fill."""
        return self._submit(asset, PERCENT, percent)

    def order_target(self, asset: Any, shares: Any) -> np.ndarray:
        """Trade the delta to hold `shares`."""
        if self._profile.size_at_decision:
            assets = self.asset_index(asset)
            delta = np.asarray(shares, dtype=np.float64) - self._ledger.positions[assets]
            return self._submit_shares(assets, whole_shares(np.broadcast_to(delta, assets.shape)))
        return self._submit(asset, TARGET_SHARES, shares)

    def order_target_value(self, asset: Any, value: Any) -> np.ndarray:
        """Trade the delta to hold shares worth `value` at the fill price."""
        if self._profile.size_at_decision:
            return self._size_now(self.asset_index(asset), value)
        return self._submit(asset, TARGET_VALUE, value)

    def order_target_percent(self, asset: Any, percent: Any) -> np.ndarray:
        """Trade the delta to hold `percent` of the book value at the fill."""
        if self._profile.size_at_decision:
            return self._size_now(self.asset_index(asset),
                                  np.asarray(percent, dtype=np.float64) * self.equity)
        return self._submit(asset, TARGET_PERCENT, percent)

    def _size_now(self, assets: np.ndarray, target_value: Any) -> np.ndarray:
        """Shares for a target value sized at this close (profiles that size at decision).

        backtrader: the value delta at the close floored to whole shares
        (`int(|Δvalue| // close)`), a target of 0 closing the whole position. zipline:
        `target / close − position`, truncated toward zero unless within 1e-4 of a whole
        share. Pending orders are not netted. An asset with no close yet gets no order.
        """
        target = np.broadcast_to(np.asarray(target_value, dtype=np.float64), assets.shape)
        held = self._ledger.positions[assets]
        close = self.last_close[assets]
        if self._profile.decision_sizing == "zipline":
            return self._submit_shares(assets, whole_shares(target / close - held))
        delta_value = target - held * close
        shares = np.copysign(np.floor_divide(np.abs(delta_value), close), delta_value)
        shares = np.where((target == 0) & (held != 0), -held, shares)
        return self._submit_shares(assets, shares)

    def _submit_shares(self, assets: np.ndarray, shares: np.ndarray) -> np.ndarray:
        shares = np.where(np.isfinite(shares), shares, 0.0)
        trade = shares != 0
        return self._book.submit(self.bar, self.bar + self._fill_delay, assets[trade], SHARES,
                                 np.ascontiguousarray(shares[trade]))

    def rebalance(self, weights: Mapping[Any, float] | np.ndarray) -> np.ndarray:
        """Move the book to target weights; what is held and not in `weights` goes to 0.

        `weights` is a mapping of asset to weight or an array over the asset index.
        Orders are submitted sells first, by the delta estimated at this close.
        """
        if isinstance(weights, Mapping):
            target = np.zeros(self._market.n_assets)
            if weights:
                target[self.asset_index(list(weights))] = list(weights.values())
        else:
            target = np.asarray(weights, dtype=np.float64)
            if target.shape != (self._market.n_assets,):
                raise ValueError(f"weights must have one entry per asset; got {target.shape}")
        if not np.isfinite(target).all():
            raise ValueError("weights must be finite")
        positions = self._ledger.positions
        chosen = ((target != 0) | (positions != 0) | (self._book.open_id >= 0)).nonzero()[0]
        weight = target[chosen]
        estimate = weight * self.equity - positions[chosen] * self.last_close[chosen]
        chosen = chosen[np.argsort(estimate, kind="stable")]
        if self._profile.size_at_decision:
            return self._size_now(chosen, target[chosen] * self.equity)
        return self._book.submit(
            self.bar, self.bar + self._fill_delay, chosen, TARGET_PERCENT, target[chosen]
        )

    def _submit(self, asset: Any, kind: int, amount: Any) -> np.ndarray:
        assets = self.asset_index(asset)
        amounts = np.broadcast_to(np.asarray(amount, dtype=np.float64), assets.shape).copy()
        if not np.isfinite(amounts).all():
            raise ValueError(f"order amounts must be finite; got {amounts.tolist()}")
        if len(np.unique(assets)) != len(assets):
            raise ValueError("an asset appears twice in one order call")
        return self._book.submit(self.bar, self.bar + self._fill_delay, assets, kind, amounts)


def whole_shares(amount: np.ndarray) -> np.ndarray:
    """Truncate toward zero, unless within 1e-4 of a whole share (then round): zipline's."""
    nearest = np.round(amount)
    return np.where(np.abs(amount - nearest) <= 1e-4, nearest, np.trunc(amount))
