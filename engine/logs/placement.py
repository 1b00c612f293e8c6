"""Place raw fills on the price table: sides, times to bars, symbols to assets, checks.

Rules (docs/explain.md):
- A side column ('BUY'/'SELL', 'B'/'S', 'BOT'/'SLD', any case) gives the direction of an
  unsigned quantity. A buy with a negative quantity is an error, and so is a sell with a
  positive one in a log whose quantities are signed (it has negative ones).
- Times: timezone-aware times are taken in UTC, naive ones as they are. On daily (or
  coarser) bars a fill belongs to the bar of its calendar date (a fill at 09:31, or
  zipline's 21:00 UTC session close, on a bar's date is that bar's); on intraday bars to
  the last bar at or before it, less than one bar interval (the median spacing) earlier.
- Symbols: the `--assets` map first, then the name as it is, then the ticker inside
  zipline's 'Equity(0 [AAPL])', the part before an exchange suffix ('AAPL.XNAS',
  'AAPL US'), and the part after an exchange prefix ('NASDAQ:AAPL').
- Partial fills: kept (the analysis sums a bar's fills per asset), or with `sum` the fills
  of one order on one bar summed at their volume-weighted price.
- Checks against the bar: the asset must have a bar there; when nearly all fills sit at
  one constant multiple of their bar's close (beyond ×1.5 or ÷1.5) the log is refused as a
  scale mismatch, naming the factor; any fill more than `price_tolerance` outside its
  bar's low–high range is refused, naming the rows.
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl

from engine.data.loading import AMBIGUOUS_DATES, FILL_COLUMNS, load_fills, numeric_dates
from engine.errors import InputError
from engine.logs.options import LogOptions
from engine.logs.spec import NUMBERS, LogFormat

BUY = {"BUY", "B", "BOT", "BOUGHT", "LONG", "0"}
SELL = {"SELL", "S", "SLD", "SOLD", "SHORT", "SELL_SHORT", "1"}
TIME_FORMATS = ("%Y%m%d %H%M%S", "%Y%m%d %H:%M:%S", "%Y-%m-%d %H%M%S", "%Y%m%d",
                "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f")
SCALE_SHARE = 0.9  # fills at one multiple of their close that make a scale mismatch
SCALE_SPREAD = 0.1  # how near that multiple they must be (relative)
NICE_FACTORS = (10.0, 100.0, 1000.0, 0.1, 0.01, 0.001)
SUFFIX = re.compile(r"^([^.\s:]+(?:\.[A-Z])?)[.\s]")  # 'AAPL.XNAS', 'AAPL US', 'BRK.B.XNYS'


def place(raw: pl.DataFrame, prices: pl.DataFrame, options: LogOptions, fmt: LogFormat,
          label: str) -> pl.DataFrame:
    """Raw fills as the analysis's fill table, every row checked against its bar."""
    fail = _Failer(label, fmt)
    if raw.height == 0:
        raise InputError(label, f"read as {fmt.title}: no fills")
    for key in NUMBERS:
        fail(raw, pl.col(f"{key}_text").is_not_null() & pl.col(key).is_null(), key,
             "not a number", show=f"{key}_text")
    for key in ("time", "symbol", "quantity", "price"):
        fail(raw, pl.col(key).is_null(), key, "missing")
    raw = raw.drop(f"{key}_text" for key in NUMBERS)
    q, p, f = pl.col("quantity"), pl.col("price"), pl.col("fee")
    fail(raw, ~q.is_finite() | (q == 0), "quantity", "quantity must be a non-zero number",
         show="quantity")
    fail(raw, ~p.is_finite() | (p <= 0), "price", "price must be a positive number",
         show="price")
    fail(raw, f.is_not_null() & (~f.is_finite() | (f < 0)), "fee",
         "fee must be a non-negative cost", show="fee")
    frame = raw.with_columns(f.fill_null(0.0))
    frame = _signed(frame, fail)
    frame = frame.with_columns(time=_times(frame["time"], fail, frame))
    frame = _on_bars(frame, prices, fail)
    frame = _assets(frame, prices, options, fail)
    if options.partials == "sum":
        frame = _summed(frame)
    frame = _checked(frame, prices, options.price_tolerance, fail)
    frame = frame.sort("timestamp", maintain_order=True)
    fills = load_fills(frame.select(FILL_COLUMNS), prices, name=f"{label} (read as "
                       f"{fmt.title})")
    return fills.with_columns(frame.select("order", "trigger"))


