"""How a native log is read: the format, column overrides, the asset map, partial fills."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import InputError

KEYS = ("timestamp", "asset", "quantity", "side", "price", "fee", "order", "trigger")
PARTIALS = ("keep", "sum")
PRICE_TOLERANCE = 0.02  # a fill may sit this fraction outside its bar's low-high range


@dataclass(frozen=True)
class LogOptions:
    """`format`: a name of `engine.logs.FORMATS` (None: detect); `columns`: key → column
    for the generic reader (`fee` may be `A+B`); `assets`: a CSV mapping the log's symbols
    to the price table's assets; `partials`: keep every fill or sum those of one order on
    one bar; `price_tolerance`: how far outside its bar's range a fill may be."""

    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    assets: str | None = None
    partials: str = "keep"
    price_tolerance: float = PRICE_TOLERANCE

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(KEYS))
        if unknown:
            raise InputError("--columns", f"unknown key {unknown[0]!r} (use {', '.join(KEYS)})")
        if self.partials not in PARTIALS:
            raise InputError("--partials", f"use {' or '.join(PARTIALS)}, got {self.partials!r}")
        if not self.price_tolerance >= 0:
            raise InputError("--price-tolerance", "must be a non-negative fraction")


def parse_columns(text: str | None) -> dict[str, str]:
    """`key=Name,key=Name` as a dict (the `--columns` flag)."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        key, sep, name = part.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise InputError("--columns", f"expected key=Name, got {part!r}")
        out[key.strip().lower()] = name.strip()
    return out
