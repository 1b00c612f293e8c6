"""Read a native log: open the file, choose its format, place its fills on the bars."""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import polars as pl

from engine.errors import InputError
from engine.logs import lean
from engine.logs.backtrader import BACKTRADER
from engine.logs.ib import IB_FLEX, RECORDS
from engine.logs.nautilus import NAUTILUS, NAUTILUS_ORDERS
from engine.logs.options import LogOptions
from engine.logs.own import TRADEGAP, by_columns
from engine.logs.placement import place
from engine.logs.spec import LogFormat
from engine.logs.vectorbt import VECTORBT
from engine.logs.zipline import ZIPLINE

# in detection order: the first whose columns are all present is taken
FORMATS = {f.name: f for f in (TRADEGAP, VECTORBT, NAUTILUS, NAUTILUS_ORDERS, ZIPLINE,
                               BACKTRADER, lean.LEAN_TRADES, IB_FLEX, lean.LEAN,
                               lean.LEAN_EVENTS)}


@dataclass(frozen=True)
class NativeLog:
    """A log's fills (`timestamp, asset, quantity, price, fee, order, trigger`), the
    format they were read as, and what that format leaves out."""

    fills: pl.DataFrame
    format: LogFormat
    notes: list[str]


def read_log(
    source: str | Path | pl.DataFrame, prices: pl.DataFrame,
    options: LogOptions | None = None, name: str | None = None,
) -> NativeLog:
    """A native log's fills on the bars of `prices` (loaded prices: naive UTC timestamps).

    Bad logs raise `InputError` naming the file, the format tried, the column and rows.
    """
    options = options or LogOptions()
    frame, label, kind = _open(source, name)
    chosen = _choose(frame, kind, options, label)
    if "row" not in frame.columns:
        frame = frame.with_row_index("row", 1)
    try:
        prepared = chosen.prepare(frame)
    except pl.exceptions.PolarsError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(label, f"read as {chosen.title}: {first}") from None
    except InputError as error:
        if error.source != "--columns":
            raise
        raise InputError(label, f"read as {chosen.title}: {error.problem}",
                         error.column) from None
    fills = place(prepared, prices, options, chosen, label)
    return NativeLog(fills, chosen, [chosen.notes] if chosen.notes else [])


def _open(source: str | Path | pl.DataFrame, name: str | None
          ) -> tuple[pl.DataFrame, str, str]:
    """The raw frame, the label for messages and its kind ('table' or a LEAN JSON's)."""
    if isinstance(source, pl.DataFrame):
        return source, name or "fills", "table"
    path = Path(source)
    label = name or path.name
    if not path.is_file():
        raise InputError(label, "no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path), label, "table"
        if suffix == ".json":
            document = json.loads(path.read_text())
            if not lean.is_lean(document):
                raise InputError(label, "a JSON log must be a LEAN result (with orders) or "
                                        "a LEAN order-events list")
            kind = "lean:orders" if isinstance(document, dict) else "lean:events"
            return lean.from_json(document, label), label, kind
        return _read_csv(path), label, "table"
    except (pl.exceptions.PolarsError, json.JSONDecodeError, UnicodeDecodeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(label, f"cannot read the file: {first}") from None


def _read_csv(path: Path) -> pl.DataFrame:
    """A CSV as text columns; IB's header and trailer records (BOF, BOS, ...) skipped."""
    lines = path.read_text().splitlines()
    kept = [line for line in lines
            if line.split(",", 1)[0].strip().strip('"') not in RECORDS]
    return pl.read_csv(StringIO("\n".join(kept) + "\n"), infer_schema=False)


def _choose(frame: pl.DataFrame, kind: str, options: LogOptions, label: str) -> LogFormat:
    """The format named, given by columns, or detected from the columns (or JSON kind)."""
    if options.columns:
        if options.format not in (None, "columns"):
            raise InputError(label, "--columns reads a log column by column: drop --format "
                                    f"{options.format} or the --columns")
        return by_columns(options.columns)
    present = {c.strip().lower() for c in frame.columns} | {kind}
    if options.format is not None:
        chosen = FORMATS.get(options.format)
        if chosen is None:
            raise InputError(label, f"unknown format {options.format!r} (use "
                                    f"{', '.join(FORMATS)}, or --columns)")
        missing = sorted(chosen.signature - present)
        if missing:
            raise InputError(label, f"read as {chosen.title}: no column {missing[0]!r}",
                             missing[0])
        return chosen
    for candidate in FORMATS.values():
        if candidate.signature <= present:
            return candidate
    shown = ", ".join(frame.columns[:12]) + (", ..." if frame.width > 12 else "")
    raise InputError(label, f"no known log format has these columns ({shown}): name one "
                            f"with --format ({', '.join(FORMATS)}) or map them with "
                            "--columns timestamp=...,asset=...,quantity=...,price=...")
