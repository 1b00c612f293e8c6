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


def equity_curve(bar: np.ndarray, column: np.ndarray, quantity: np.ndarray, price: np.ndarray,
                 fee: np.ndarray, close: np.ndarray, initial_cash: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Cash and positions value after every bar from fills as arrays (bar, asset column,
    quantity, price, fee), the positions marked at `close` (bars × assets, 0 where no
    close is known yet): the one mark-to-market of a fill record."""
    held = np.zeros(close.shape)
    flow = np.zeros(close.shape[0])
    np.add.at(held, (bar, column), quantity)
    np.add.at(flow, bar, -(quantity * price) - fee)
    np.cumsum(held, axis=0, out=held)
    return initial_cash + np.cumsum(flow), (held * close).sum(axis=1)


def equity_from_fills(fills: pl.DataFrame, market: Market, initial_cash: float
                      ) -> pl.DataFrame:
    """Cash, positions value and equity after every bar, from fills and last closes alone."""
    if fills.height:
        rows = market.bar_index(fills["timestamp"])
        cols = market.asset_index(fills["asset"])
    else:
        rows = cols = np.empty(0, dtype=np.int64)
    cash, value = equity_curve(rows, cols, *(fills[c].to_numpy() for c in
                                             ("quantity", "price", "fee")),
                               np.nan_to_num(market.last_close), initial_cash)
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
