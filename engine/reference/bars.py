"""Bars in the reference's plain form: per timestamp, a mapping of asset → (o, h, l, c, v).

The prices are held as columns (a float array per field, rows grouped by bar); `rows[t]`
is a read-only mapping over bar t that builds an asset's tuple of floats when it is first
read, so that a large universe (2,000 assets × 5,040 bars is ten million bars) costs its
arrays, not ten million tuples, and a bar costs only the assets a step reads.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

import numpy as np
import polars as pl

OPEN, HIGH, LOW, CLOSE, VOLUME = range(5)
FIELDS = ("open", "high", "low", "close", "volume")
Bar = tuple[float, float, float, float, float]
KEPT_ROWS = 4096  # bars whose read assets are kept (the latest read)
WHOLE_UP_TO = 3_000_000  # asset bars up to which every bar is a plain dict once read
# (500 assets × 5,040 bars, the seed's scale, is 2.52 million: about 0.55 GB of dicts)
_ABSENT = ()


class Row(Mapping):
    """Bar t: asset → (open, high, low, close, volume), for the assets with a bar at t."""

    __slots__ = ("_first", "_read", "_rows", "_t")

    def __init__(self, rows: Rows, t: int) -> None:
        self._rows = rows
        self._t = t
        self._first = int(rows.start[t])  # rows before it belong to earlier bars
        self._read: dict[str, Bar | tuple[()]] = {}

    def get(self, asset: str, default=None):  # type: ignore[override]
        bar = self._read.get(asset)
        if bar is None:
            bar = self._read[asset] = self._lookup(asset)
        return bar if bar is not _ABSENT else default

    def _lookup(self, asset: str) -> Bar | tuple[()]:
        rows = self._rows
        j = rows.column.get(asset)
        if j is None:
            return _ABSENT
        i = int(rows.where[self._t, j])
        if i < self._first:
            return _ABSENT
        o, h, lo, c, v = rows.values
        return float(o[i]), float(h[i]), float(lo[i]), float(c[i]), float(v[i])

    def __getitem__(self, asset: str) -> Bar:
        bar = self.get(asset)
        if bar is None:
            raise KeyError(asset)
        return bar

    def __contains__(self, asset: object) -> bool:
        return self.get(asset) is not None  # type: ignore[arg-type]

    def items(self):  # type: ignore[override]
        """Every asset's bar, read at once (a step that scans the whole bar)."""
        rows = self._rows
        end = int(rows.start[self._t + 1])
        names = rows.assets
        read = self._read
        columns = [column[self._first: end].tolist() for column in rows.values]
        for j, bar in zip(rows.code[self._first: end].tolist(), zip(*columns, strict=True),
                          strict=True):
            read[names[j]] = bar
        return [(names[j], read[names[j]]) for j in rows.code[self._first: end].tolist()]

    def __iter__(self) -> Iterator[str]:
        names = self._rows.assets
        rows = self._rows
        return (names[j] for j in rows.code[self._first: rows.start[self._t + 1]].tolist())

    def __len__(self) -> int:
        return int(self._rows.start[self._t + 1]) - self._first


class Rows(Sequence):
    """`rows[t]`: bar t as a `Row`; the rows read last are kept with what was read of them."""

    def __init__(self, assets: list[str], start: np.ndarray, code: np.ndarray,
                 values: tuple[np.ndarray, ...]) -> None:
        self.assets = assets  # asset names, sorted (`code` indexes them)
        self.column = {a: j for j, a in enumerate(assets)}
        self.start = start  # rows of bar t are start[t]:start[t + 1], in the frame's order
        self.code = code
        self.values = values  # one array per field: open, high, low, close, volume
        n_bars = len(start) - 1
        where = np.full((n_bars, len(assets)), -1, dtype=np.int32 if len(code) < 2**31
                        else np.int64)
        where[np.repeat(np.arange(n_bars), np.diff(start)), code] = np.arange(len(code))
        np.maximum.accumulate(where, axis=0, out=where)
        self.where = where  # the row of each asset's last bar at or before t (-1: none)
        self.kept: OrderedDict[int, Row] = OrderedDict()
        # a small universe: each bar read becomes a dict of every asset's bar, kept
        self.whole: list[dict[str, Bar] | None] | None = \
            [None] * n_bars if len(code) <= WHOLE_UP_TO else None

    def __len__(self) -> int:
        return len(self.start) - 1

    def __getitem__(self, t: int) -> Row | dict[str, Bar]:  # type: ignore[override]
        if self.whole is not None:
            row = self.whole[t]
            return row if row is not None else self._whole(t)
        kept = self.kept
        row = kept.get(t)
        if row is not None:
            return row
        if t < 0:
            t += len(self)
        if not 0 <= t < len(self):
            raise IndexError(t)
        row = kept.get(t)
        if row is None:
            row = kept[t] = Row(self, t)
            if len(kept) > KEPT_ROWS:
                kept.popitem(last=False)
        return row

    def __iter__(self) -> Iterator[Row | dict[str, Bar]]:
        return (self[t] for t in range(len(self)))

    def _whole(self, t: int) -> dict[str, Bar]:
        """Bar t as a dict of every asset's bar, built at once and kept."""
        lo, hi = self.start[t], self.start[t + 1]  # (IndexError past the last bar)
        names = self.assets
        bars = zip(*(column[lo:hi].tolist() for column in self.values), strict=True)
        row = dict(zip([names[j] for j in self.code[lo:hi].tolist()], bars, strict=True))
        self.whole[t] = row
        return row


