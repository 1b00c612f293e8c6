"""Summary statistics of one backtest, read from its frozen tables.

Inputs
- `equity`: one row per bar in time order, `timestamp, cash, positions_value, equity`; an
  optional `gross_value` column (Σ |market value|) makes `exposure` gross for long-short
  books, otherwise it uses |positions_value|.
- `fills`: `quantity` (signed shares), `price`, `fee`. `statuses` (optional): how many
  orders ended in each status (`status_counts` of an orders table's `status` column, or
  a tally of the engine's status codes, so that no table is built to count them).
  `trades` (optional): `pnl` and `status` as built by `engine.results.trades`.

Conventions
- Per-bar returns: r[0] = equity[0] / initial_cash − 1, r[t] = equity[t] / equity[t−1] − 1.
- Years = n_bars / periods_per_year; annualizing multiplies a mean by periods_per_year and a
  standard deviation by its square root. Risk-free rate 0.
- Undefined values are NaN, never inf and never an exception: ratios over a zero spread
  (a spread within 1e-9 of the mean |return| counts as zero), the win rate without closed
  trades, counts from a table or column that was not given.
- Values are plain Python floats and ints, ready for JSON (NaN included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import polars as pl

from engine.errors import InputError

REL_TOL = 1e-9
EQUITY_COLUMNS = ("timestamp", "cash", "positions_value", "equity")

METRIC_DESCRIPTIONS: dict[str, str] = {
    "initial_cash": "Cash at the start.",
    "final_equity": "Equity at the close of the last bar.",
    "total_return": "final_equity / initial_cash − 1.",
    "cagr": "Compound annual growth, (final / initial)^(1 / years) − 1, years = "
    "n_bars / periods_per_year; −1 when the final equity is zero or below.",
    "volatility": "Standard deviation (ddof=1) of per-bar returns × √periods_per_year.",
    "sharpe": "Mean / standard deviation of per-bar returns × √periods_per_year "
    "(risk-free 0); NaN when the standard deviation is zero.",
    "sortino": "Mean per-bar return / downside deviation × √periods_per_year, downside "
    "deviation = √mean(min(r, 0)²); NaN when it is zero (no losing bar).",
    "max_drawdown": "Deepest fall from a running peak of equity (initial cash included), as a "
    "fraction ≤ 0, e.g. −0.23.",
    "turnover": "Annualized one-way turnover: Σ |quantity × price| / mean equity / years.",
    "exposure": "Mean over bars of gross market value / equity (|positions_value| without a "
    "gross_value column); bars with equity ≤ 0 are skipped.",
    "total_fees": "Σ fees over all fills.",
    "n_bars": "Bars in the equity curve.",
    "n_fills": "Fills.",
    "n_orders": "Orders placed, whatever became of them (NaN without their statuses).",
    "n_rejected": "Orders with status rejected (NaN without their statuses).",
    "n_trades": "Trade rows, open and closed (NaN without a trades table).",
    "n_closed_trades": "Closed trade rows (NaN without a trades table).",
    "win_rate": "Closed trades with pnl > 0 / closed trades; NaN without closed trades.",
}


def compute_metrics(
    equity: pl.DataFrame,
    fills: pl.DataFrame,
    statuses: Mapping[str, int] | None,
    trades: pl.DataFrame | None,
    initial_cash: float,
    periods_per_year: int = 252,
) -> dict[str, float | int]:
    """Every metric of `METRIC_DESCRIPTIONS`, by name, as plain floats and ints."""
    _check(equity, initial_cash, periods_per_year)
    initial = float(initial_cash)
    curve = equity["equity"].cast(pl.Float64).to_numpy()
    n_bars = len(curve)
    years = n_bars / periods_per_year
    returns = per_bar_returns(curve, initial)
    final = float(curve[-1])

    traded = float((fills["quantity"] * fills["price"]).abs().sum()) if fills.height else 0.0
    n_orders: float | int = math.nan
    n_rejected: float | int = math.nan
    if statuses is not None:
        n_orders = sum(int(count) for count in statuses.values())
        n_rejected = int(statuses.get("rejected", 0))
    n_trades: float | int = math.nan
    n_closed: float | int = math.nan
    win_rate = math.nan
    if trades is not None:
        closed = trades["status"] == "closed"  # counted in place: no copy of the rows
        n_trades, n_closed = trades.height, int(closed.sum())
        if n_closed:
            win_rate = float(((trades["pnl"] > 0) & closed).sum()) / n_closed

    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "initial_cash": initial,
            "final_equity": final,
            "total_return": final / initial - 1.0,
            "cagr": cagr(initial, final, years),
            "volatility": _float(np.std(returns, ddof=1) * math.sqrt(periods_per_year))
            if n_bars > 1 else math.nan,
            "sharpe": sharpe_ratio(returns, periods_per_year),
            "sortino": sortino_ratio(returns, periods_per_year),
            "max_drawdown": max_drawdown(curve, initial),
            "turnover": _float(traded / float(np.mean(curve)) / years),
            "exposure": exposure(equity),
            "total_fees": float(fills["fee"].sum()) if fills.height else 0.0,
            "n_bars": n_bars,
            "n_fills": fills.height,
            "n_orders": n_orders,
            "n_rejected": n_rejected,
            "n_trades": n_trades,
            "n_closed_trades": n_closed,
            "win_rate": win_rate,
        }


def status_counts(statuses: pl.Series) -> dict[str, int]:
    """How many of `statuses` (an orders table's `status` column) are each status."""
    return dict(statuses.value_counts().iter_rows())


def per_bar_returns(curve: np.ndarray, initial_cash: float) -> np.ndarray:
    """Simple returns of each bar, the first one measured from the initial cash."""
    previous = np.concatenate([[initial_cash], curve[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        return curve / previous - 1.0


def cagr(initial: float, final: float, years: float) -> float:
    """Compound annual growth rate; −1 when nothing (or less) is left."""
    if final <= 0:
        return -1.0
    return _float((final / initial) ** (1.0 / years) - 1.0)


def sharpe_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    """Annualized mean / standard deviation (ddof=1) of per-bar returns; NaN if no spread."""
    if len(returns) < 2:
        return math.nan
    spread = float(np.std(returns, ddof=1))
    if _no_spread(spread, returns):
        return math.nan
    return _float(float(np.mean(returns)) / spread * math.sqrt(periods_per_year))


def sortino_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    """Annualized mean / downside deviation √mean(min(r, 0)²); NaN if no bar lost."""
    if len(returns) == 0:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if _no_spread(downside, returns):
        return math.nan
    return _float(float(np.mean(returns)) / downside * math.sqrt(periods_per_year))


def max_drawdown(curve: np.ndarray, initial_cash: float) -> float:
    """Deepest fall from a running peak (the initial cash is the first peak), ≤ 0."""
    path = np.concatenate([[initial_cash], curve])
    peak = np.maximum.accumulate(path)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _float(min(float(np.min(path / peak - 1.0)), 0.0))


def exposure(equity: pl.DataFrame) -> float:
    """Mean gross market value / equity over the bars with positive equity."""
    column = "gross_value" if "gross_value" in equity.columns else "positions_value"
    gross = np.abs(equity[column].cast(pl.Float64).to_numpy())
    value = equity["equity"].cast(pl.Float64).to_numpy()
    solvent = value > 0
    if not solvent.any():
        return math.nan
    return _float(float(np.mean(gross[solvent] / value[solvent])))


def _no_spread(spread: float, returns: np.ndarray) -> bool:
    return not spread > REL_TOL * float(np.mean(np.abs(returns)))


def _float(value: float) -> float:
    """A plain float, NaN in place of ±inf."""
    value = float(value)
    return value if math.isfinite(value) or math.isnan(value) else math.nan


def _check(equity: pl.DataFrame, initial_cash: float, periods_per_year: int) -> None:
    missing = [c for c in EQUITY_COLUMNS if c not in equity.columns]
    if missing:
        raise InputError("equity", f"missing columns {missing}")
    if equity.height == 0:
        raise InputError("equity", "no bars")
    if not initial_cash > 0:
        raise ValueError(f"initial_cash must be positive, got {initial_cash}")
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
