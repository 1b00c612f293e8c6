"""Read and validate user prices and weights (frames, Parquet or CSV) into normalized frames.

Prices come out as `timestamp, asset, open, high, low, close, volume` and weights as
`timestamp, asset, weight`: timestamps naive `Datetime("us")`, assets `String`, numbers
`Float64`, sorted by (timestamp, asset). Rows may come in any order (a vendor's file grouped
by asset is sorted here); a (timestamp, asset) key given twice is refused.
Column names match in any case and spacing ('Close', 'Limit Price'), and 'Date', 'Datetime'
or 'Time' name the timestamp and 'Ticker' or 'Symbol' the asset, where one column alone
does; two candidates for one name are refused. Extra columns ('Adj Close') are dropped.
A wide table (one column per asset) is refused with a message saying so. Bad input raises
`InputError` naming the source, the column and the 1-based data rows (as in the file) of
the first offenders. The value checks of a table run in one pass (`_reject_first`); only a
table that fails one is read again for its rows.

Timezone rule: timezone-aware timestamps (a zoned datetime column, or ISO text that ends in
an offset such as `+01:00` or `Z`) are converted to UTC and then stored naive, so
`2024-01-02 00:00 America/New_York` becomes `2024-01-02 05:00`. Text that mixes rows with
and without an offset is refused (it has no single reading).

Date rule: numeric dates such as `01/02/2020` (or with dots or dashes, a time after them)
are read month-first or day-first, whichever reads every such row of the column; a
column that reads both ways with different dates (no day above 12) is refused, since
nothing in it says which is meant.

Bars must be consistent: low ≤ open, close ≤ high (so low ≤ high). Inconsistent bars are
refused unless `repair_ohlc` is set, which widens high and low to cover open and close.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import polars as pl

from engine.data.grid import NOT_CLEAN, bar_grid, load_in_background
from engine.data.market import Market
from engine.errors import InputError
from schemas.declared import layout
from schemas.vocabulary import ORDER_TYPES, TRAIL_MODES

Source = str | Path | pl.DataFrame

PRICE_COLUMNS = ("timestamp", "asset", "open", "high", "low", "close", "volume")
WEIGHT_COLUMNS = ("timestamp", "asset", "weight")
SIGNAL_COLUMNS = ("timestamp", "asset", "score")
FILL_COLUMNS = ("timestamp", "asset", "quantity", "price", "fee")
ORDER_COLUMNS = ("timestamp", "asset", "type", "quantity")
ORDER_OPTIONAL = ("limit_price", "stop_price", "trail", "trail_mode", "valid_until", "group",
                  "id", "parent")
ORDER_LAYOUT = ("timestamp", "asset", "type", "quantity", "limit_price", "stop_price", "trail",
                "trail_mode", "valid_bars", "valid_until", "group", "id", "parent")
PRICE_FIELDS = ("open", "high", "low", "close")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)
LEVERAGE_TOLERANCE = 1e-9
ISO_LAYOUTS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f")
UTC_OFFSET = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$"


def read_table(path: str | Path) -> pl.DataFrame:
    """Read a Parquet (.parquet, .pq) or CSV (.csv, every column as text) file.

    A CSV whose header is one name holding semicolons or tabs is read with that separator
    (a spreadsheet's export where the comma is the decimal mark); blank lines at its end
    are not rows.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + CSV_SUFFIXES:
        raise InputError(path.name, f"unsupported file type '{suffix}' (use .parquet, .pq, .csv)")
    if not path.is_file():
        raise InputError(path.name, f"file not found: {path}")
    kind = "Parquet" if suffix in PARQUET_SUFFIXES else "CSV"
    try:
        if kind == "Parquet":
            return pl.read_parquet(path)
        frame = pl.read_csv(path, infer_schema=False)
        if frame.width == 1 and (separator := _other_separator(frame.columns[0])):
            frame = pl.read_csv(path, infer_schema=False, separator=separator)
        return _without_blank_tail(frame)
    except pl.exceptions.NoDataError:
        raise InputError(path.name, "file is empty") from None
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(path.name, f"cannot read as {kind}: {_first_line(error)}") from None


def _other_separator(header: str) -> str | None:
    """The separator of a CSV read as one column named `header`: ';' or a tab, if either
    splits it."""
    return next((separator for separator in (";", "\t") if separator in header), None)


def _without_blank_tail(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` less its trailing rows that are empty in every column (blank lines at the
    end of a CSV); rows before them keep their numbers."""
    filled = frame.select(pl.any_horizontal(pl.all().is_not_null()
                                            & (pl.all().cast(pl.String) != ""))).to_series()
    last = filled.arg_true()
    return frame.head(int(last[-1]) + 1 if len(last) else 0)


def load_prices(
    source: Source, name: str | None = None, repair_ohlc: bool = False
) -> pl.DataFrame:
    """Validated bars `timestamp, asset, open, high, low, close, volume` (extras dropped).

    `repair_ohlc` accepts bars whose high or low does not cover the open and close by
    widening them; by default such bars are refused.
    """
    return _load_bars(source, name, repair_ohlc)[0]


def load_market(source: Source, name: str | None = None, repair_ohlc: bool = False) -> Market:
    """`load_prices` pivoted into a `Market`: a complete grid found while checking the keys
    is pivoted as found, not searched for again."""
    bars, width = _load_bars(source, name, repair_ohlc)
    return Market.from_bars(bars, width)


def _load_bars(source: Source, name: str | None, repair_ohlc: bool
               ) -> tuple[pl.DataFrame, int | None]:
    """The validated bars and their grid width (`grid.bar_grid`; 0: not a complete grid,
    None: not known). A file's read overlaps the load of the check's compiled code (a
    missing file is refused without loading it)."""
    read = isinstance(source, str | Path) and Path(source).is_file()
    loading = load_in_background() if read else None
    try:
        return _checked_bars(source, name, repair_ohlc)
    finally:
        if loading is not None:  # never left running, an error's exit included
            loading.join()


def _checked_bars(source: Source, name: str | None, repair_ohlc: bool
                  ) -> tuple[pl.DataFrame, int | None]:
    """`_load_bars`' reading and checks."""
    frame, label = _open(source, name, "prices")
    frame = _normalize(frame, PRICE_COLUMNS, PRICE_COLUMNS[2:], label)
    width = bar_grid(frame)
    if width != NOT_CLEAN:
        width = width if width and _assets_repeat(frame["asset"], width) else 0
        if width or _keys_in_order(frame):
            return _gate(frame, "Bars", label), width
    if not _bars_look_valid(frame):
        checks = [(~(pl.col(c).is_finite() & (pl.col(c) > 0)), c,
                   "price must be a positive number", c) for c in PRICE_FIELDS]
        volume = pl.col("volume")
        checks.append((~(volume.is_finite() & (volume >= 0)), "volume",
                       "volume must be a non-negative number", "volume"))
        _reject_first(frame, label, [*checks, KEYS])
    frame = _check_ohlc(frame, label, repair_ohlc)
    return _gate(_in_key_order(frame), "Bars", label), None


def _assets_repeat(assets: pl.Series, width: int) -> bool:
    """Whether the first `width` assets increase strictly and every later block of
    `width` rows repeats them (with timestamps in complete increasing blocks of `width`
    rows, `grid.bar_grid`, the keys are then unique, sorted and a complete grid)."""
    first = assets.head(width)
    return bool((first.slice(1) > first.head(-1)).all()
                and (assets.slice(width) == assets.head(len(assets) - width)).all())


def _keys_in_order(frame: pl.DataFrame) -> bool:
    """Keys unique and sorted by (timestamp, asset)."""
    ts, asset = pl.col("timestamp"), pl.col("asset")
    after = (ts > ts.shift(1)) | ((ts == ts.shift(1)) & (asset > asset.shift(1)))
    return frame.select(after.fill_null(True).all()).item()


def _bars_look_valid(frame: pl.DataFrame) -> bool:
    """The checks of `load_prices` at array speed: prices finite and positive, volumes
    finite and non-negative (NaN, and null read as NaN, fail both), timestamps in order,
    assets strictly increasing within a timestamp. False sends the frame to the checks
    that name the rows."""
    for column in (*PRICE_FIELDS, "volume"):
        values = frame[column].to_numpy()
        low, high = values.min(), values.max()
        if not ((low > 0 if column != "volume" else low >= 0) and high < np.inf):
            return False
    stamps = frame["timestamp"].to_physical().to_numpy()
    if not (stamps[1:] >= stamps[:-1]).all():
        return False
    ts, asset = pl.col("timestamp"), pl.col("asset")
    return not frame.select(((ts == ts.shift(1)) & (asset <= asset.shift(1))).any()).item()


def load_weights(
    source: Source,
    prices: Source | Market,
    name: str | None = None,
    allow_short: bool = False,
    allow_leverage: bool = False,
) -> pl.DataFrame:
    """Validated target weights `timestamp, asset, weight` on the prices' assets and bars.

    `prices` may be the `Market` built from them (its keys are then read, not loaded).
    """
    frame, label = _open(source, name, "weights")
    frame = _normalize(frame, WEIGHT_COLUMNS, ("weight",), label)
    weight = pl.col("weight")
    checks = [(~weight.is_finite(), "weight", "weight must be a finite number", "weight"),
              *_on_prices(prices), KEYS]
    if not allow_short:
        checks.append((weight < 0, "weight", "negative weight (shorts need allow_short)",
                       "weight"))
    _reject_first(frame, label, checks)
    if not allow_leverage:
        _check_leverage(frame, label, gross=allow_short)
    return _gate(_in_key_order(frame), "Weights", label)


def load_signals(source: Source, prices: Source | Market, name: str | None = None
                 ) -> pl.DataFrame:
    """Validated scores `timestamp, asset, score` on the prices' assets and bars."""
    frame, label = _open(source, name, "signals")
    frame = _normalize(frame, SIGNAL_COLUMNS, ("score",), label)
    checks = [(~pl.col("score").is_finite(), "score", "score must be a finite number", "score"),
              *_on_prices(prices), KEYS]
    _reject_first(frame, label, checks)
    return _gate(_in_key_order(frame), "Scores", label)


def load_fills(source: Source, prices: Source, name: str | None = None) -> pl.DataFrame:
    """Validated fills `timestamp, asset, quantity, price, fee` (any engine's, normalized).

    Unlike prices, a fill log may hold several rows per (timestamp, asset): a duplicate is
    evidence for the gap analysis, not an input error. Rows keep their order.
    """
    frame, label = _open(source, name, "fills")
    frame = _normalize(frame, FILL_COLUMNS, FILL_COLUMNS[2:], label)
    _reject(frame, ~pl.col("quantity").is_finite() | (pl.col("quantity") == 0), label,
            "quantity", "quantity must be a non-zero number", show="quantity")
    _reject(frame, ~(pl.col("price").is_finite() & (pl.col("price") > 0)), label, "price",
            "price must be a positive number", show="price")
    _reject(frame, ~(pl.col("fee").is_finite() & (pl.col("fee") >= 0)), label, "fee",
            "fee must be a non-negative number", show="fee")
    _reject_first(frame, label, _on_prices(prices))
    ts = pl.col("timestamp")
    _reject(frame, (ts < ts.shift(1)).fill_null(False), label, "timestamp",
            "row sorts before the row above it (sort fills by time)")
    return frame


def load_orders(source: Source, market: Market, name: str | None = None,
                in_market: bool = True) -> pl.DataFrame:
    """A validated order table (docs/semantics.md, "Order tables, settings and outputs").

    Rows come out in their order (sorted by timestamp) as `timestamp, asset, type,
    quantity, limit_price, stop_price, trail, trail_mode, valid_bars, valid_until, group,
    id, parent`: `valid_until` split into a bar count (`valid_bars`) or a timestamp; text
    columns empty where not given. Every row names an asset and a bar of `market`
    (`in_market` False: not checked here, for a caller that maps each row's keys onto
    `market` itself, which refuses one not in it).
    """
    frame, label = _open(source, name, "orders")
    if frame.height == 0:
        raise InputError(label, "no data rows")
    frame = _match_columns(frame, ORDER_COLUMNS + ORDER_OPTIONAL, label)
    _require_columns(frame, ORDER_COLUMNS, label)
    present = [c for c in ORDER_OPTIONAL if c in frame.columns]
    frame = frame.select(*ORDER_COLUMNS, *present).with_columns(
        pl.lit(None, pl.String).alias(c) for c in ORDER_OPTIONAL if c not in present)
    frame = _cast_timestamps(frame, label)
    frame = _cast_assets(frame, label)
    for column in ("quantity", "limit_price", "stop_price", "trail"):
        frame = _cast_number(frame, column, label)
    for column in ("type", "trail_mode", "group", "id", "parent", "valid_until"):
        if column == "type" or column in present:  # one at a time: one column's copy at most
            frame = frame.with_columns(_trimmed(frame[column], column in ("id", "parent")))
    frame = frame.with_columns(pl.col("trail_mode").fill_null("percent"))
    kind, qty = pl.col("type"), pl.col("quantity")
    limit, stop, trail = pl.col("limit_price"), pl.col("stop_price"), pl.col("trail")
    needs_limit = kind.is_in(["limit", "stop_limit"])
    needs_stop = kind.is_in(["stop", "stop_limit"])
    trailing = kind == "trailing_stop"

    def positive(value: pl.Expr) -> pl.Expr:
        return value.is_finite() & (value > 0)

    ts = pl.col("timestamp")
    _reject_first(frame, label, [
        (~kind.is_in(list(ORDER_TYPES)), "type",
         f"unknown order type (use {', '.join(ORDER_TYPES)})", "type"),
        (~(qty.is_finite() & (qty != 0)), "quantity", "quantity must be a non-zero number",
         "quantity"),
        (needs_limit & ~positive(limit).fill_null(False), "limit_price",
         "limit and stop_limit orders need a positive limit_price", "limit_price"),
        (~needs_limit & limit.is_not_null(), "limit_price",
         "limit_price given for an order that is not a limit or stop_limit", "type"),
        (needs_stop & ~positive(stop).fill_null(False), "stop_price",
         "stop and stop_limit orders need a positive stop_price", "stop_price"),
        (~needs_stop & stop.is_not_null(), "stop_price",
         "stop_price given for an order that is not a stop or stop_limit", "type"),
        (trailing & ~positive(trail).fill_null(False), "trail",
         "trailing_stop orders need a positive trail", "trail"),
        (~trailing & trail.is_not_null(), "trail",
         "trail given for an order that is not a trailing_stop", "type"),
        (~pl.col("trail_mode").is_in(list(TRAIL_MODES)), "trail_mode",
         "trail_mode must be percent or absolute", "trail_mode"),
        (trailing & (pl.col("trail_mode") == "percent") & (trail >= 1), "trail",
         "a percent trail is a fraction below 1", "trail"),
        *(_on_prices(market) if in_market else ()),
        ((ts < ts.shift(1)).fill_null(False), "timestamp",
         "row sorts before the row above it (sort orders by timestamp)", None),
    ])
    frame = _valid_until(frame, label)
    if frame["valid_until"].null_count() < frame.height:
        stamps = market.timestamps.to_numpy()
        last = np.searchsorted(stamps, frame["valid_until"].fill_null(stamps[-1]).to_numpy(),
                               side="right") - 1
        row_bar = np.searchsorted(stamps, frame["timestamp"].to_numpy())
        _reject(frame, pl.Series(frame["valid_until"].is_not_null().to_numpy()
                                 & (last <= row_bar)),
                label, "valid_until", "valid_until is before the next bar", show="valid_until")
    if any(frame[c].null_count() < frame.height for c in ("valid_until", "valid_bars", "group")):
        _reject(frame, (pl.col("type") == "market") & (pl.col("valid_until").is_not_null()
                                                       | pl.col("valid_bars").is_not_null()
                                                       | pl.col("group").is_not_null()),
                label, "type", "valid_until and group apply to resting orders, not market orders")
    _check_links(frame, label)
    return _gate(frame, "OrderRows", label)


OrderSink = Callable[[pl.DataFrame, int, int], None]  # (validated rows, first row, rows)
ORDER_BATCH = 1 << 18  # rows of an order table validated at a time (`load_orders_into`)
PLAIN_ISO = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}:\d{2}(\.\d+)?)?$"  # no offset


def load_orders_into(source: Source, market: Market, sink: OrderSink,
                     name: str | None = None, sink_maps_keys: bool = False) -> None:
    """`load_orders` a batch of rows at a time, so that a large table is never held whole:
    each validated batch goes to `sink(batch, first_row, n_rows)` in row order.

    The checks that span batches (timestamps in order, ids unique) are made across them.
    A table that fails any check is loaded whole by `load_orders` for its one-line error;
    so is one whose batches cannot be read alone (a `parent` naming another row, text
    timestamps other than plain ISO), which then goes to `sink` as one batch at row 0.
    `sink_maps_keys`: the sink maps each row's timestamp and asset onto `market` and
    raises KeyError for one not in it (`Market.bar_index`, `asset_index`), so the batches
    skip that check rather than make it twice (a KeyError counts as a failed check).
    """
    if not _orders_in_batches(source, market, sink, sink_maps_keys):
        table = load_orders(source, market, name)
        sink(table, 0, table.height)


def _orders_in_batches(source: Source, market: Market, sink: OrderSink,
                       sink_maps_keys: bool) -> bool:
    """Hand `source`'s rows to `sink` batch by batch; False (maybe after some batches)
    when the table must be loaded whole instead."""
    refused = (InputError, pl.exceptions.PolarsError, OSError, *(
        (KeyError,) if sink_maps_keys else ()))
    try:
        n_rows, batches = _order_batches(source)
        first, last_stamp, ids = 0, None, pl.Series("id", [], pl.String)
        for raw in batches:
            if first + raw.height > n_rows or not _batch_alone(raw):
                return False
            batch = load_orders(raw, market, in_market=not sink_maps_keys)
            stamps = batch["timestamp"]
            named = batch["id"].drop_nulls()
            if (last_stamp is not None and stamps[0] < last_stamp) or (
                    len(named) and named.is_in(ids.implode()).any()):
                return False
            if len(named):
                ids = pl.concat([ids, named])
            sink(batch, first, n_rows)
            first, last_stamp = first + batch.height, stamps[-1]
        return 0 < first == n_rows
    except refused:
        return False


def _order_batches(source: Source) -> tuple[int, Iterable[pl.DataFrame]]:
    """An order table's row count and its raw rows in batches of about `ORDER_BATCH`,
    read as `read_table` reads the whole file (no rows: load it whole)."""
    if isinstance(source, pl.DataFrame):
        starts = range(0, source.height, ORDER_BATCH)
        return source.height, (source.slice(start, ORDER_BATCH) for start in starts)
    path = Path(source)
    suffix = path.suffix.lower()
    if not path.is_file() or suffix not in PARQUET_SUFFIXES + CSV_SUFFIXES:
        return 0, ()
    lazy = (pl.scan_parquet(path) if suffix in PARQUET_SUFFIXES
            else pl.scan_csv(path, infer_schema=False))
    return lazy.select(pl.len()).collect().item(), lazy.collect_batches(chunk_size=ORDER_BATCH)


def _batch_alone(raw: pl.DataFrame) -> bool:
    """Whether a batch of raw order rows validates alone as it would in the whole table:
    no `parent` (it names rows of other batches) and text timestamps in plain ISO (the
    other layouts are read by a rule inferred from the whole column)."""
    raw = _match_columns(raw, ORDER_COLUMNS + ORDER_OPTIONAL, "orders")
    if "parent" in raw.columns and raw["parent"].null_count() < raw.height:
        return False
    for column in ("timestamp", "valid_until"):
        if column not in raw.columns or raw.schema[column] != pl.String:
            continue
        text = raw[column]
        if column == "valid_until":  # trimmed before it is read (`_trimmed`)
            text = text.str.strip_chars()
            text = text.filter(text.cast(pl.Float64, strict=False).is_null())
        plain = text.is_null() | (text == "") | text.str.contains(PLAIN_ISO)
        if not plain.all():
            return False
    return True


def _trimmed(values: pl.Series, distinct: bool) -> pl.Series:
    """Text without surrounding blanks, empty text as null. A column of few distinct values
    (`distinct` False: types, modes, bar counts) is trimmed through its distinct values, so
    that millions of rows cost one new column, not a copy per step."""
    values = values.cast(pl.String)
    if distinct:
        return values.str.strip_chars().replace("", None)
    seen = values.unique().drop_nulls()
    trimmed = seen.str.strip_chars().replace("", None)
    if trimmed.equals(seen):  # nothing to trim: the column as it is
        return values
    return values.replace_strict(seen, trimmed, default=None)


def _valid_until(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """`valid_until` as a whole number of bars (≥ 1) or a timestamp after the row's."""
    raw = frame["valid_until"]
    columns = ORDER_LAYOUT
    if raw.null_count() == frame.height:  # good till cancelled throughout: nothing to parse
        return frame.with_columns(valid_bars=pl.lit(None, dtype=pl.Int64),
                                  valid_until=pl.lit(None, dtype=pl.Datetime("us"))
                                  ).select(columns)
    if isinstance(raw.dtype, pl.Datetime | pl.Date):
        bars = pl.repeat(None, frame.height, dtype=pl.Float64, eager=True)
        stamps = _cast_timestamps(pl.DataFrame({"timestamp": raw}), label).to_series()
    else:
        raw = raw.cast(pl.String)
        bars = raw.cast(pl.Float64, strict=False)
        as_time = raw.is_not_null() & bars.is_null()
        if as_time.any():
            filler = _show(frame["timestamp"][0])
            parsed = _cast_timestamps(pl.select(timestamp=pl.when(as_time).then(raw)
                                                .otherwise(pl.lit(filler))), label).to_series()
            stamps = pl.select(pl.when(as_time).then(parsed)).to_series()
        else:  # bar counts only: nothing to parse
            stamps = pl.repeat(None, frame.height, dtype=pl.Datetime("us"), eager=True)
    bad_bars = bars.is_not_null() & ((bars < 1) | (bars != bars.floor()))
    _reject(frame, bad_bars, label, "valid_until",
            "valid_until in bars must be a whole number of at least 1", show="valid_until")
    frame = frame.with_columns(valid_bars=bars.cast(pl.Int64), valid_until=stamps)
    _reject(frame, (pl.col("valid_until") <= pl.col("timestamp")).fill_null(False), label,
            "valid_until",
            "valid_until is not after the order's timestamp", show="valid_until")
    return frame.select(columns)


def _check_links(frame: pl.DataFrame, label: str) -> None:
    """Ids unique; a `parent` names the id of an earlier market or limit row of its asset."""
    ids = pl.col("id")
    if frame["id"].null_count() < frame.height:
        _reject(frame, ids.is_not_null() & ids.is_duplicated(), label, "id", "duplicate id",
                show="id")
    if frame["parent"].null_count() == frame.height:
        return
    rows = frame.with_row_index("_row").select("_row", "id", "asset", "type")
    linked = frame.with_row_index("_row").join(
        rows.rename({"_row": "_parent_row", "asset": "_parent_asset", "type": "_parent_type",
                     "id": "parent"}), on="parent", how="left", maintain_order="left")
    child = pl.col("parent").is_not_null()
    _reject(linked, child & pl.col("_parent_row").is_null(), label, "parent",
            "parent names no id of the table", show="parent")
    _reject(linked, child & (pl.col("_parent_row") >= pl.col("_row")), label, "parent",
            "parent must come before its child", show="parent")
    _reject(linked, child & (pl.col("_parent_asset") != pl.col("asset")), label, "parent",
            "a bracket child must be on its parent's asset", show="parent")
    _reject(linked, child & ~pl.col("_parent_type").is_in(["market", "limit"]), label,
            "parent", "a bracket parent must be a market or limit order", show="parent")
    _reject(linked, child & pl.col("_parent_type").is_not_null()
            & pl.col("parent").is_in(frame.filter(pl.col("parent").is_not_null())["id"]
                                     .implode()), label, "parent",
            "a bracket child cannot be a parent itself", show="parent")


def _check_ohlc(frame: pl.DataFrame, label: str, repair: bool) -> pl.DataFrame:
    """low ≤ open, close ≤ high on every bar; `repair` widens high and low instead."""
    prices = [pl.col(column) for column in PRICE_FIELDS]
    if repair:
        return frame.with_columns(high=pl.max_horizontal(prices), low=pl.min_horizontal(prices))
    body_top = pl.max_horizontal("open", "close")
    body_bottom = pl.min_horizontal("open", "close")
    hint = "(inconsistent bar; repair_ohlc widens high and low to cover them)"
    checks = (("high", pl.col("high") < body_top, "below"),
              ("low", pl.col("low") > body_bottom, "above"))
    if not any(frame.select(bad.any().alias(column) for column, bad, _ in checks).row(0)):
        return frame
    for column, bad, relation in checks:
        flags = frame.select(bad).to_series()
        if flags.any():
            first = frame.filter(flags).row(0, named=True)
            found = ", ".join(f"{c} {_show(first[c])}" for c in PRICE_FIELDS)
            _raise(frame, flags, label, column,
                   f"{column} {relation} open or close {hint}, found {found}")
    return frame


def _on_prices(prices: Source | Market) -> list[Check]:
    """Checks that every row names an asset of the prices and one of their timestamps."""
    if isinstance(prices, Market):
        assets, timestamps = prices.assets, prices.timestamps
    else:
        keys = _price_keys(prices)
        assets, timestamps = keys["asset"].unique(), keys["timestamp"].unique()
    times = timestamps.dt.time().unique().sort().to_list()
    hint = ""
    if 0 < len(times) <= 2 and dt.time(0) not in times:  # daily bars, zoned ones in UTC
        shown = " or ".join(time.isoformat("minutes") for time in times)
        hint = f" (the prices' bars are at {shown}; zoned times are read in UTC)"
    return [(~pl.col("asset").is_in(assets.implode()), "asset", "asset not in the prices",
             "asset"),
            (~pl.col("timestamp").is_in(timestamps.implode()), "timestamp",
             f"timestamp is not a bar of the prices{hint}", "timestamp")]


def _open(source: Source, name: str | None, default: str) -> tuple[pl.DataFrame, str]:
    """The raw frame and the label used in error messages."""
    if isinstance(source, pl.DataFrame):
        return source, name or default
    if isinstance(source, str | Path):
        return read_table(source), name or Path(source).name
    raise InputError(name or default, f"expected a DataFrame or a file path, got {type(source)}")


def _normalize(
    frame: pl.DataFrame, columns: tuple[str, ...], numbers: tuple[str, ...], label: str
) -> pl.DataFrame:
    """Required columns only, in order, cast to their types."""
    if frame.height == 0:
        raise InputError(label, "no data rows")
    frame = _match_columns(frame, columns, label)
    _require_columns(frame, columns, label)
    frame = frame.select(columns)
    frame = _cast_timestamps(frame, label)
    frame = _cast_assets(frame, label)
    for column in numbers:
        frame = _cast_number(frame, column, label)
    return frame


def _match_columns(frame: pl.DataFrame, columns: tuple[str, ...], label: str
                   ) -> pl.DataFrame:
    """`frame` with a column renamed to each of `columns` it lacks when one column alone
    means it: the same name in another case or spacing ('Close', ' limit price '), or a
    vendor's word for the key (`COLUMN_ALIASES`: 'Date', 'Ticker'). Two such columns for
    one name are refused, naming both; a name present as it is wins over its variants."""
    renames: dict[str, str] = {}
    for column in columns:
        if column in frame.columns:
            continue
        words = {column, *COLUMN_ALIASES.get(column, ())}
        found = [c for c in frame.columns if c not in columns and c not in renames
                 and _plain_name(c) in words]
        if len(found) > 1:
            shown = " and ".join(f"'{c}'" for c in found)
            raise InputError(label, f"columns {shown} could each be '{column}'; rename the "
                             f"one to use to '{column}'")
        if found:
            renames[found[0]] = column
    return frame.rename(renames) if renames else frame


PANDAS_INDEX = "__index_level_0__"  # the column pandas saves an unnamed index as
COLUMN_ALIASES = {"timestamp": ("date", "datetime", "time"), "asset": ("ticker", "symbol")}


def _plain_name(column: str) -> str:
    """A column name compared without case, surrounding blanks, or blanks and dashes
    between words ('Limit Price' is 'limit_price')."""
    return re.sub(r"[\s\-]+", "_", column.strip().lower())


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], label: str) -> None:
    """Raise naming every missing column and, when close, the likely misspelling present;
    a table with a timestamp and nothing else it needs but several other columns is
    probably wide (one column per asset), and the message says so."""
    missing = [column for column in columns if column not in frame.columns]
    if not missing:
        return
    others = {c.strip().lower(): c for c in frame.columns if c not in columns}
    described = []
    for column in missing:
        close = difflib.get_close_matches(column, list(others), n=1, cutoff=0.6)
        hint = f" (found '{others[close[0]]}'?)" if close else ""
        if column == "timestamp" and PANDAS_INDEX in frame.columns:
            hint = (f" (found '{PANDAS_INDEX}', a pandas index saved without a name: name "
                    "it timestamp before saving)")
        described.append(f"'{column}'{hint}")
    plural = "s" if len(missing) > 1 else ""
    problem = f"missing column{plural} {', '.join(described)}"
    wide = set(missing) == set(columns) - {"timestamp"} and len(others) > 1
    if wide:
        problem += (f"; a table with one column per asset is not read: give one row per "
                    f"timestamp and asset with columns {', '.join(columns)}")
    raise InputError(label, problem)


def _cast_timestamps(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """Dates, naive datetimes of any unit and ISO strings become Datetime("us")."""
    dtype = frame.schema["timestamp"]
    value = pl.col("timestamp")
    if frame["timestamp"].null_count():
        _reject(frame, value.is_null(), label, "timestamp", "missing timestamp")
    if dtype == pl.Datetime("us"):
        return frame
    if dtype == pl.String:
        return _parse_timestamps(frame, label)
    if dtype == pl.Date or (isinstance(dtype, pl.Datetime) and dtype.time_zone is None):
        return frame.with_columns(value.cast(pl.Datetime("us")))
    if isinstance(dtype, pl.Datetime):
        return frame.with_columns(_naive_utc(value))
    raise InputError(label, f"expected dates or ISO timestamps, got {dtype}", "timestamp")


def _naive_utc(value: pl.Expr) -> pl.Expr:
    """A zoned datetime as the naive UTC datetime of the same instant."""
    return value.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Datetime("us"))


def _parse_timestamps(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """ISO text to Datetime("us"): common layouts first (fast), then polars' inference.

    Text with a UTC offset is read as that instant, converted to naive UTC; a file that
    mixes rows with and without an offset is refused.
    """
    text = pl.col("timestamp")
    zoned = frame.select(text.str.contains(UTC_OFFSET)).to_series()
    if zoned.any():
        mixed = zoned != zoned[0]
        _reject(frame, mixed, label, "timestamp", "mixes timestamps with and without a UTC "
                "offset (give every row an offset, or none)", show="timestamp")
        parsed = frame.select(_naive_utc(text.str.to_datetime(time_unit="us", strict=False,
                                                               time_zone="UTC"))).to_series()
        _reject(frame, parsed.is_null(), label, "timestamp", "not a date or ISO timestamp",
                show="timestamp")
        return frame.with_columns(parsed)
    known = pl.coalesce(
        [text.str.to_datetime(layout, time_unit="us", strict=False) for layout in ISO_LAYOUTS]
    )
    parsed = frame.select(known).to_series()
    if parsed.null_count():
        dates, ambiguous = numeric_dates(frame["timestamp"])
        _reject(frame, ambiguous, label, "timestamp", AMBIGUOUS_DATES, show="timestamp")
        parsed = parsed.fill_null(dates)
    if parsed.null_count():
        inferred = frame.select(text.str.to_datetime(time_unit="us", strict=False)).to_series()
        parsed = parsed.fill_null(inferred)
    _reject(frame, parsed.is_null(), label, "timestamp", "not a date or ISO timestamp",
            show="timestamp")
    return frame.with_columns(parsed)


NUMERIC_DATE = r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}"
DATE_TIMES = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S%.f")
AMBIGUOUS_DATES = ("dates read both month-first and day-first (no day above 12 says which); "
                   "write them as ISO dates (2020-01-31)")


def numeric_dates(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The module's date rule on text: (timestamps of the rows written as numeric dates,
    month-first or day-first, whichever reads every such row, else whichever reads more;
    null elsewhere and where that order does not read; and the rows to refuse with
    `AMBIGUOUS_DATES`, those that read differently both ways when both read every row)."""
    frame = text.str.strip_chars().alias("text").to_frame()
    numeric = frame.select(pl.col("text").str.contains(NUMERIC_DATE)).to_series()
    if not numeric.any():
        nothing = pl.Series(text.name, [None] * len(text), pl.Datetime("us"))
        return nothing, pl.Series([False] * len(text))

    def read(order: str) -> pl.Series:
        layouts = [f"{order}{time}".replace("/", separator)
                   for separator in "/.-" for time in DATE_TIMES]
        value = pl.col("text")
        return frame.select(pl.when(numeric).then(pl.coalesce(
            value.str.to_datetime(layout, time_unit="us", strict=False)
            for layout in layouts))).to_series().alias(text.name)

    month_first, day_first = read("%m/%d/%Y"), read("%d/%m/%Y")
    misses = [reading.filter(numeric).null_count() for reading in (month_first, day_first)]
    ambiguous = (month_first != day_first).fill_null(False)
    if misses != [0, 0]:
        ambiguous = pl.Series([False] * len(text))
    return (month_first if misses[0] <= misses[1] else day_first), ambiguous


def _cast_assets(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """Text, categorical or integer asset names become String; empty names are rejected."""
    dtype = frame.schema["asset"]
    named = dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)
    if not (named or dtype.is_integer()):
        raise InputError(label, f"expected asset names, got {dtype}", "asset")
    if dtype != pl.String:
        frame = frame.with_columns(pl.col("asset").cast(pl.String))
    empty = pl.col("asset").is_null() | (pl.col("asset").str.len_bytes() == 0)
    _reject(frame, empty, label, "asset", "missing asset name")
    return frame


def _cast_number(frame: pl.DataFrame, column: str, label: str) -> pl.DataFrame:
    """Numbers and numeric text become Float64; text that is not a number is rejected; a
    column of nothing but empty cells (dtype Null) is empty numbers."""
    dtype = frame.schema[column]
    if dtype == pl.Null:
        return frame.with_columns(pl.col(column).cast(pl.Float64))
    if dtype == pl.String:
        parsed = frame.select(pl.col(column).cast(pl.Float64, strict=False)).to_series()
        _reject(frame, parsed.is_null() & frame[column].is_not_null(), label, column,
                "not a number", show=column)
        return frame.with_columns(parsed)
    if not dtype.is_numeric():
        raise InputError(label, f"expected numbers, got {dtype}", column)
    if dtype == pl.Float64:
        return frame
    return frame.with_columns(pl.col(column).cast(pl.Float64))


def _key_flags() -> dict[str, pl.Expr]:
    """Per row: its timestamp sorts back, its asset sorts back, it repeats the row above."""
    ts, asset = pl.col("timestamp"), pl.col("asset")
    same_ts = ts == ts.shift(1)
    return {
        "back_ts": (ts < ts.shift(1)).fill_null(False),
        "back_asset": (same_ts & (asset < asset.shift(1))).fill_null(False),
        "repeat": (same_ts & (asset == asset.shift(1))).fill_null(False),
    }


def _check_keys(frame: pl.DataFrame, label: str) -> None:
    """One row per (timestamp, asset), in any order (`_in_key_order` sorts them later)."""
    flags = frame.select(**_key_flags())
    back = flags["back_ts"] | flags["back_asset"]
    if back.any():
        duplicated = frame.select(pl.struct("timestamp", "asset").is_duplicated()).to_series()
    else:
        duplicated = flags["repeat"] | flags["repeat"].shift(-1, fill_value=False)
    if duplicated.any():
        first = frame.filter(duplicated).row(0, named=True)
        _raise(frame, duplicated, label, None, "duplicate (timestamp, asset) rows for "
               f"({_show(first['timestamp'])}, {_show(first['asset'])})")


def _in_key_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows sorted by (timestamp, asset); as they are when they already are (checked
    after the value checks, so that their messages name the rows as in the file)."""
    flags = _key_flags()
    if frame.select((flags["back_ts"] | flags["back_asset"]).any()).item():
        return frame.sort("timestamp", "asset")
    return frame


def _check_leverage(frame: pl.DataFrame, label: str, gross: bool) -> None:
    """Per decision, the sum of weights (of |weights| when gross) is at most 1."""
    exposure = pl.col("weight").abs() if gross else pl.col("weight")
    totals = (
        frame.group_by("timestamp")
        .agg(exposure.sum().alias("total"))
        .filter(pl.col("total") > 1 + LEVERAGE_TOLERANCE)
        .sort("timestamp")
    )
    if totals.height == 0:
        return
    when, total = totals.row(0)
    kind = "gross weights" if gross else "weights"
    _raise(frame, frame["timestamp"] == when, label, "weight",
           f"{kind} at {_show(when)} sum to {total:.10g}, above 1 (leverage needs allow_leverage)")


def _price_keys(prices: Source) -> pl.DataFrame:
    """The prices' timestamp and asset columns, loading and validating them unless normalized."""
    normalized = isinstance(prices, pl.DataFrame) and (
        prices.schema.get("timestamp") == pl.Datetime("us")
        and prices.schema.get("asset") == pl.String
    )
    return (prices if normalized else load_prices(prices)).select("timestamp", "asset")


Check = tuple[pl.Expr, str, str, str | None]  # (bad rows, column, problem, column shown)
KEYS = "keys"  # the check that keys are unique and sorted
CHECK_SLICE = 1 << 20  # rows `_reject_first` checks at a time


def _reject_first(frame: pl.DataFrame, label: str, checks: list[Check | str]) -> None:
    """Run `checks` in one pass and raise for the first that fails, as `_reject` words it;
    the check `KEYS` is `_check_keys`.

    The pass reads `CHECK_SLICE` rows at a time, each slice overlapping the one before by a
    row (for the checks that compare a row with the row above), so the checks' temporary
    columns stay small whatever the table's length.
    """
    flags = [(pl.any_horizontal(*_key_flags().values()) if check == KEYS
              else check[0].fill_null(True)).any().alias(str(i))
             for i, check in enumerate(checks)]
    failing = [False] * len(checks)
    for start in range(0, max(frame.height, 1), CHECK_SLICE):
        part = frame.slice(max(start - 1, 0), CHECK_SLICE + (start > 0))
        failing = [a or b for a, b in zip(failing, part.select(flags).row(0), strict=True)]
    for check, fails in zip(checks, failing, strict=True):
        if fails and check == KEYS:
            _check_keys(frame, label)
        elif fails:
            _reject(frame, *check[:1], label, *check[1:])


def _reject(
    frame: pl.DataFrame, bad: pl.Expr | pl.Series, label: str, column: str, problem: str,
    show: str | None = None,
) -> None:
    """Raise when any row is `bad` (null counts as bad), quoting the first `show` value."""
    flags = (bad if isinstance(bad, pl.Series) else frame.select(bad).to_series()).fill_null(True)
    if not flags.any():
        return
    if show is not None:
        problem += f", found {_show(frame.filter(flags)[show][0])}"
    _raise(frame, flags, label, column, problem)


def _raise(
    frame: pl.DataFrame, flags: pl.Series, label: str, column: str | None, problem: str
) -> None:
    rows = flags.arg_true() + 1
    raise InputError(label, problem, column, rows.head(5).to_list(), total=rows.len())


def _show(value: object) -> str:
    """A value as it reads in a one-line message."""
    if value is None:
        return "null"
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _gate(frame: pl.DataFrame, model: str, label: str) -> pl.DataFrame:
    """Final check of columns and dtypes against the pandera model named `model`.

    A frame in the layout the model declares (`schemas.declared.layout`, read without
    importing pandera) is what the model checks at this depth, and passes; any other goes
    through the model. The value checks (positive prices, unique sorted keys, ...) were all
    made above, with row numbers in the messages; repeating them through pandera would cost
    more memory than the backtest (1.5 GB at 10M bars). Artifacts are validated in full
    where they are written.
    """
    module = MODEL_MODULES[model]
    if frame.schema == layout(module, model):
        return frame
    import importlib

    import pandera.errors
    from pandera.config import ValidationDepth, config_context

    schema = getattr(importlib.import_module(module), model)
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
            return schema.validate(frame)
    except pandera.errors.SchemaError as error:
        problem = f"fails the {model} schema: {_first_line(error)}"
        raise InputError(label, problem) from None


MODEL_MODULES = {"Bars": "schemas.market", "Weights": "schemas.market",
                 "OrderRows": "schemas.market", "Scores": "schemas.signals"}


def _first_line(error: Exception) -> str:
    """The first line of an error's text, or its type when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
