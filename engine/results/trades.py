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

Method (vectorized, no per-fill Python loop): positions are per-asset running sums restarted
after every flat point, iterated to a fixed point so they equal the ledger's sequential sums
bit for bit; each fill is split into a closing and an opening part; within each run of one
sign, lot `k` covers `[O[k-1], O[k])` of the cumulative opened quantity and closing part `m`
covers `[C[m-1], C[m])` of the cumulative closed quantity, and the trades are the pieces
between the merged breakpoints.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from engine.core.ledger import ABS_TOL, REL_TOL, cancels
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
_NONE = np.iinfo(np.int64).max


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

    code = fills["asset"].rank("dense").to_numpy().astype(np.int64) - 1
    names = fills["asset"].unique().sort()
    order = np.argsort(code, kind="stable")
    asset = code[order]
    quantity = fills["quantity"].to_numpy()[order]
    fee = fills["fee"].to_numpy()[order]

    before, after = running_positions(quantity, asset)
    pieces = match_fifo(quantity, fee, before, after)
    lot_fill, close_fill, size = pieces["lot_fill"], pieces["close_fill"], pieces["quantity"]
    closed = close_fill >= 0

    # Chronological by entry fill; pieces of one lot are already in exit order.
    by_entry = np.argsort(order[lot_fill], kind="stable")
    lot_fill, close_fill, closed, size = (
        lot_fill[by_entry], close_fill[by_entry], closed[by_entry], size[by_entry]
    )
    entry_fee = size * pieces["entry_fee_rate"][by_entry]
    exit_fee = size * pieces["exit_fee_rate"][by_entry]
    sign = np.sign(after[lot_fill])

    price = fills["price"].to_numpy()[order]
    marks = _last_close_by_code(last_close, names)
    piece_asset = asset[lot_fill]
    exit_row = np.where(closed, close_fill, lot_fill)
    exit_price = np.where(closed, price[exit_row], marks[piece_asset])
    unmarked = ~closed & ~np.isfinite(exit_price)
    if unmarked.any():
        missing = names.gather(np.unique(piece_asset[unmarked])).to_list()
        raise InputError("last_close", f"no finite last close for held assets {missing}")

    entry_price = price[lot_fill]
    pnl = sign * size * (exit_price - entry_price) - entry_fee - exit_fee
    times = fills["timestamp"].to_physical().to_numpy()[order]
    return pl.DataFrame(
        {
            "asset": names.gather(piece_asset),
            "direction": pl.Series(sign > 0).replace_strict(
                {True: "long", False: "short"}, return_dtype=pl.String
            ),
            "entry_time": pl.Series(times[lot_fill]).cast(pl.Datetime("us")),
            "exit_time": pl.Series(np.where(closed, times[exit_row], 0)).cast(pl.Datetime("us")),
            "quantity": size,
            "entry_price": entry_price,
            "exit_price": exit_price,
            "entry_fee": entry_fee,
            "exit_fee": exit_fee,
            "pnl": pnl,
            "return": pnl / (size * entry_price),
            "status": pl.Series(closed).replace_strict(
                {True: "closed", False: "open"}, return_dtype=pl.String
            ),
        }
    ).with_columns(
        pl.when(pl.col("status") == "closed").then(pl.col("exit_time")).alias("exit_time")
    )