class Bars:
    """Every bar by timestamp; `rows[i]` holds the assets that have a bar at `timestamps[i]`.

    `last(t, asset, field)` is an asset's last known value of a field at or before bar t.
    """

    def __init__(self, timestamps: list[datetime], rows: Rows) -> None:
        self.timestamps = timestamps
        self.rows = rows
        self.column = rows.column  # asset → its column in `last_known`

    @classmethod
    def from_frame(cls, prices: pl.DataFrame) -> Bars:
        """From long prices `timestamp, asset, open, high, low, close, volume`."""
        timestamps = prices["timestamp"].unique().sort()
        bar = timestamps.search_sorted(prices["timestamp"]).to_numpy().astype(np.int64)
        assets = prices["asset"].unique().sort()
        code = prices["asset"].cast(pl.Enum(assets)).to_physical().to_numpy().astype(np.int32)
        values = tuple(prices[name].cast(pl.Float64).to_numpy() for name in FIELDS)
        if len(bar) and (np.diff(bar) < 0).any():  # else the frame's own columns
            order = np.argsort(bar, kind="stable")
            bar, code = bar[order], code[order]
            values = tuple(column[order] for column in values)
        start = np.searchsorted(bar, np.arange(len(timestamps) + 1))
        return cls(timestamps.to_list(), Rows(assets.to_list(), start, code, values))

    @property
    def time_type(self) -> pl.DataType:
        return pl.Datetime("us")

    def index_of(self, timestamps: list[datetime]) -> dict[datetime, int]:
        """Bar index of each timestamp (all must be in the calendar)."""
        index = {t: i for i, t in enumerate(self.timestamps)}
        return {t: index[t] for t in timestamps}

    def last(self, t: int, asset: str, field: int) -> float:
        """`asset`'s last known `field` (OPEN, CLOSE, ...) at or before bar `t`; NaN if none."""
        if t < 0:
            return math.nan
        rows = self.rows  # a bar kept whole is read directly (the reference's most frequent read)
        row = rows.whole[t] if rows.whole is not None else None
        bar = (row if row is not None else rows[t]).get(asset)
        if bar is not None:
            return bar[field]
        j = rows.column.get(asset)
        i = -1 if j is None else int(rows.where[t, j])
        return math.nan if i < 0 else float(rows.values[field][i])

    def at(self, bar: np.ndarray, assets: pl.Series, *fields: int) -> list[np.ndarray]:
        """Each (bar, asset)'s `fields` at exactly that bar (bars as indices, -1 for none),
        one array per field; NaN where the asset has no bar there or is not in the market."""
        rows = self.rows
        code = assets.replace_strict(rows.assets, range(len(rows.assets)), default=-1,
                                     return_dtype=pl.Int64).to_numpy()
        found = (code >= 0) & (bar >= 0)
        row = np.full(len(code), -1, dtype=np.int64)
        row[found] = rows.where[bar[found], code[found]]
        found[found] = row[found] >= rows.start[bar[found]]
        out = [np.full(len(code), math.nan) for _ in fields]
        for values, field in zip(out, fields, strict=True):
            values[found] = rows.values[field][row[found]]
        return out

    def last_known(self, field: int) -> np.ndarray:
        """Every asset's last known `field` per bar (bars × assets in `column` order), NaN
        before its first bar."""
        where = self.rows.where
        out = self.rows.values[field][where.clip(min=0)]
        out[where < 0] = math.nan
        return out
