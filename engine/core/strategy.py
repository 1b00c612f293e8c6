"""Strategies: a batch callback per timestamp, and the built-in target-weight strategy."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import polars as pl

from engine.core.context import Context
from engine.core.kernels import NEVER
from engine.core.kernels.placement import (
    ROW_ASSET,
    ROW_LABEL,
    ROW_PARENT,
    ROW_TRAIL_MODE,
    ROW_TYPE,
    ROW_VALID_UNTIL,
)
from engine.core.records import TYPE_NAMES
from engine.data.loading import load_orders_into
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
    `OrderTable.read` builds the loop's rows from a file batch by batch instead.
    """

    def __init__(self, orders: pl.DataFrame, compiled: bool = True) -> None:
        self._compiled = compiled
        self._table = orders
        self._built: RowTable | None = None
        self._read = False  # built by `read`: its rows go to one run
        self._rows: dict[int, list[dict]] = {}
        self._ids: dict[str, int] = {}  # a row's `id` → the id of the order it placed

    @classmethod
    def read(cls, source: str | Path | pl.DataFrame, market: Market,
             name: str | None = None) -> OrderTable:
        """The order table of `source` (a frame or a Parquet/CSV path), validated and
        turned into the loop's rows a batch at a time (`load_orders_into`): the same
        orders as `OrderTable(load_orders(source, market))`, without the whole table in
        memory. Placed in the compiled loop, by one run (it frees the rows it placed)."""
        builder = OrderRowBuilder(market)
        load_orders_into(source, market, builder.add, name, sink_maps_keys=True)
        strategy = cls(pl.DataFrame())
        strategy._built = builder.table()
        strategy._read = True
        return strategy

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
        if self._read:
            if self._built is None:
                raise RuntimeError("a table from OrderTable.read runs once (the run frees "
                                   "its rows); read it again for another run")
            rows, self._built = self._built, None
            return rows
        if not self._compiled:
            return None
        builder = OrderRowBuilder(market)
        builder.add(self._table, 0, self._table.height)
        return builder.table()


class OrderRowBuilder:
    """An order table's rows as the compiled loop reads them (`placement.place_rows`),
    written batch by batch into arrays sized once: int32 codes, float64 amounts. The
    arrays are the run's own: it frees the rows it has placed (`release_rows`)."""

    def __init__(self, market: Market) -> None:
        self._market = market
        self._bars = np.zeros(0, dtype=np.int32)
        self._rows_i = np.zeros((0, 6), dtype=np.int32)
        self._rows_f = np.zeros((0, 4))
        self._labels = pl.Series("group", [], pl.String)  # OCO labels in order of first use

    def add(self, batch: pl.DataFrame, first: int, n_rows: int) -> None:
        """Rows `first` … of a table of `n_rows` (loaded rows, `load_orders`); a batch at
        row 0 starts the table over."""
        market = self._market
        if first == 0:
            self._labels = self._labels.clear()
            if len(self._bars) != n_rows:
                self._bars = np.empty(n_rows, dtype=np.int32)
                self._rows_i = _releasable((n_rows, 6), np.int32)
                self._rows_f = _releasable((n_rows, 4), np.float64)
        rows = slice(first, first + batch.height)
        bars = market.bar_index(batch["timestamp"])
        self._bars[rows] = bars
        rows_i = self._rows_i[rows]
        rows_i[:, ROW_ASSET] = market.asset_index(batch["asset"])
        rows_i[:, ROW_TYPE] = batch["type"].cast(pl.Enum(TYPE_NAMES)).to_physical().to_numpy()
        rows_i[:, ROW_TRAIL_MODE] = (batch["trail_mode"] == "absolute").to_numpy()
        last = _last_bars(batch, bars, market)
        rows_i[:, ROW_VALID_UNTIL] = np.where(last >= np.iinfo(np.int32).max, -1, last)
        rows_i[:, ROW_LABEL] = self._label_codes(batch["group"])
        parents = _rows_named(batch["parent"], batch["id"])
        rows_i[:, ROW_PARENT] = np.where(parents >= 0, parents + first, -1)
        for k, name in enumerate(("quantity", "limit_price", "stop_price", "trail")):
            values = batch[name]
            self._rows_f[rows, k] = (np.nan if values.null_count() == len(values)  # none
                                     else values.cast(pl.Float64).to_numpy())  # null → NaN

    def table(self) -> RowTable:
        """(decision mask per bar, first row of each bar, int rows, float rows)."""
        start = np.searchsorted(self._bars, np.arange(self._market.n_bars + 1)).astype(np.int64)
        return start[1:] > start[:-1], start, self._rows_i, self._rows_f

    def _label_codes(self, labels: pl.Series) -> np.ndarray:
        """0, 1, … for each distinct label in order of first appearance in the table; −1
        where null."""
        if labels.null_count() == len(labels):
            return np.full(len(labels), -1, dtype=np.int32)
        fresh = labels.drop_nulls().unique(maintain_order=True)
        self._labels = pl.concat([self._labels, fresh.filter(~fresh.is_in(
            self._labels.implode()))])
        return labels.replace_strict(self._labels, range(len(self._labels)), default=-1,
                                     return_dtype=pl.Int32).to_numpy()


def _releasable(shape: tuple[int, int], dtype: type) -> np.ndarray:
    """A zeroed array in an anonymous mapping of its own, whose pages `release_rows` can
    give back to the system while the array lives."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if size == 0:
        return np.zeros(shape, dtype=dtype)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


def release_rows(rows: np.ndarray, before: int) -> None:
    """Give the memory of rows `0 … before − 1` of `rows` back to the system (they read
    as zeros afterwards) when `rows` lives in a mapping of its own (`_releasable`); other
    arrays are left alone."""
    buffer = rows
    while isinstance(buffer, np.ndarray):
        buffer = buffer.base
    if isinstance(buffer, memoryview):
        buffer = buffer.obj
    end = before * rows.strides[0] // mmap.PAGESIZE * mmap.PAGESIZE
    if isinstance(buffer, mmap.mmap) and end > 0:
        buffer.madvise(mmap.MADV_DONTNEED, 0, end)


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


def _rows_named(names: pl.Series, ids: pl.Series) -> np.ndarray:
    """The row whose `ids` equals each of `names`; −1 where the name is null."""
    if names.null_count() == len(names):
        return np.full(len(names), -1, dtype=np.int64)
    rows = pl.DataFrame({"id": ids, "row": np.arange(len(ids), dtype=np.int64)}).drop_nulls()
    return names.replace_strict(rows["id"], rows["row"], default=-1,
                                return_dtype=pl.Int64).to_numpy()
