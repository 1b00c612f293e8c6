"""Derive a backtest's tables from its primary record: the fills (plus equity and orders).

Used for any source of fills (the reference, peers) so that every backtest artifact has the
same tables as the engine's: fills, orders, positions, equity, trades, and metrics.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.data.market import Market
from engine.results.metrics import compute_metrics, status_counts
from engine.results.trades import build_trades

ORDER_COLUMNS = {
    "order_id": pl.Int64, "created": pl.Datetime("us"), "asset": pl.String, "kind": pl.String,
    "amount": pl.Float64, "status": pl.String, "reason": pl.String,
    "filled_at": pl.Datetime("us"), "filled_quantity": pl.Float64,
}


def positions_from_fills(fills: pl.DataFrame, market: Market) -> pl.DataFrame:
    """Non-zero holdings at every bar: cumulative fills, marked at the last known close."""
    held = np.zeros((market.n_bars, market.n_assets))
    if fills.height:
        rows = market.bar_index(fills["timestamp"])
        cols = market.asset_index(fills["asset"])
        np.add.at(held, (rows, cols), fills["quantity"].to_numpy())
        np.cumsum(held, axis=0, out=held)
        held[np.abs(held) <= 1e-9 * np.abs(held).max()] = 0.0
    bars, assets = np.nonzero(held)
    quantity = held[bars, assets]
    return pl.DataFrame({
        "timestamp": market.timestamps.gather(bars),
        "asset": market.assets.gather(assets),
        "quantity": quantity,
        "market_value": quantity * market.last_close[bars, assets],
    })


def equity_from_fills(fills: pl.DataFrame, market: Market, initial_cash: float
                      ) -> pl.DataFrame:
    """Cash, positions value and equity after every bar, from fills and last closes alone."""
    held = np.zeros((market.n_bars, market.n_assets))
    flow = np.zeros(market.n_bars)
    if fills.height:
        rows = market.bar_index(fills["timestamp"])
        cols = market.asset_index(fills["asset"])
        quantity = fills["quantity"].to_numpy()
        np.add.at(held, (rows, cols), quantity)
        np.add.at(flow, rows, -(quantity * fills["price"].to_numpy()) - fills["fee"].to_numpy())
        np.cumsum(held, axis=0, out=held)
    cash = initial_cash + np.cumsum(flow)
    value = np.nansum(held * np.nan_to_num(market.last_close), axis=1)
    return pl.DataFrame({"timestamp": market.timestamps, "cash": cash,
                         "positions_value": value, "equity": cash + value})


def derive_tables(
    fills: pl.DataFrame,
    equity: pl.DataFrame,
    market: Market,
    initial_cash: float,
    orders: pl.DataFrame | None = None,
    periods_per_year: int = 252,
) -> dict[str, pl.DataFrame]:
    """fills, orders, positions, equity, trades and a one-row metrics table."""
    last = pl.DataFrame({"asset": market.assets, "close": market.last_close[-1]})
    trades = build_trades(fills, last.drop_nans(), market.timestamps[-1])
    orders = orders if orders is not None else pl.DataFrame(schema=ORDER_COLUMNS)
    metrics = compute_metrics(equity, fills, status_counts(orders["status"]), trades,
                              initial_cash=initial_cash, periods_per_year=periods_per_year)
    return {
        "fills": fills,
        "orders": orders,
        "positions": positions_from_fills(fills, market),
        "equity": equity,
        "trades": trades,
        "metrics": pl.DataFrame([metrics]),
    }
