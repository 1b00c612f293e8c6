"""Strategies: a batch callback per timestamp, and the built-in target-weight strategy."""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.context import Context
from engine.core.kernels import NEVER
from engine.core.records import TYPE_NAMES
from engine.data.market import Market

WeightTable = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
RowTable = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


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

    def order_rows(self, market: Market) -> RowTable | None:
        """An order table placed inside the compiled loop instead of calling `on_bar`:
        (decision mask per bar, first row of each bar (T + 1 entries), int rows, float
        rows) as `engine.core.kernels.placement.place_rows` reads them; None (the default)
        means the loop calls `on_bar`."""
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


class OrderTable(Strategy):
    """Place the rows of an order table (`engine.data.loading.load_orders`) at their
    timestamps' closes, in row order; a row's `parent` names another row's `id`.

    The rows are placed inside the compiled loop (`order_rows`); `on_bar` places them
    through the strategy API instead, exactly the same way (with `compiled=False`).
    """

    def __init__(self, orders: pl.DataFrame, compiled: bool = True) -> None:
        self._compiled = compiled
        self._table = orders
        self._rows: dict[int, list[dict]] = {}
        self._ids: dict[str, int] = {}  # a row's `id` → the id of the order it placed

    def decision_bars(self, market: Market) -> np.ndarray:
        bars = market.bar_index(self._table["timestamp"])
        self._rows, self._ids = {}, {}
        for bar, row in zip(bars.tolist(), self._table.iter_rows(named=True), strict=True):
            self._rows.setdefault(bar, []).append(row)
        decide = np.zeros(market.n_bars, dtype=bool)
        decide[bars] = True
        return decide

    def on_bar(self, ctx: Context) -> None:
        ids = self._ids
        for row in self._rows.get(ctx.bar, []):
            valid = row["valid_bars"] if row["valid_bars"] is not None else row["valid_until"]
            kind = row["type"]
            limit, stop, trail = row["limit_price"], row["stop_price"], row["trail"]
            parent = ids[row["parent"]] if row["parent"] is not None else None
            if kind == "market":
                (oid,) = ctx.order(row["asset"], row["quantity"]).tolist()
            else:
                (oid,) = ctx.order(row["asset"], row["quantity"], limit=limit, stop=stop,
                                   trail=trail, trail_mode=row["trail_mode"],
                                   valid_until=valid,
                                   oco=None if parent is not None else row["group"],
                                   parent=parent).tolist()
            if row["id"] is not None:
                ids[row["id"]] = oid

    def order_rows(self, market: Market) -> RowTable | None:
        if not self._compiled:
            return None
        table = self._table
        n = table.height
        bars = market.bar_index(table["timestamp"])
        start = np.searchsorted(bars, np.arange(market.n_bars + 1)).astype(np.int64)
        rows_i = np.empty((n, 6), dtype=np.int64)
        rows_i[:, 0] = market.asset_index(table["asset"])
        rows_i[:, 1] = table["type"].cast(pl.Enum(TYPE_NAMES)).to_physical().to_numpy()
        rows_i[:, 2] = (table["trail_mode"] == "absolute").to_numpy()
        rows_i[:, 3] = _last_bars(table, bars, market)
        rows_i[:, 4] = _first_seen_codes(table["group"])
        rows_i[:, 5] = _rows_named(table["parent"], table["id"])
        rows_f = np.empty((n, 4))
        for k, name in enumerate(("quantity", "limit_price", "stop_price", "trail")):
            rows_f[:, k] = table[name].cast(pl.Float64).to_numpy()  # null → NaN
        return start[1:] > start[:-1], start, rows_i, rows_f


def _last_bars(table: pl.DataFrame, bars: np.ndarray, market: Market) -> np.ndarray:
    """Each row's last bar: its `valid_bars` after its own, or its `valid_until`'s bar
    (NEVER: good till cancelled)."""
    until, counted = table["valid_until"], table["valid_bars"]
    last = np.full(table.height, NEVER, dtype=np.int64)
    if until.null_count() < table.height:
        stamps = market.timestamps.to_numpy()
        at = np.searchsorted(stamps, until.fill_null(stamps[-1]).to_numpy(), side="right") - 1
        last = np.where(until.is_not_null().to_numpy(), at, last)
    if counted.null_count() < table.height:
        last = np.where(counted.is_not_null().to_numpy(),
                        bars + counted.fill_null(0).to_numpy(), last)
    return last


def _first_seen_codes(labels: pl.Series) -> np.ndarray:
    """0, 1, … for each distinct label in order of first appearance; −1 where null."""
    if labels.null_count() == len(labels):
        return np.full(len(labels), -1, dtype=np.int64)
    seen = labels.drop_nulls().unique(maintain_order=True)
    return labels.replace_strict(seen, range(len(seen)), default=-1,
                                 return_dtype=pl.Int64).to_numpy()


def _rows_named(names: pl.Series, ids: pl.Series) -> np.ndarray:
    """The row whose `ids` equals each of `names`; −1 where the name is null."""
    if names.null_count() == len(names):
        return np.full(len(names), -1, dtype=np.int64)
    rows = pl.DataFrame({"id": ids, "row": np.arange(len(ids), dtype=np.int64)}).drop_nulls()
    return names.replace_strict(rows["id"], rows["row"], default=-1,
                                return_dtype=pl.Int64).to_numpy()
