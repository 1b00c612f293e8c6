"""Checks over a backtest's tables: the ledger identities and fill parity.

Each returns plain values (problems found, gaps measured) for the caller to report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.results.compare import DEFAULT_TOLERANCE, FIELDS, Tolerance, join_sides, what_differs

REL = 1e-9


def ledger_problems(tables: dict[str, pl.DataFrame], initial_cash: float) -> list[str]:
    """Where the ledger identities fail, as sentences (empty when all hold).

    equity = cash + positions_value on every bar; cash = initial − Σ quantity × price −
    Σ fee; positions = cumulative fills, each marked to give positions_value.
    """
    fills, equity, positions = tables["fills"], tables["equity"], tables["positions"]
    problems = []
    scale = initial_cash + float((fills["quantity"].abs() * fills["price"]).sum())
    gap = (equity["equity"] - equity["cash"] - equity["positions_value"]).abs().max() or 0.0
    if gap > REL * scale:
        problems.append(f"equity differs from cash + positions value by up to {gap:.3g}")

    flows = fills.group_by("timestamp").agg(
        (-(pl.col("quantity") * pl.col("price")) - pl.col("fee")).sum().alias("flow"))
    expected = (equity.select("timestamp").join(flows, on="timestamp", how="left")
                .sort("timestamp")["flow"].fill_null(0.0).cum_sum() + initial_cash)
    gap = float(np.max(np.abs(equity.sort("timestamp")["cash"].to_numpy() - expected.to_numpy()),
                       initial=0.0))
    if gap > REL * scale:
        problems.append(f"cash differs from initial cash − Σ fills − Σ fees by up to {gap:.3g}")

    final = positions.filter(pl.col("timestamp") == equity["timestamp"].max())
    net = fills.group_by("asset").agg(pl.col("quantity").sum())
    both = net.join(final.select("asset", "quantity"), on="asset", how="full", coalesce=True,
                    suffix="_held").fill_null(0.0)
    gap = float((both["quantity"] - both["quantity_held"]).abs().max() or 0.0)
    if gap > 1e-9 * max(1.0, float(both["quantity"].abs().max() or 0.0)):
        problems.append(f"final positions differ from cumulative fills by up to {gap:.3g} shares")

    value = positions.group_by("timestamp").agg(pl.col("market_value").sum())
    marked = (equity.select("timestamp", "positions_value").join(value, on="timestamp",
                                                                  how="left")
              .fill_null(0.0))
    gap = float((marked["positions_value"] - marked["market_value"]).abs().max() or 0.0)
    if gap > REL * scale:
        problems.append(f"positions value differs from Σ marked positions by up to {gap:.3g}")
    return problems


@dataclass(frozen=True)
class Parity:
    """How two fill logs compare per (timestamp, asset), judged by `compare.join_sides`."""

    fills_a: int
    fills_b: int
    matched: int
    max_gap: dict[str, float]
    first_mismatch: dict | None
    final_equity_gap: float
    tolerance: Tolerance = DEFAULT_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None and self.final_equity_gap <= self.tolerance.rel

    def summary(self) -> str:
        if self.ok:
            worst = max(self.max_gap.values(), default=0.0)
            return (f"{self.matched} fills match (largest relative gap {worst:.1e}); "
                    f"final equity gap {self.final_equity_gap:.1e}")
        where = self.first_mismatch or {}
        return (f"{self.fills_a} against {self.fills_b} fills; first mismatch at "
                f"{where.get('timestamp')} {where.get('asset')}: {where.get('what')}; "
                f"final equity gap {self.final_equity_gap:.1e}")


def fill_parity(
    a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame], tolerance: Tolerance = DEFAULT_TOLERANCE
) -> Parity:
    """Fills compared per (timestamp, asset) by the one fill comparison (`join_sides`: row
    counts, quantity, price and fee to `tolerance`), and the final equities to `tolerance.rel`."""
    joined = join_sides(a["fills"], b["fills"], tolerance)
    gaps = {}
    for col in FIELDS:
        scale = pl.max_horizontal(pl.col(f"{col}_a").abs(), pl.col(f"{col}_b").abs(),
                                  pl.lit(1e-12))
        gap = (pl.col(f"{col}_a") - pl.col(f"{col}_b")).abs() / scale
        gaps[col] = float(joined.select(gap.max()).item() or 0.0)
    divergent = joined.filter(pl.col("divergent"))
    first = None
    if divergent.height:
        row = divergent.row(0, named=True)
        first = {"timestamp": row["timestamp"], "asset": row["asset"],
                 "what": what_differs(row, tolerance)}
    ea, eb = float(a["equity"]["equity"][-1]), float(b["equity"]["equity"][-1])
    return Parity(a["fills"].height, b["fills"].height, joined.height - divergent.height, gaps,
                  first, abs(ea - eb) / max(abs(ea), abs(eb), 1e-12), tolerance)
