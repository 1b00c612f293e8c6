"""The one fill comparison: two fill logs matched on (timestamp, asset).

Engines disagree on what a trade is, so fills are compared. Each side's fills are summed per
(timestamp, asset): quantity summed, price volume-weighted, fees summed, rows counted. The two
sides are joined on that key, and a key is divergent when
- it has fills on one side only,
- its row counts differ (one fill of 10 against fills of 4 and 6 is a different execution,
  even though the sums agree: the gap analysis names it, e.g. `duplicate_fill`), or
- quantity, price or fee differ beyond the tolerance: |a − b| > max(rel × max(|a|, |b|), abs),
  with rel = abs = 1e-9 by default for all three fields (an absolute floor, so a fee of 0
  against 1e-13 is the same fee).

The nightly parity checks (`engine.results.checks.fill_parity`), the peers' parity and the
trade-gap analysis all judge fills through `join_sides`, so they give one answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

KEYS = ["timestamp", "asset"]
FIELDS = ("quantity", "price", "fee")


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


DEFAULT_TOLERANCE = Tolerance()


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
               for c in FIELDS]
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


def what_differs(row: dict, tolerance: Tolerance) -> str:
    """One joined row's divergence in words: a missing side, the row counts, or the fields."""
    if row["quantity_b"] is None:
        return "missing on the second side"
    if row["quantity_a"] is None:
        return "missing on the first side"
    fields = [f"{c} {row[c + '_a']:.10g} vs {row[c + '_b']:.10g}" for c in FIELDS
              if not tolerance.same(row[c + "_a"], row[c + "_b"])]
    if row["rows_a"] != row["rows_b"]:
        fields.append(f"{row['rows_a']} vs {row['rows_b']} fills")
    return ", ".join(fields)
