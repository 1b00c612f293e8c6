"""Round trips rebuilt first-in-first-out from the fills (the primary record).

Inputs
- `fills`: `timestamp (Datetime us), asset, quantity (signed, + buy), price, fee, order_id`,
  in execution order: sorted by timestamp, rows of one timestamp in the order they executed.
- `last_close`: the asset's last close, `{asset: price}` or a frame with `asset, close`;
  open trades are marked there. `end_time`: when those closes were taken (None: unchecked);
  no fill may be later.

Rules
- Positions follow the ledger: after a fill, position = before + quantity, set to exactly 0
  when `|before + quantity| ≤ max(1e-9 × max(|before|, |quantity|), 1e-12)`. A fill of at
  most 1e-12 shares changes nothing and is in no trade.
- A fill that adds to a position (or opens one from flat) is a lot. A fill that reduces a
  position closes the oldest lots first; one that flattens closes every lot left; one that
  crosses zero closes the whole position and opens a lot of the remainder in the other
  direction, its fee split between the two parts in proportion to their quantities.
- One row per (lot, closing fill) overlap, plus one `open` row for the part of a lot still
  held, marked at the asset's last close with `exit_time` null and `exit_fee` 0. A piece no
  longer than 1e-9 of its lot (and, if closed, of its closing part) is float residue and
  gets no row.
- Rows are ordered by entry fill, then exit fill (open last).

Output columns (see `schemas.backtest.Trades`): `asset, direction ("long"/"short"),
entry_time, exit_time, quantity (> 0), entry_price, exit_price, entry_fee, exit_fee (fees pro
rata by quantity), pnl = ±quantity × (exit_price − entry_price) − entry_fee − exit_fee,
return = pnl / (quantity × entry_price), status ("open"/"closed")`.

Method: one compiled pass over the fills with a first-in-first-out queue of lots per asset
(`fifo_pieces`), then a sort of the pieces by (entry fill, exit fill).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from engine.core.kernels import ABS_TOL, REL_TOL, kernel
from engine.core.ledger import add_position
from engine.errors import InputError

FILL_COLUMNS = ("timestamp", "asset", "quantity", "price", "fee")
TRADE_SCHEMA = {
    "asset": pl.String,
    "direction": pl.String,
    "entry_time": pl.Datetime("us"),
    "exit_time": pl.Datetime("us"),
    "quantity": pl.Float64,
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "entry_fee": pl.Float64,
    "exit_fee": pl.Float64,
    "pnl": pl.Float64,
    "return": pl.Float64,
    "status": pl.String,
}


def build_trades(
    fills: pl.DataFrame,
    last_close: dict[str, float] | pl.DataFrame,
    end_time: dt.datetime | None,
) -> pl.DataFrame:
    """Round trips rebuilt first-in-first-out from `fills`, open ones marked at `last_close`."""
    _check_fills(fills, end_time)
    fills = fills.select(
        pl.col("timestamp").cast(pl.Datetime("us")),
        pl.col("asset"),
        *(pl.col(c).cast(pl.Float64) for c in ("quantity", "price", "fee")),
    ).filter(pl.col("quantity").abs() > ABS_TOL)
    if fills.height == 0:
        return pl.DataFrame(schema=TRADE_SCHEMA)
    names = fills["asset"].unique().sort()
    code = fills["asset"].cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int64)
    return trades_table(code, names, fills["timestamp"].to_physical().to_numpy(),
                        fills["quantity"].to_numpy(), fills["price"].to_numpy(),
                        fills["fee"].to_numpy(), _last_close_by_code(last_close, names))


def trades_table(asset, names: pl.Series, time_us, quantity, price, fee,
                 marks) -> pl.DataFrame:
    """The trades of fills given as arrays in execution order: asset codes into `names`,
    times in microseconds, and each asset's last close in `marks` (NaN where unknown)."""
    (piece_asset, long, entry_time, exit_time, size, entry_price, exit_price, entry_fee,
     exit_fee, pnl, returns, closed) = trade_rows(
        _read_only(asset, np.int64), _read_only(time_us, np.int64),
        _read_only(quantity, np.float64), _read_only(price, np.float64),
        _read_only(fee, np.float64), _read_only(marks, np.float64), len(names))
    open_ = closed == 0
    unmarked = open_ & ~np.isfinite(exit_price)
    if unmarked.any():
        missing = names.gather(np.unique(piece_asset[unmarked])).to_list()
        raise InputError("last_close", f"no finite last close for held assets {missing}")
    stamp = pl.Datetime("us")
    exit_stamp = pl.Series(exit_time).cast(stamp)
    return pl.DataFrame(
        {
            "asset": names.gather(piece_asset),
            "direction": DIRECTIONS.gather(long),
            "entry_time": pl.Series(entry_time).cast(stamp),
            "exit_time": exit_stamp.set(pl.Series(open_), None) if open_.any() else exit_stamp,
            "quantity": size,
            "entry_price": entry_price,
            "exit_price": exit_price,
            "entry_fee": entry_fee,
            "exit_fee": exit_fee,
            "pnl": pnl,
            "return": returns,
            "status": STATUSES.gather(closed),
        }
    )


