"""What a strategy sees and does at one timestamp: read-only state and the order methods.

Every array a strategy sees is sealed (read-only, with no writable base): market rows,
positions, open orders. Every order method takes one asset or an array of assets (names
or column indices) and a scalar or an array of amounts, and queues the orders for their
fill time through the kernels' one placement routine (`kernels/placement.py`), the one
order tables and target weights use in the compiled loop. Target methods replace the
asset's open order, so they net pending orders (docs/semantics.md); profiles that size at
the decision turn targets into share orders here, with the same kernels the compiled loop
uses.

`order` with `limit`, `stop` or `trail` places a resting order (several may wait per
asset), `bracket` an entry with a take-profit and a stop-loss, `cancel` withdraws an open
order and `open_orders` lists them. With portfolio rules in the config, every order is
checked when placed (at this close) and one that breaks a rule is recorded `rejected`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.core.book import OrderBook
from engine.core.config import KernelSettings
from engine.core.kernels import NEVER
from engine.core.kernels.loop import N_FLOAT_WORK, N_INT_WORK, rebalance
from engine.core.kernels.placement import place_market, place_order, user_order
from engine.core.kernels.portfolio_rules import planned_positions
from engine.core.kernels.sizing import decision_orders
from engine.core.ledger import Ledger
from engine.core.records import (
    Decision,
    DecisionSizing,
    OrderKind,
    OrderStatus,
    OrderType,
    TrailMode,
)
from engine.data.market import Market, sealed
from schemas.vocabulary import TRAIL_MODES


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
        self.peak = float("nan")  # highest equity at a close so far (drawdown halt)
        self._groups: dict[Any, int] = {}  # OCO label → its group (first member's id)
        self._families: dict[int, int] = {}  # bracket parent → its children's group
        self._plan_bar = -1  # the decision `_plan` was made at
        self._plan = np.zeros(0)  # positions planned at it (portfolio rules)

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

    @property
    def open_orders(self) -> np.ndarray:
        """Every open order, market and resting, in id order (`ORDER_DT` records with their
        `order_id`; read-only)."""
        return self._book.open_orders()

    def order(self, asset: Any, shares: Any, limit: float | None = None,
              stop: float | None = None, trail: float | None = None,
              trail_mode: str = "percent", valid_until: Any = None,
              oco: Any = None, parent: int | None = None) -> np.ndarray:
        """Trade a number of shares (negative sells); returns the order ids.

        Without `limit`, `stop` or `trail` it is a market order at the next fill point.
        `limit` alone: a limit order; `stop` alone: a stop (market once reached); both: a
        stop-limit; `trail`: a trailing stop (a fraction of its reference, or a price
        amount with `trail_mode='absolute'`), whose reference starts at this close. These
        rest in the book from the next bar until filled, cancelled or `valid_until` (a
        number of bars, or a timestamp: the last bar at or before it). Orders placed with
        one `oco` label cancel each other when one fills. With `parent` (the id of a
        market or limit order of the asset) it is a bracket child, one OCO group with the
        parent's other children, following the order that carries the parent's entry
        (the parent, or the order it merged into): checked from the bar after its first
        fill (the next bar if it has filled), cancelled if it ends unfilled
        (docs/semantics.md, "Brackets").
        """
        if parent is not None:
            return self._child(asset, shares, limit, stop, trail, trail_mode, valid_until,
                               int(parent))
        if limit is None and stop is None and trail is None:
            if valid_until is not None or oco is not None:
                raise ValueError("valid_until and oco apply to limit, stop and trailing "
                                 "orders only")
            return self._submit(asset, OrderKind.shares, shares)
        if trail is not None and (limit is not None or stop is not None):
            raise ValueError("a trailing stop takes trail only (no limit or stop)")
        if trail_mode not in TRAIL_MODES:
            raise ValueError(f"trail_mode must be one of {', '.join(TRAIL_MODES)}; "
                             f"got {trail_mode!r}")
        assets = self.asset_index(asset)
        amounts = np.broadcast_to(np.asarray(shares, dtype=np.float64), assets.shape)
        if not (np.isfinite(amounts).all() and (amounts != 0).all()):
            raise ValueError(f"resting orders need non-zero finite shares; got {amounts}")
        for name, value in (("limit", limit), ("stop", stop), ("trail", trail)):
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number; got {value!r}")
        if trail is not None and trail_mode == "percent" and not trail < 1:
            raise ValueError(f"a percent trail is a fraction below 1; got {trail}")
        order_type = (OrderType.trailing_stop if trail is not None else
                      OrderType.stop_limit if limit is not None and stop is not None else
                      OrderType.limit if limit is not None else OrderType.stop)
        last = self._valid_until(valid_until)
        group = self._group(oco)
        ids = []
        for j, amount in zip(assets.tolist(), amounts.tolist(), strict=True):
            new_group = oco is not None and group < 0
            oid = self._place(j, order_type, amount, limit, stop, trail,
                              getattr(TrailMode, trail_mode), last,
                              group=-2 if new_group else group)
            if new_group and self._book.get(oid)["status"] == OrderStatus.open:
                group = self._groups[oco] = oid
            ids.append(oid)
        return np.array(ids, dtype=np.int64)

    def bracket(self, asset: Any, shares: float, take_profit: float, stop_loss: float,
                limit: float | None = None) -> np.ndarray:
        """An entry (market, or limit at `limit`) with a take-profit limit and a stop-loss
        stop at those prices, one OCO group, live from the bar after the entry's first
        fill. Returns the ids (entry, take-profit, stop-loss)."""
        (j,) = self.asset_index(asset).tolist()
        if not (np.isfinite(shares) and shares != 0):
            raise ValueError(f"a bracket needs non-zero finite shares; got {shares}")
        for name, value in (("take_profit", take_profit), ("stop_loss", stop_loss),
                            ("limit", 1.0 if limit is None else limit)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive price; got {value!r}")
        if (stop_loss >= take_profit) if shares > 0 else (stop_loss <= take_profit):
            raise ValueError(f"stop_loss {stop_loss} and take_profit {take_profit} are on the "
                             "wrong sides for this entry")
        (parent,) = self.order(j, shares, limit=limit).tolist()
        (profit,) = self.order(j, -shares, limit=take_profit, parent=parent).tolist()
        (loss,) = self.order(j, -shares, stop=stop_loss, parent=parent).tolist()
        return np.array([parent, profit, loss], dtype=np.int64)

    def _child(self, asset: Any, shares: float, limit, stop, trail, trail_mode: str,
               valid_until: Any, parent: int) -> np.ndarray:
        """A bracket child of `parent` (see `order`)."""
        (j,) = self.asset_index(asset).tolist()
        if not 0 <= parent < self._book.n_orders:
            raise KeyError(f"no order {parent}")
        record = self._book.get(parent)
        if record["asset"] != j or record["type"] not in (OrderType.market, OrderType.limit):
            raise ValueError("a bracket parent is a market or limit order of the same asset")
        if limit is None and stop is None and trail is None:
            raise ValueError("a bracket child is a limit, stop or trailing stop")
        if not (np.isfinite(shares) and shares != 0):
            raise ValueError(f"resting orders need non-zero finite shares; got {shares}")
        order_type = (OrderType.trailing_stop if trail is not None else
                      OrderType.stop_limit if limit is not None and stop is not None else
                      OrderType.limit if limit is not None else OrderType.stop)
        oid = self._place(j, order_type, shares, limit, stop, trail,
                          getattr(TrailMode, trail_mode), self._valid_until(valid_until),
                          group=self._families.get(parent, -2), parent=parent)
        self._families.setdefault(parent, oid)
        return np.array([oid], dtype=np.int64)

    def cancel(self, order_id: int) -> bool:
        """Cancel an open order (a bracket entry's children with it); False if it was no
        longer open."""
        return self._book.cancel(int(order_id), self.bar)

    def _valid_until(self, valid_until: Any) -> int:
        """The last bar an order placed now may fill at (NEVER: good till cancelled)."""
        if valid_until is None:
            return NEVER
        if isinstance(valid_until, int | np.integer) and not isinstance(valid_until, bool):
            if valid_until < 1:
                raise ValueError(f"valid_until in bars must be at least 1; got {valid_until}")
            return self.bar + int(valid_until)
        if isinstance(valid_until, str):
            valid_until = dt.datetime.fromisoformat(valid_until)
        stamps = self._market.timestamps.to_numpy()
        last = int(np.searchsorted(stamps, np.datetime64(valid_until, "us"), side="right")) - 1
        if last <= self.bar:
            raise ValueError(f"valid_until {valid_until} is not after this bar")
        return last

    def _group(self, oco: Any) -> int:
        """The OCO group a label names while one of its orders is open, else −1 (the next
        order with the label starts a new group)."""
        if oco is None or oco not in self._groups:
            return -1
        group = self._groups[oco]
        return group if (self._book.open_orders()["group"] == group).any() else -1

    def _place(self, j: int, order_type: int, amount: float, limit, stop, trail,
               trail_mode: int, last: int, group: int = -1, parent: int = -1) -> int:
        """One resting order (a bracket child with `parent`) through the kernels' one
        placement routine (`place_order`); its id."""
        nan = float("nan")
        spec = user_order(j, OrderKind.shares, order_type, float(amount),
                          nan if limit is None else float(limit),
                          nan if stop is None else float(stop),
                          nan if trail is None else float(trail), int(trail_mode),
                          float(self.last_close[j]), int(last), self.bar, int(parent),
                          int(group))
        self._book.reserve(1)
        return int(place_order(self._settings, self._decision(), spec, self._book.state()))

    def _decision(self) -> Decision:
        """This decision as the placement kernels read it (the plan only with portfolio
        rules)."""
        plan = self._planned() if self._settings.portfolio_rules else np.empty(0)
        return Decision(self.bar, float(self.equity), float(self.peak), plan,
                        self.last_close)

    def _planned(self) -> np.ndarray:
        """The positions planned at this decision (portfolio rules): held plus the open
        resting entries, then moved by each order of the decision accepted so far."""
        if self._plan_bar != self.bar:
            _, orders, _, resting, n_resting = self._book.state()
            self._plan = planned_positions(self._ledger.positions, orders, resting, n_resting)
            self._plan_bar = self.bar
        return self._plan

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
        placed = rebalance(self._settings, self._decision(), target, self._ledger.positions,
                           self._book.state(), np.empty((N_INT_WORK, n_assets), np.int64),
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
        count = len(assets)
        ids = np.empty(count, dtype=np.int64)
        self._book.reserve(count)
        place_market(self._settings, self._decision(), np.ascontiguousarray(assets, np.int64),
                     kind, np.ascontiguousarray(amounts, np.float64), count,
                     self._book.state(), ids)
        return ids