def running_positions(quantity: np.ndarray, asset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position before and after each fill, snapped like the ledger; rows grouped by asset.

    Running sums restart at 0 after every flat point, so each equals the ledger's sequential
    sum exactly. Flat points depend on the sums, so the split is iterated: each pass fixes
    at least the first wrong flat point, and in practice the second pass confirms the first.
    """
    n = len(quantity)
    first = np.ones(n, dtype=bool)
    first[1:] = asset[1:] != asset[:-1]
    flat = np.zeros(n, dtype=bool)
    for _ in range(n + 1):
        start = first.copy()
        start[1:] |= flat[:-1]
        raw = segmented_cumsum(quantity, np.cumsum(start))
        before = np.empty(n)
        before[0] = 0.0
        before[1:] = raw[:-1]
        before[start] = 0.0
        found = cancels(before, quantity, raw)
        if np.array_equal(found, flat):
            break
        flat = found
    return before, np.where(flat, 0.0, raw)


def segmented_cumsum(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Running sum of `values` restarted at 0 in each run of equal, contiguous `segment`."""
    frame = pl.DataFrame({"v": values, "s": segment})
    return frame.select(pl.col("v").cum_sum().over("s"))["v"].to_numpy()


def match_fifo(
    quantity: np.ndarray, fee: np.ndarray, before: np.ndarray, after: np.ndarray
) -> dict[str, np.ndarray]:
    """FIFO pieces of fills grouped by asset: lot fill, closing fill (−1 if open), size.

    Also the entry and exit fee per unit of each piece (its fill's fee pro rata).
    """
    s_before, s_after = np.sign(before), np.sign(after)
    adding = (s_before == 0) | (s_before == np.sign(quantity))
    crossing = ~adding & (s_after == -s_before)
    ends_run = ~adding & ((s_after == 0) | crossing)
    opened = np.where(adding, np.abs(quantity), np.where(crossing, np.abs(after), 0.0))
    closed = np.where(adding, 0.0, np.where(ends_run, np.abs(before), np.abs(quantity)))
    open_fee = fee * (opened / (opened + closed))
    close_fee = fee - open_fee

    starts_run = (opened > 0) & ((adding & (s_before == 0)) | crossing)
    run = np.cumsum(starts_run) - 1

    lots = np.flatnonzero(opened > 0)
    lot_run, lot_size = run[lots], opened[lots]
    lot_end = segmented_cumsum(lot_size, lot_run)
    last = np.ones(len(lots), dtype=bool)
    last[:-1] = lot_run[1:] != lot_run[:-1]
    run_total = np.zeros(run[-1] + 1 if len(run) else 0)
    run_total[lot_run[last]] = lot_end[last]

    closes = np.flatnonzero(closed > 0)
    close_run = run[closes] - crossing[closes]
    close_size = closed[closes]
    close_end = np.minimum(segmented_cumsum(close_size, close_run), run_total[close_run])
    final = ends_run[closes]
    close_end[final] = run_total[close_run[final]]

    # Merge both sets of breakpoints per run; at a tie the close comes first.
    n_lots = len(lots)
    point = np.concatenate([lot_end, close_end])
    point_run = np.concatenate([lot_run, close_run])
    is_lot = np.zeros(len(point), dtype=bool)
    is_lot[:n_lots] = True
    index = np.concatenate([np.arange(n_lots), np.arange(len(closes))])
    merged = np.lexsort((is_lot, point, point_run))
    point, point_run, is_lot, index = (
        point[merged], point_run[merged], is_lot[merged], index[merged]
    )

    begin = np.empty(len(point))
    begin[0] = 0.0
    begin[1:] = point[:-1]
    begin[np.r_[True, point_run[1:] != point_run[:-1]]] = 0.0
    length = point - begin
    lot = _next_at_or_after(np.where(is_lot, index, _NONE))
    close = _next_at_or_after(np.where(is_lot, _NONE, index))
    has_close = close != _NONE
    close = np.where(has_close, close, 0)
    if len(closes):
        has_close &= close_run[close] == point_run
    else:
        close_size = np.ones(1)

    scale = np.where(has_close, np.minimum(lot_size[lot], close_size[close]), lot_size[lot])
    keep = length > REL_TOL * scale
    lot, close, has_close, length = lot[keep], close[keep], has_close[keep], length[keep]
    lot_fill = lots[lot]
    close_fill = np.where(has_close, closes[close] if len(closes) else 0, -1)
    safe_close = np.maximum(close_fill, 0)
    return {
        "lot_fill": lot_fill,
        "close_fill": close_fill,
        "quantity": length,
        "entry_fee_rate": open_fee[lot_fill] / opened[lot_fill],
        "exit_fee_rate": np.where(
            has_close, close_fee[safe_close] / np.where(has_close, closed[safe_close], 1.0), 0.0
        ),
    }


def _next_at_or_after(marked: np.ndarray) -> np.ndarray:
    """For each position, the first non-`_NONE` value at or after it (values increase)."""
    return np.minimum.accumulate(marked[::-1])[::-1]


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