DIRECTIONS = pl.Series(["short", "long"])  # by code: 1 long, 0 short
STATUSES = pl.Series(["open", "closed"])  # by code: 1 closed, 0 open


def _read_only(values, dtype) -> np.ndarray:
    """A contiguous read-only view (one compiled signature whatever the caller passes)."""
    view = np.ascontiguousarray(values, dtype=dtype).view()
    view.flags.writeable = False
    return view


@kernel
def trade_rows(asset, time_us, quantity, price, fee, marks, n_assets):
    """Every column of the trades of the fills (`fifo_pieces`), one entry per trade row in
    order (entry fill, exit fill, open last): asset code, long (1, else 0), entry time,
    exit time (0 when open), quantity, entry price, exit price (the mark when open), entry
    fee, exit fee, pnl = sign × quantity × (exit − entry) − entry fee − exit fee, return =
    pnl / (quantity × entry price), closed (1, else 0); codes are int64, the index type
    polars gathers by fastest."""
    n = len(asset)
    lot = np.empty(2 * n + 1, dtype=np.int64)  # room untouched costs no memory
    close = np.empty(2 * n + 1, dtype=np.int64)
    size = np.empty(2 * n + 1)
    entry_fee = np.empty(2 * n + 1)
    exit_fee = np.empty(2 * n + 1)
    rows = fifo_pieces(asset, quantity, fee, n_assets, lot, close, size, entry_fee, exit_fee)
    start = np.zeros(n + 1, dtype=np.int64)  # pieces of each lot are already in exit order:
    for i in range(rows):  # a stable counting sort by lot puts the rows in order
        start[lot[i] + 1] += 1
    for row in range(n):
        start[row + 1] += start[row]
    order = np.empty(rows, dtype=np.int64)
    for i in range(rows):
        order[start[lot[i]]] = i
        start[lot[i]] += 1
    out_asset = np.empty(rows, dtype=np.int64)
    out_long = np.empty(rows, dtype=np.int64)
    out_entry_time = np.empty(rows, dtype=np.int64)
    out_exit_time = np.empty(rows, dtype=np.int64)
    out_size, out_entry_price, out_exit_price = np.empty(rows), np.empty(rows), np.empty(rows)
    out_entry_fee, out_exit_fee = np.empty(rows), np.empty(rows)
    out_pnl, out_return = np.empty(rows), np.empty(rows)
    out_closed = np.empty(rows, dtype=np.int64)
    for k in range(rows):
        i = order[k]
        entry, exit_ = lot[i], close[i]
        a = asset[entry]
        sign = np.sign(quantity[entry])
        entry_price = price[entry]
        exit_price = price[exit_] if exit_ >= 0 else marks[a]
        pnl = sign * size[i] * (exit_price - entry_price) - entry_fee[i] - exit_fee[i]
        out_asset[k] = a
        out_long[k] = sign > 0
        out_entry_time[k] = time_us[entry]
        out_exit_time[k] = time_us[exit_] if exit_ >= 0 else 0
        out_size[k] = size[i]
        out_entry_price[k] = entry_price
        out_exit_price[k] = exit_price
        out_entry_fee[k] = entry_fee[i]
        out_exit_fee[k] = exit_fee[i]
        out_pnl[k] = pnl
        out_return[k] = pnl / (size[i] * entry_price)
        out_closed[k] = exit_ >= 0
    return (out_asset, out_long, out_entry_time, out_exit_time, out_size, out_entry_price,
            out_exit_price, out_entry_fee, out_exit_fee, out_pnl, out_return, out_closed)


