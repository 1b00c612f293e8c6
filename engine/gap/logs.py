"""One side's fill log, bar by bar, and the book it implies before every bar.

A side's book is rebuilt from its own fills and initial cash alone (no engine needed):
before bar t, positions are the sum of its fills before t and cash is the initial cash
less Σ quantity × price + fee, a sum within float noise of zero being zero (the ledger's
rule, docs/semantics.md), so that a batch that spent all its cash leaves none. Fills are
also kept per bar as {asset: (quantity, volume-weighted price, fee, rows)}, the form the
oracle's predictions are compared in. Each position's entry (the fill that opened it from
flat: its bar and price) is kept too: the position rules' exits are armed from it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.reference.bars import Bars
from engine.reference.execution import add

Key = tuple[float, float, float, int]  # summed quantity, VWAP price, summed fee, rows


@dataclass(frozen=True)
class OwnBook:
    """A side's book before one bar, from its fills: cash and non-zero positions."""

    bar: int
    cash: float
    positions: dict[str, float]


class FillLog:
    """A side's fills per bar, with its own book before each bar."""

    def __init__(self, fills: pl.DataFrame, bars: Bars, initial_cash: float) -> None:
        index = {t: i for i, t in enumerate(bars.timestamps)}
        self.n_bars = n_bars = len(bars.timestamps)
        self.initial_cash = float(initial_cash)
        stamps = fills.get_column("timestamp")
        distinct = stamps.unique()
        bar_of = stamps.replace_strict(distinct, [index[t] for t in distinct.to_list()],
                                       return_dtype=pl.Int64).to_numpy() \
            if len(stamps) else np.empty(0, dtype=np.int64)
        columns = fills.select("asset", "quantity", "price", "fee")
        if len(bar_of) and (np.diff(bar_of) < 0).any():  # in bar order, rows kept in order
            order = np.argsort(bar_of, kind="stable")
            bar_of, columns = bar_of[order], columns[order]
        # the log's columns in bar order: bar, asset, quantity, price, fee
        names = columns.get_column("asset")
        self.columns = (bar_of, names,
                        *(columns.get_column(c).to_numpy() for c in ("quantity", "price", "fee")))
        codes, assets = _coded(names)
        q, p, f = self.columns[2:]
        quantities, prices = q.tolist(), p.tolist()
        starts = np.flatnonzero(np.diff(bar_of, prepend=-1))  # each fill bar's first row
        ends = _ends(starts, len(bar_of))
        spans = list(zip(bar_of[starts].tolist(), starts.tolist(), ends.tolist(), strict=True))
        rows = list(zip(assets, quantities, prices, f.tolist(), strict=True))
        self.rows: dict[int, list[tuple[str, float, float, float]]] = {
            bar: rows[start:end] for bar, start, end in spans}
        # Σ fees of the fills before each bar, added from 0.0 in log order
        added = np.cumsum(np.concatenate(([0.0], f)))
        self.fees_before: list[float] = added[np.searchsorted(
            bar_of, np.arange(n_bars + 1), "left")].tolist()
        self.by_bar: dict[int, dict[str, Key]] = _aggregated(assets, q, p, f, spans,
                                                             self.rows)
        # each fill's (row in its bar, asset, position before, after, price), by bar; each
        # position's average cost and entry (bar and price) from the bars they were set
        self.moves, self.costs, self.entries = _moves(codes, assets, quantities, prices,
                                                      bar_of, spans)

    def entry(self, asset: str, t: int) -> tuple[int, float] | None:
        """The bar and price of the fill that opened the position held before bar t."""
        found = self.entries.get(asset)
        if found is None:
            return None
        i = bisect_left(found[0], t)
        return (found[0][i - 1], found[1][i - 1]) if i else None

    def cost_basis(self, asset: str, t: int) -> float | None:
        """The average price paid for the position held after bar t's fills."""
        found = self.costs.get(asset)
        if found is None:
            return None
        i = bisect_left(found[0], t + 1)
        return found[1][i - 1] if i else None

    @property
    def fill_bars(self) -> list[int]:
        return sorted(self.rows)

    def books(self) -> Iterator[OwnBook]:
        """The book before every bar, in bar order."""
        cash = self.initial_cash
        positions: dict[str, float] = {}
        for bar in range(self.n_bars):
            yield OwnBook(bar, cash, positions)
            rows = self.rows.get(bar)
            if not rows:
                continue
            positions = dict(positions)
            for (_, q, p, f), (_, asset, _, after, _) in zip(rows, self.moves[bar], strict=True):
                cash = add(cash, -(q * p + f))  # the ledger's zero rule: no float dust
                if after == 0.0:
                    positions.pop(asset, None)
                else:
                    positions[asset] = after


def _aggregated(assets: list[str], q: np.ndarray, p: np.ndarray, f: np.ndarray,
                spans: list[tuple[int, int, int]],
                rows: dict[int, list[tuple[str, float, float, float]]]
                ) -> dict[int, dict[str, Key]]:
    """`aggregate` of every fill bar's rows: a bar whose assets each fill once takes its
    keys from whole-log arrays (the same arithmetic: sums from 0.0, VWAP as Σqp / Σq)."""
    quantity = 0.0 + q
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(quantity != 0.0, (0.0 + q * p) / quantity, 0.0)
    keys = list(zip(quantity.tolist(), price.tolist(), (0.0 + f).tolist(),
                    [1] * len(assets), strict=True))
    out = {}
    for bar, start, end in spans:
        names = assets[start:end]
        out[bar] = (dict(zip(names, keys[start:end], strict=True))
                    if len(set(names)) == end - start else aggregate(rows[bar]))
    return out


