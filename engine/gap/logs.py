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
        self.n_bars = len(bars.timestamps)
        self.initial_cash = float(initial_cash)
        self.by_bar: dict[int, dict[str, Key]] = {}
        self.rows: dict[int, list[tuple[str, float, float, float]]] = {}
        stamps = fills.get_column("timestamp")
        distinct = stamps.unique()
        bar_of = stamps.replace_strict(distinct, [index[t] for t in distinct.to_list()],
                                       return_dtype=pl.Int64)
        rows = self.rows
        for t, asset, q, p, f in zip(bar_of.to_list(), *(
                fills.get_column(c).to_list() for c in ("asset", "quantity", "price", "fee")),
                                     strict=True):
            found = rows.get(t)
            if found is None:
                found = rows[t] = []
            found.append((asset, q, p, f))
        fees = 0.0
        self.fees_before: list[float] = []  # Σ fees of the fills before each bar
        for bar in range(self.n_bars):
            self.fees_before.append(fees)
            for _, _, _, f in rows.get(bar, ()):
                fees += f
        self.fees_before.append(fees)
        for bar, found in rows.items():
            self.by_bar[bar] = aggregate(found)
        self.entries: dict[str, tuple[list[int], list[float]]] = {}  # asset → bars, prices
        # each fill's (row in its bar, asset, position before, after, price), by bar: the
        # one replay of the positions (the ledger's zero rule: float dust is 0)
        self.moves: dict[int, list[tuple[int, str, float, float, float]]] = {}
        held: dict[str, float] = {}
        # each position's average cost after the fills of a bar (buys average in)
        self.costs: dict[str, tuple[list[int], list[float]]] = {}
        cost: dict[str, float] = {}
        costs, entries = self.costs, self.entries
        for bar in sorted(rows):
            moves = self.moves[bar] = []
            for i, (asset, q, p, _) in enumerate(rows[bar]):
                before = held.get(asset, 0.0)
                after = before + q
                if abs(after) <= 1e-9 * max(abs(q), 1e-3):
                    after = 0.0
                held[asset] = after
                moves.append((i, asset, before, after, p))
                if q > 0:
                    cost[asset] = p if before <= 0.0 else \
                        (cost.get(asset, p) * before + p * q) / after
                _set_at(costs, asset, bar, cost.get(asset, p))
                if before == 0.0 and after != 0.0:
                    _set_at(entries, asset, bar, p)

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


def _set_at(series: dict[str, tuple[list[int], list[float]]], asset: str, bar: int,
            value: float) -> None:
    """`asset`'s value from bar `bar` on (the last one set at a bar counts)."""
    found = series.get(asset)
    if found is None:
        found = series[asset] = ([], [])
    bars, values = found
    if bars and bars[-1] == bar:
        values[-1] = value
    else:
        bars.append(bar)
        values.append(value)


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