@kernel
def fifo_pieces(asset, quantity, fee, n_assets, lot_of, close_of, size, entry_fee,
                exit_fee) -> int:
    """FIFO pieces of the fills, one entry each in the outputs: lot fill, closing fill
    (−1: still open), quantity, entry fee, exit fee; the pieces of each lot come in exit
    order, open last, and their number is returned (the outputs have room for 2n + 1).

    A fill that adds (or opens from flat) is a lot; one that reduces closes the oldest lots
    first; one that flattens closes every lot left; one that crosses zero closes them all
    and opens a lot of the remainder, its fee split by quantity. Pieces no longer than
    1e-9 of their lot (or of the closing part) are float residue and get no row.
    """
    n = len(asset)
    held = np.zeros(n_assets)
    head = np.full(n_assets, -1, dtype=np.int64)  # oldest lot left of each asset
    tail = np.full(n_assets, -1, dtype=np.int64)
    following = np.full(n, -1, dtype=np.int64)  # next lot of the same asset, by fill row
    lot_size = np.zeros(n)
    lot_left = np.zeros(n)
    lot_fee = np.zeros(n)
    rows = 0
    for row in range(n):
        q = quantity[row]
        if abs(q) <= ABS_TOL:
            continue
        a = asset[row]
        before = held[a]
        after = add_position(before, q)
        held[a] = after
        if before == 0 or (before > 0) == (q > 0):
            to_close, to_open = 0.0, abs(q)
        elif after == 0:
            to_close, to_open = abs(before), 0.0
        elif (after > 0) == (before > 0):
            to_close, to_open = abs(q), 0.0
        else:
            to_close, to_open = abs(before), abs(after)
        open_fee = fee[row] * to_open / (to_open + to_close)
        close_fee = fee[row] - open_fee
        everything = to_close > 0 and (after == 0 or to_open > 0)
        left = to_close
        while to_close > 0 and head[a] >= 0 and (everything or left > REL_TOL * to_close):
            lot = head[a]
            take = lot_left[lot] if everything else min(lot_left[lot], left)
            if take > REL_TOL * min(lot_size[lot], to_close):
                lot_of[rows] = lot
                close_of[rows] = row
                size[rows] = take
                entry_fee[rows] = lot_fee[lot] * take / lot_size[lot]
                exit_fee[rows] = close_fee * take / to_close
                rows += 1
            lot_left[lot] -= take
            left -= take
            if everything or lot_left[lot] <= REL_TOL * lot_size[lot]:
                head[a] = following[lot]
                if head[a] < 0:
                    tail[a] = -1
        if to_open > 0:
            lot_size[row] = to_open
            lot_left[row] = to_open
            lot_fee[row] = open_fee
            if tail[a] >= 0:
                following[tail[a]] = row
            else:
                head[a] = row
            tail[a] = row
    for a in range(n_assets):
        lot = head[a]
        while lot >= 0:
            if lot_left[lot] > REL_TOL * lot_size[lot]:
                lot_of[rows] = lot
                close_of[rows] = -1
                size[rows] = lot_left[lot]
                entry_fee[rows] = lot_fee[lot] * lot_left[lot] / lot_size[lot]
                exit_fee[rows] = 0.0
                rows += 1
            lot = following[lot]
    return rows


def _last_close_by_code(
    last_close: dict[str, float] | pl.DataFrame, names: pl.Series
) -> np.ndarray:
    """Last close per asset code (NaN where unknown)."""
    if isinstance(last_close, pl.DataFrame):
        missing = {"asset", "close"} - set(last_close.columns)
        if missing:
            raise InputError("last_close", f"missing columns {sorted(missing)}")
        table = last_close.select("asset", pl.col("close").cast(pl.Float64))
    else:
        table = pl.DataFrame(
            {"asset": list(last_close), "close": [float(v) for v in last_close.values()]},
            schema={"asset": pl.String, "close": pl.Float64},
        )
    joined = pl.DataFrame({"asset": names}).join(
        table.drop_nulls().unique("asset", keep="last"), on="asset", how="left",
        maintain_order="left",
    )
    return joined["close"].fill_null(np.nan).to_numpy()


def _check_fills(fills: pl.DataFrame, end_time: dt.datetime | None) -> None:
    missing = [c for c in FILL_COLUMNS if c not in fills.columns]
    if missing:
        raise InputError("fills", f"missing columns {missing}")
    for column in FILL_COLUMNS:
        nulls = fills[column].is_null().arg_true().to_list()
        if nulls:
            raise InputError("fills", "null values", column, nulls)
    for column in ("quantity", "price", "fee"):
        bad = (~fills[column].cast(pl.Float64).is_finite()).arg_true().to_list()
        if bad:
            raise InputError("fills", "values must be finite", column, bad)
    if not fills["timestamp"].is_sorted():
        raise InputError("fills", "rows must be in execution order (sorted)", "timestamp")
    if fills.height and end_time is not None and fills["timestamp"].max() > end_time:
        late = (fills["timestamp"] > end_time).arg_true().to_list()
        raise InputError("fills", f"fills after end_time {end_time}", "timestamp", late)
