"""Dense market arrays: bars pivoted to (timestamp × asset) numpy arrays.

Rows are the sorted calendar of every timestamp, columns the assets sorted by name. A
missing bar is NaN and `has_bar` is False there; `last_close` carries each asset's last
known close forward (NaN before its first bar). `open` and `close` are pivoted up front;
`high`, `low`, `volume` and `last_open` on first use (most runs never read them). Every
array is sealed: read-only, and backed by immutable bytes, so no view of it is writable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Market:
    """Bars of every asset at every timestamp, as (T, N) float arrays."""

    timestamps: pl.Series
    assets: pl.Series
    open: np.ndarray
    close: np.ndarray
    has_bar: np.ndarray
    last_close: np.ndarray
    _bars: pl.DataFrame
    _cells: tuple[np.ndarray, np.ndarray] | None  # (rows, cols) of each bar; None: complete

    @cached_property
    def high(self) -> np.ndarray:
        return self._pivot("high")

    @cached_property
    def low(self) -> np.ndarray:
        return self._pivot("low")

    @cached_property
    def volume(self) -> np.ndarray:
        return self._pivot("volume")

    @cached_property
    def last_open(self) -> np.ndarray:
        """Last known open of every asset (NaN before its first bar)."""
        return sealed(forward_fill(self.open, self.has_bar))

    def _pivot(self, name: str) -> np.ndarray:
        return _pivot(_values(self._bars, name), (self.n_bars, self.n_assets), self._cells)

    @property
    def n_bars(self) -> int:
        return len(self.timestamps)

    @property
    def n_assets(self) -> int:
        return len(self.assets)

    def asset_index(self, names: pl.Series) -> np.ndarray:
        """Column index of each asset name; raises KeyError naming the first unknown one."""
        try:
            codes = names.cast(pl.Enum(self.assets))  # refuses a name not in the market
        except pl.exceptions.InvalidOperationError:
            codes = None
        if codes is not None and not codes.null_count():
            return codes.to_physical().to_numpy().astype(np.int64)
        lookup = pl.DataFrame({"asset": self.assets, "_col": np.arange(self.n_assets)})
        found = pl.DataFrame({"asset": names}).join(lookup, on="asset", how="left",
                                                    maintain_order="left")["_col"]
        if found.null_count():
            raise KeyError(names.filter(found.is_null())[0])
        return found.to_numpy().astype(np.int64)

    def bar_index(self, timestamps: pl.Series) -> np.ndarray:
        """Row index of each timestamp; raises KeyError naming the first unknown one."""
        ts = self.timestamps.to_numpy()
        wanted = timestamps.to_numpy()
        rows = np.searchsorted(ts, wanted).clip(0, len(ts) - 1)
        bad = ts[rows] != wanted
        if bad.any():
            raise KeyError(str(timestamps[int(bad.argmax())]))
        return rows.astype(np.int64)

    def pivot(self, frame: pl.DataFrame, column: str) -> np.ndarray:
        """(T, N) array of `frame[column]` at its (timestamp, asset) cells, NaN elsewhere."""
        dense = np.full((self.n_bars, self.n_assets), np.nan)
        dense[self.bar_index(frame["timestamp"]), self.asset_index(frame["asset"])] = (
            frame[column].to_numpy()
        )
        return dense

    @classmethod
    def from_bars(cls, bars: pl.DataFrame, width: int | None = None) -> Market:
        """Pivot validated long bars (`timestamp, asset, open, high, low, close, volume`).

        The bars must be sorted by (timestamp, asset) and unique, as `engine.data.loading`
        guarantees; a complete grid is reshaped without copying cell by cell. `width`, when
        the loader found it, is `grid_width` of the bars (searched for when None).
        """
        stamps = bars["timestamp"].to_numpy()
        if width is None:
            width = grid_width(stamps, bars["asset"])
        if width:
            timestamps, assets = bars["timestamp"].gather_every(width), bars["asset"].head(width)
            cells = None
        else:
            new_row = np.empty(len(stamps), dtype=bool)
            new_row[:1] = True
            np.not_equal(stamps[1:], stamps[:-1], out=new_row[1:])
            timestamps = bars["timestamp"].filter(pl.Series(new_row))
            assets = bars["asset"].unique().sort()
            cols = bars["asset"].cast(pl.Enum(assets.to_list())).to_physical().to_numpy()
            cells = (np.cumsum(new_row) - 1, cols)
        shape = (len(timestamps), len(assets))
        if cells is None:
            has_bar = np.frombuffer(b"\x01" * (shape[0] * shape[1]), dtype=bool).reshape(shape)
        else:
            has_bar = np.zeros(shape, dtype=bool)
            has_bar[cells] = True
            has_bar = sealed(has_bar)
        close = _pivot(_values(bars, "close"), shape, cells)
        last_close = close if cells is None else sealed(forward_fill(close, has_bar))
        return cls(timestamps, assets, _pivot(_values(bars, "open"), shape, cells), close,
                   has_bar, last_close, bars, cells)


def grid_width(stamps: np.ndarray, assets: pl.Series) -> int:
    """The number of assets when sorted, unique bars form a complete grid (every timestamp
    has the first timestamp's assets), else 0."""
    width = int(np.searchsorted(stamps, stamps[0], side="right")) if len(stamps) else 0
    if not width or len(stamps) % width:
        return 0
    blocks = stamps.reshape(-1, width)
    if not (blocks == blocks[:, :1]).all():
        return 0
    return width if (assets.slice(width) == assets.head(len(assets) - width)).all() else 0


def _values(bars: pl.DataFrame, name: str) -> np.ndarray:
    """A column as a read-only view of polars' memory: a column read in chunks (a Parquet
    file's row groups) is joined once by polars rather than copied twice through numpy."""
    return bars[name].rechunk().to_numpy()


def sealed(array: np.ndarray) -> np.ndarray:
    """A read-only copy backed by immutable bytes: no view of it, nor its base, is writable."""
    return np.frombuffer(array.tobytes(), dtype=array.dtype).reshape(array.shape)


def _pivot(values: np.ndarray, shape: tuple[int, int], cells) -> np.ndarray:
    """Long values onto the (T, N) grid (sealed): reshaped when complete, else scattered
    (NaN gaps). A read-only view of polars' memory (no buffer under it) is used as it is."""
    if cells is None:
        return values.reshape(shape) if not values.flags.writeable else sealed(
            values.reshape(shape))
    dense = np.full(shape, np.nan)
    dense[cells] = values
    return sealed(dense)


def forward_fill(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Each column's last present value at or before each row (NaN before the first)."""
    row = np.where(present, np.arange(len(values))[:, None], 0)
    np.maximum.accumulate(row, axis=0, out=row)
    filled = values[row, np.arange(values.shape[1])]
    filled[~present & (row == 0) & ~present[0]] = np.nan
    return filled