def _moves(codes: np.ndarray, assets: list[str], quantities: list[float], prices: list[float],
           bar_of: np.ndarray, spans: list[tuple[int, int, int]]) -> tuple[dict, dict, dict]:
    """The one replay of the positions, fill by fill in bar order (the ledger's zero rule:
    float dust is 0): each fill's move by bar, and each position's average cost (buys
    average in) and entry (the fill that opened it from flat) from the bar they were set
    (see `FillLog`)."""
    befores, afters, paid = [], [], []
    held: dict[str, float] = {}
    cost: dict[str, float] = {}
    for asset, quantity, price in zip(assets, quantities, prices, strict=True):
        before = held.get(asset, 0.0)
        after = before + quantity
        if abs(after) <= 1e-9 * max(abs(quantity), 1e-3):
            after = 0.0
        held[asset] = after
        befores.append(before)
        afters.append(after)
        if quantity > 0:
            cost[asset] = price if before <= 0.0 else \
                (cost.get(asset, price) * before + price * quantity) / after
        paid.append(cost.get(asset, price))
    row_in_bar = [i for _, start, end in spans for i in range(end - start)]
    every = list(zip(row_in_bar, assets, befores, afters, prices, strict=True))
    moves = {bar: every[start:end] for bar, start, end in spans}
    opened = np.flatnonzero((np.array(befores) == 0.0) & (np.array(afters) != 0.0))
    return (moves, _by_asset(assets, codes, bar_of, paid, np.arange(len(codes))),
            _by_asset(assets, codes, bar_of, prices, opened))


def _by_asset(assets: list[str], codes: np.ndarray, bar_of: np.ndarray, values: list[float],
              rows: np.ndarray) -> dict[str, tuple[list[int], list[float]]]:
    """The fills `rows` (in log order, bars increasing) as asset → (bars, values), assets
    in the order of their first row (a bar may repeat: `entry` and `cost_basis` read the
    last value of a bar)."""
    rows = rows[np.argsort(codes[rows], kind="stable")]  # by asset, in log order within
    firsts = np.flatnonzero(np.diff(codes[rows], prepend=-1))
    bars, kept = bar_of[rows].tolist(), np.asarray(values)[rows].tolist()
    ends = dict(zip(firsts.tolist(), _ends(firsts, len(rows)).tolist(), strict=True))
    return {assets[rows[first]]: (bars[first:ends[first]], kept[first:ends[first]])
            for first in sorted(ends, key=lambda first: rows[first])}


def _coded(names: pl.Series) -> tuple[np.ndarray, list[str]]:
    """The column's names as codes, and as a list holding one string object per distinct
    name (a log of 500,000 fills names a few thousand assets: one object each, not one per
    row)."""
    distinct = names.unique()
    codes = names.cast(pl.Enum(distinct)).to_physical().to_numpy()
    strings = distinct.to_list()
    return codes, [strings[code] for code in codes.tolist()]


def _ends(starts: np.ndarray, n: int) -> np.ndarray:
    """Where each run starting at `starts` (increasing, in n rows) ends."""
    return np.append(starts[1:], n)[:len(starts)]


def aggregate(rows: list[tuple[str, float, float, float]]) -> dict[str, Key]:
    """Fills summed per asset: quantity, volume-weighted price, fee, and the row count."""
    out: dict[str, list[float]] = {}
    for asset, q, p, f in rows:
        acc = out.setdefault(asset, [0.0, 0.0, 0.0, 0])
        acc[0] += q
        acc[1] += q * p
        acc[2] += f
        acc[3] += 1
    return {a: (q, (qp / q) if q else 0.0, f, n) for a, (q, qp, f, n) in out.items()}


SPLIT = 0.5  # share of a log's keys held in parts above which it logs executions in parts
HABIT = 5  # keys held in parts at the least before that is a habit, not a fill or two


def executions_merged(fills: pl.DataFrame) -> pl.DataFrame:
    """A log that writes each fill as several executions, read as one fill each.

    A key (timestamp, asset) holds a fill in parts when it has several rows of one sign at
    one price that are not all copies of one row (a row logged twice is a copy). When more
    than half of the log's keys do, the log splits its fills by habit (a broker's
    executions): the parts of each are summed into one row (first row's place kept). A log
    with a few such keys (a rebalance's sell and an exit at the same open, or a small log
    with a fill or two in parts) is left as it is, and compares as parity does.
    """
    if fills.height < 2:
        return fills
    part = [pl.col("timestamp"), pl.col("asset"), pl.col("quantity").sign().alias("sign"),
            pl.col("price")]
    groups = fills.group_by(part).agg(rows=pl.len(), kinds=pl.struct("quantity", "fee")
                                      .n_unique())
    split = groups.filter((pl.col("rows") > 1) & (pl.col("kinds") > 1))
    keys = fills.select("timestamp", "asset").n_unique()
    parted = split.select("timestamp", "asset").n_unique()
    if parted <= SPLIT * keys or parted < HABIT:
        return fills
    columns = fills.columns
    merged = (fills.with_row_index("_row").group_by(part, maintain_order=True)
              .agg(pl.col("_row").first(), pl.col("quantity").sum(), pl.col("fee").sum(),
                   *(pl.col(c).first() for c in columns
                     if c not in ("timestamp", "asset", "quantity", "price", "fee")))
              .sort("_row"))
    return merged.select(columns)
