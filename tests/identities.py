"""The ledger identities every backtest must satisfy on every bar, as one assertion."""

from __future__ import annotations

import numpy as np
import polars as pl


def add_shares(before: float, change: float) -> float:
    """`before + change` under the ledger's zero rule (docs/semantics.md, "Sizing at fill
    time", step 5): a sum within `max(1e-9 × max(|a|, |b|), 1e-12)` of zero is exactly 0."""
    after = before + change
    if abs(after) <= max(1e-9 * max(abs(before), abs(change)), 1e-12):
        return 0.0
    return after


def cumulative_positions(fills: pl.DataFrame, timestamps: pl.Series) -> pl.DataFrame:
    """Positions rebuilt from fills alone: per asset, the fills added one by one in journal
    order under the ledger's zero rule; per bar, the position after its last fill; rows
    whose position is exactly zero are dropped (as the ledger's positions table does)."""
    held: dict[str, float] = {}
    rows: dict[tuple, float] = {}
    for timestamp, asset, quantity in fills.select("timestamp", "asset", "quantity").rows():
        held[asset] = add_shares(held.get(asset, 0.0), quantity)
        rows[(timestamp, asset)] = held[asset]
    after = pl.DataFrame(
        [(t, a, q) for (t, a), q in rows.items()], orient="row",
        schema={"timestamp": fills.schema["timestamp"], "asset": pl.String,
                "quantity": pl.Float64})
    grid = pl.DataFrame({"timestamp": timestamps}).join(
        after.select("asset").unique(), how="cross"
    )
    return (
        grid.join(after, on=["timestamp", "asset"], how="left").sort("timestamp")
        .with_columns(pl.col("quantity").forward_fill().over("asset"))
        .filter(pl.col("quantity").is_not_null() & (pl.col("quantity") != 0.0))
        .sort("timestamp", "asset")
    )


def assert_ledger_identities(result, initial_cash: float, last_close: pl.DataFrame) -> None:
    """On every bar: cash = initial − Σ quantity × price − Σ fee; positions = cumulative
    fills; each position marked at the last known close; equity = cash + Σ marked value.

    `last_close` has `timestamp, asset, close` for every bar and asset (forward-filled).
    """
    fills, equity = result.fills, result.equity
    flows = fills.group_by("timestamp").agg(
        (-(pl.col("quantity") * pl.col("price")) - pl.col("fee")).sum().alias("flow")
    )
    expected_cash = (
        equity.select("timestamp").join(flows, on="timestamp", how="left")
        .sort("timestamp")["flow"].fill_null(0.0).cum_sum() + initial_cash
    )
    scale = initial_cash + fills["quantity"].abs().dot(fills["price"]) + fills["fee"].sum()
    assert np.allclose(equity["cash"], expected_cash, rtol=0, atol=1e-9 * scale)

    rebuilt = cumulative_positions(fills, equity["timestamp"])
    positions = result.positions.sort("timestamp", "asset")
    assert positions.select("timestamp", "asset").equals(rebuilt.select("timestamp", "asset"))
    assert np.allclose(positions["quantity"], rebuilt["quantity"], rtol=1e-9, atol=1e-9)

    marked = positions.join(last_close, on=["timestamp", "asset"], how="left")
    assert np.allclose(marked["market_value"], marked["quantity"] * marked["close"],
                       rtol=1e-12, atol=0)
    value = (equity.select("timestamp").join(
        positions.group_by("timestamp").agg(pl.col("market_value").sum()), on="timestamp",
        how="left").sort("timestamp")["market_value"].fill_null(0.0))
    assert np.allclose(equity["positions_value"], value, rtol=1e-12, atol=1e-9 * scale)
    assert np.allclose(equity["equity"], equity["cash"] + equity["positions_value"],
                       rtol=1e-15, atol=0)


def last_closes(prices: pl.DataFrame) -> pl.DataFrame:
    """`timestamp, asset, close`: each asset's last known close at every timestamp."""
    grid = prices.select("timestamp").unique().join(prices.select("asset").unique(),
                                                     how="cross")
    return (grid.join(prices.select("timestamp", "asset", "close"), on=["timestamp", "asset"],
                      how="left").sort("timestamp")
            .with_columns(pl.col("close").forward_fill().over("asset")))
