"""Canonical fill-level comparison of two fill logs, matched on (timestamp, asset).

Engines disagree on what a trade is, so fills are compared: each side's fills are summed
per (timestamp, asset) (price volume-weighted, fees summed, rows counted), and the two
sides are joined. Tolerances are explicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

KEYS = ["timestamp", "asset"]


@dataclass(frozen=True)
class Tolerance:
    """When two numbers count as equal: |a − b| ≤ max(rel × max(|a|, |b|), abs)."""

    rel: float = 1e-9
    abs: float = 1e-9

    def same(self, a: float, b: float) -> bool:
        return abs(a - b) <= max(self.rel * max(abs(a), abs(b)), self.abs)

    def differs(self, a: pl.Expr, b: pl.Expr) -> pl.Expr:
        scale = pl.max_horizontal(a.abs(), b.abs()) * self.rel
        return ((a - b).abs() > pl.max_horizontal(scale, pl.lit(self.abs))).fill_null(True)


def canonical(fills: pl.DataFrame) -> pl.DataFrame:
    """One row per (timestamp, asset): summed quantity, VWAP price, summed fee, row count."""
    return (
        fills.group_by(KEYS, maintain_order=True)
        .agg(
            pl.col("quantity").sum(),
            ((pl.col("quantity") * pl.col("price")).sum() / pl.col("quantity").sum())
            .alias("price"),
            pl.col("fee").sum(),
            pl.len().cast(pl.Int64).alias("rows"),
        )
        .sort(KEYS)
    )


def join_sides(a: pl.DataFrame, b: pl.DataFrame, tolerance: Tolerance) -> pl.DataFrame:
    """Both sides per key with differences and a `divergent` flag (sorted by key)."""
    joined = canonical(a).join(canonical(b), on=KEYS, how="full", coalesce=True, suffix="_b")
    joined = joined.rename({"quantity": "quantity_a", "price": "price_a", "fee": "fee_a",
                            "rows": "rows_a"})
    differs = [tolerance.differs(pl.col(f"{c}_a").fill_null(0.0), pl.col(f"{c}_b").fill_null(0.0))
               for c in ("quantity", "price", "fee")]
    return joined.with_columns(
        (pl.col("quantity_b").fill_null(0.0) - pl.col("quantity_a").fill_null(0.0))
        .alias("quantity_diff"),
        (pl.col("price_b") - pl.col("price_a")).alias("price_diff"),
        (pl.col("fee_b").fill_null(0.0) - pl.col("fee_a").fill_null(0.0)).alias("fee_diff"),
        (differs[0] | differs[1] | differs[2]
         | pl.col("quantity_a").is_null() | pl.col("quantity_b").is_null()
         | (pl.col("rows_a").fill_null(0) != pl.col("rows_b").fill_null(0)))
        .alias("divergent"),
    ).sort(KEYS)


def mismatches(fills: pl.DataFrame, expected: pl.DataFrame, tolerance: Tolerance) -> pl.DataFrame:
    """Keys where `fills` differ from `expected` (sorted)."""
    return join_sides(fills, expected, tolerance).filter(pl.col("divergent"))