class _Failer:
    """Raises the one-line error for the rows a check flags, naming format and column."""

    def __init__(self, label: str, fmt: LogFormat) -> None:
        self.label, self.fmt = label, fmt

    def __call__(self, frame: pl.DataFrame, bad: pl.Expr, key: str, problem: str,
                 show: str | None = None) -> None:
        flagged = frame.filter(bad.fill_null(True))
        if flagged.height == 0:
            return
        if show is not None:
            problem += f", found {_show(flagged[show][0])}"
        raise InputError(self.label, f"read as {self.fmt.title}: {problem}",
                         self.fmt.column_of(key), flagged["row"].head(5).to_list(),
                         total=flagged.height)


def _show(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _signed(frame: pl.DataFrame, fail: _Failer) -> pl.DataFrame:
    """Quantities signed by the side column where there is one."""
    side = pl.col("side").str.to_uppercase().str.strip_chars()
    buy, sell = side.is_in(list(BUY)), side.is_in(list(SELL))
    given = pl.col("side").is_not_null() & (side != "")
    fail(frame, given & ~buy & ~sell, "side", "side is neither buy nor sell", show="side")
    q = pl.col("quantity")
    signed = bool((frame["quantity"] < 0).any())  # a log of unsigned sizes has none
    fail(frame, given & ((buy & (q < 0)) | (sell & (q > 0) & signed)), "side",
         "the side contradicts the quantity's sign", show="side")
    return frame.with_columns(quantity=pl.when(given & sell).then(-q.abs())
                              .when(given & buy).then(q.abs()).otherwise(q))


def _times(times: pl.Series, fail: _Failer, frame: pl.DataFrame) -> pl.Series:
    """Fill times as naive UTC datetimes (aware ones converted to UTC); numeric dates
    (01/02/2020) by the date rule of `engine.data.loading`."""
    if times.dtype == pl.String:
        dates, ambiguous = numeric_dates(times)
        fail(frame, pl.lit(ambiguous), "time", AMBIGUOUS_DATES, show="time")
        parsed = dates
        if dates.null_count() == dates.len():
            parsed = _parsed(times.str.strip_chars())
        elif dates.null_count():
            rest = _parsed(times.str.strip_chars())
            if isinstance(rest.dtype, pl.Datetime) and rest.dtype.time_zone is not None:
                rest = rest.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            parsed = dates.fill_null(rest)
        fail(frame.with_columns(parsed=parsed), pl.col("parsed").is_null(), "time",
             "not a date or time", show="time")
        times = parsed
    if times.dtype == pl.Date:
        times = times.cast(pl.Datetime("us"))
    if not isinstance(times.dtype, pl.Datetime):
        fail(frame, pl.lit(True), "time", f"not a date or time ({times.dtype})")
    if times.dtype.time_zone is not None:
        times = times.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return times.cast(pl.Datetime("us"))


def _parsed(times: pl.Series) -> pl.Series:
    """Text times in the first format (polars' inference, then TIME_FORMATS) that reads
    a sample of them whole; unreadable ones null."""
    sample = times.drop_nulls().head(200)
    for fmt in (None, *TIME_FORMATS):
        if _as_times(sample, fmt).null_count() == 0:
            return _as_times(times, fmt)
    return _as_times(times, None)


def _as_times(times: pl.Series, fmt: str | None) -> pl.Series:
    try:
        return times.str.to_datetime(fmt, strict=False, time_unit="us")
    except pl.exceptions.ComputeError:  # inference found no format
        return pl.Series(times.name, [None] * times.len(), pl.Datetime("us"))


def _on_bars(frame: pl.DataFrame, prices: pl.DataFrame, fail: _Failer) -> pl.DataFrame:
    """Each fill's bar timestamp (see the module's rule), as `timestamp`."""
    stamps = prices["timestamp"].unique().sort()
    steps = stamps.diff().drop_nulls()
    spacing = steps.median() if steps.len() else dt.timedelta(days=1)
    bars = pl.DataFrame({"timestamp": stamps})
    if spacing >= dt.timedelta(days=1):
        dates = bars.with_columns(date=pl.col("timestamp").dt.date())
        if dates["date"].n_unique() == dates.height:
            placed = frame.with_columns(date=pl.col("time").dt.date()).join(
                dates, on="date", how="left", maintain_order="left").drop("date")
            fail(placed, pl.col("timestamp").is_null(), "time", "a fill on a date with no bar",
                 show="time")
            return placed
    placed = frame.sort("time").join_asof(bars.with_columns(bar=pl.col("timestamp")),
                                          left_on="time", right_on="bar", strategy="backward")
    placed = placed.with_columns(pl.when(pl.col("time") - pl.col("bar") < spacing)
                                 .then(pl.col("timestamp"))).drop("bar")
    placed = frame.join(placed.select("row", "timestamp"), on="row", how="left",
                        maintain_order="left")
    fail(placed, pl.col("timestamp").is_null(), "time", "a fill at a time with no bar",
         show="time")
    return placed


def _assets(frame: pl.DataFrame, prices: pl.DataFrame, options: LogOptions,
            fail: _Failer) -> pl.DataFrame:
    """Each fill's asset of the price table (see the module's rule), as `asset`."""
    known = set(prices["asset"].unique().to_list())
    given = _asset_map(options.assets) if options.assets else {}
    mapping = {}
    for symbol in frame["symbol"].unique().to_list():
        mapping[symbol] = _match(symbol, known, given)
    placed = frame.with_columns(asset=pl.col("symbol").replace_strict(
        mapping, default=None, return_dtype=pl.String))
    hint = " (map it with --assets map.csv)" if not options.assets else \
        f" nor in {options.assets}"
    fail(placed, pl.col("asset").is_null(), "symbol", f"unknown asset{hint}", show="symbol")
    return placed


def _match(symbol: str, known: set[str], given: dict[str, str]) -> str | None:
    if symbol in given:
        return given[symbol] if given[symbol] in known else None
    if symbol in known:
        return symbol
    candidates = []
    inside = re.match(r"^\s*Equity\(\s*\d+\s*\[(.+)\]\s*\)\s*$", symbol)
    if inside:
        candidates.append(inside.group(1))
    suffixed = SUFFIX.match(symbol)
    if suffixed:
        candidates.append(suffixed.group(1))
    candidates.append(symbol.split(".")[0])
    candidates.append(symbol.rsplit(":", 1)[-1])
    return next((c for c in candidates if c in known), None)


def _asset_map(path: str) -> dict[str, str]:
    """`--assets`: a CSV whose first column is the log's symbol, the second the asset."""
    try:
        table = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(path, f"cannot read the asset map: {error}") from None
    if table.width < 2:
        raise InputError(path, "the asset map needs two columns: the log's symbol, the asset")
    symbols, assets = table.columns[:2]
    return dict(zip(table[symbols].str.strip_chars().to_list(),
                    table[assets].str.strip_chars().to_list(), strict=True))


def _summed(frame: pl.DataFrame) -> pl.DataFrame:
    """The fills of one order on one bar summed, at their volume-weighted price."""
    keys = ["timestamp", "asset", "order"]
    q, p = pl.col("quantity"), pl.col("price")
    return frame.group_by(keys, maintain_order=True).agg(
        pl.col("time", "symbol", "side", "trigger", "row").first(),
        ((q * p).sum() / q.sum()).alias("price"), q.sum(), pl.col("fee").sum(),
    ).filter(pl.col("quantity") != 0)


def _checked(frame: pl.DataFrame, prices: pl.DataFrame, tolerance: float, fail: _Failer
             ) -> pl.DataFrame:
    """Every fill on a bar of its asset, at a price its bar could have traded."""
    bars = prices.select("timestamp", "asset", "low", "high", "close")
    joined = frame.join(bars, on=["timestamp", "asset"], how="left", maintain_order="left")
    fail(joined, pl.col("close").is_null(), "symbol", "the asset has no bar at this fill's "
         "time", show="symbol")
    ratio = (joined["price"] / joined["close"])
    factor = float(ratio.median())
    near = ((ratio / factor - 1).abs() <= SCALE_SPREAD).mean()
    if (factor > 1.5 or factor < 1 / 1.5) and near >= SCALE_SHARE:
        nice = next((f for f in NICE_FACTORS if abs(factor / f - 1) <= SCALE_SPREAD), None)
        said = f"×{nice:g}" if nice else f"×{factor:.4g}"
        fail(joined, pl.lit(True), "price",
             f"scale mismatch (rescale the log or the prices): the prices are {said} "
             f"their bars' closes (median ratio {factor:.4g}: cents against dollars, "
             "another unit, an unadjusted split?)")
    low, high, p = pl.col("low"), pl.col("high"), pl.col("price")
    fail(joined, (p < low * (1 - tolerance)) | (p > high * (1 + tolerance)), "price",
         f"price outside its bar's low–high range by more than {tolerance:.1%} "
         "(--price-tolerance)", show="price")
    return frame
