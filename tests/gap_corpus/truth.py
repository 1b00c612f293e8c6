"""What is true about a pair, computed from how B was made (never by the analyzer).

Fill logs are compared per (timestamp, asset), as any user would: summed quantity,
volume-weighted price, summed fee and the number of rows, equal within 1e-9 relative (or
1e-9 absolute). A fault's onset is the first fill bar where it changes a fill: the first
bar where the run with every fault differs from the same run without that fault; for a
fault in the books only (a batch booked twice, fees left out of cash) it is the bar of its
first batch. A fault's end is the last batch where it changed that batch's fills, the
batch executed from the same book with and without it.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

KEYS = ["timestamp", "asset"]
REL = ABS = 1e-9


def canonical(fills: pl.DataFrame) -> pl.DataFrame:
    return (fills.group_by(KEYS)
            .agg(pl.col("quantity").sum(),
                 ((pl.col("quantity") * pl.col("price")).sum() / pl.col("quantity").sum())
                 .alias("price"),
                 pl.col("fee").sum(), pl.len().alias("rows"))
            .sort(KEYS))


def divergent(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """The keys where two fill logs differ, sorted."""
    joined = canonical(a).join(canonical(b), on=KEYS, how="full", coalesce=True, suffix="_b")

    def differs(name: str) -> pl.Expr:
        x, y = pl.col(name), pl.col(f"{name}_b")
        return (x - y).abs() > pl.max_horizontal(REL * pl.max_horizontal(x.abs(), y.abs()),
                                                 pl.lit(ABS))

    return joined.filter(
        pl.col("rows").is_null() | pl.col("rows_b").is_null()
        | (pl.col("rows") != pl.col("rows_b"))
        | differs("quantity") | differs("price") | differs("fee")
    ).sort(KEYS)


def first_key(a: pl.DataFrame, b: pl.DataFrame) -> tuple[datetime, str] | None:
    keys = divergent(a, b)
    return None if keys.height == 0 else (keys["timestamp"][0], keys["asset"][0])


def key_differs(a: pl.DataFrame, b: pl.DataFrame, key: tuple[datetime, str]) -> bool:
    def at(fills: pl.DataFrame) -> pl.DataFrame:
        return fills.filter((pl.col("timestamp") == key[0]) & (pl.col("asset") == key[1]))

    return divergent(at(a), at(b)).height > 0
