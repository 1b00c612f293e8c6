"""Metrics read the frozen tables: hand-computed values, invariants, and NaN, not inf."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import BacktestConfig, InputError, run_backtest
from engine.results.artifacts import to_json
from engine.results.metrics import METRIC_DESCRIPTIONS, compute_metrics, status_counts
from tests.builders import calendar, random_universe, top_k_weights

NO_FILLS = pl.DataFrame(schema={"quantity": pl.Float64, "price": pl.Float64, "fee": pl.Float64})


def equity_frame(values, positions_value=None) -> pl.DataFrame:
    values = [float(v) for v in values]
    held = [0.0] * len(values) if positions_value is None else [float(v) for v in positions_value]
    return pl.DataFrame({
        "timestamp": calendar(len(values)),
        "cash": [v - p for v, p in zip(values, held, strict=True)],
        "positions_value": held,
        "equity": values,
    }).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


def metrics(values, initial_cash=100.0, fills=NO_FILLS, statuses=None, trades=None, **kwargs):
    return compute_metrics(equity_frame(values, **kwargs), fills, statuses, trades,
                           initial_cash=initial_cash, periods_per_year=3)


def test_a_hand_computed_series():
    # Returns +10 %, −10 %, +10 % over one year of 3 bars: mean 1/30, std (ddof=1) 0.2/√3,
    # downside deviation √(0.01 / 3).
    fills = pl.DataFrame({"quantity": [1.0, -1.0], "price": [50.0, 60.0], "fee": [0.5, 0.25]})
    statuses = status_counts(
        pl.Series("status", ["filled", "rejected", "filled", "noop", "replaced"]))
    trades = pl.DataFrame({"pnl": [5.0, -1.0, 2.0], "status": ["closed", "closed", "open"]})
    m = metrics([110, 99, 108.9], fills=fills, statuses=statuses, trades=trades,
                positions_value=[55, 0, 0])
    assert m["initial_cash"] == 100.0 and m["final_equity"] == pytest.approx(108.9)
    assert m["total_return"] == pytest.approx(0.089)
    assert m["cagr"] == pytest.approx(0.089)
    assert m["volatility"] == pytest.approx(0.2)
    assert m["sharpe"] == pytest.approx(0.5)
    assert m["sortino"] == pytest.approx(1.0)
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["turnover"] == pytest.approx(110 / ((110 + 99 + 108.9) / 3))
    assert m["exposure"] == pytest.approx(0.5 / 3)
    assert m["total_fees"] == pytest.approx(0.75)
    assert (m["n_bars"], m["n_fills"], m["n_orders"], m["n_rejected"]) == (3, 2, 5, 1)
    assert (m["n_trades"], m["n_closed_trades"], m["win_rate"]) == (3, 2, 0.5)


def test_every_metric_is_described_and_is_a_plain_number():
    m = metrics([101, 102, 100])
    assert list(m) == list(METRIC_DESCRIPTIONS)
    assert all(type(v) in (int, float) for v in m.values())
    json.dumps(m)
    assert json.loads(to_json(m))["win_rate"] is None


def test_constant_equity_has_zero_return_and_volatility_and_nan_ratios():
    m = metrics([100.0] * 5)
    assert m["total_return"] == 0 and m["cagr"] == 0 and m["volatility"] == 0
    assert m["max_drawdown"] == 0
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"])


def test_steady_growth_gives_nan_ratios_not_float_noise():
    m = metrics(100 * 1.01 ** np.arange(1, 30))
    assert m["volatility"] == pytest.approx(0, abs=1e-12)
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"])


def test_no_losing_bar_gives_nan_sortino():
    m = metrics([101, 103, 104])
    assert math.isfinite(m["sharpe"]) and math.isnan(m["sortino"])


def test_the_first_return_and_the_first_peak_are_the_initial_cash():
    assert metrics([90, 95])["max_drawdown"] == pytest.approx(-0.1)
    one_bar = metrics([125], initial_cash=100)
    assert one_bar["total_return"] == pytest.approx(0.25)
    assert one_bar["max_drawdown"] == 0 and math.isnan(one_bar["volatility"])


def test_counts_from_tables_not_given_are_nan():
    m = metrics([101, 102])
    for key in ("n_orders", "n_rejected", "n_trades", "n_closed_trades", "win_rate"):
        assert math.isnan(m[key])
    open_only = pl.DataFrame({"pnl": [3.0], "status": ["open"]})
    assert math.isnan(metrics([101, 102], trades=open_only)["win_rate"])


def test_a_wiped_out_book_has_cagr_minus_one():
    m = metrics([50, 0])
    assert m["cagr"] == -1 and m["max_drawdown"] == -1 and m["total_return"] == -1


def test_gross_value_makes_exposure_gross():
    equity = equity_frame([100, 100], positions_value=[0, 0]).with_columns(
        gross_value=pl.Series([150.0, 50.0])
    )
    m = compute_metrics(equity, NO_FILLS, None, None, initial_cash=100.0)
    assert m["exposure"] == pytest.approx(1.0)


curves = st.lists(st.floats(1.0, 1e4), min_size=1, max_size=50)


@settings(max_examples=200, deadline=None)
@given(values=curves, initial=st.floats(1.0, 1e4), factor=st.floats(1e-3, 1e3))
def test_scale_free_metrics_ignore_the_size_of_the_book(values, initial, factor):
    base = metrics(values, initial_cash=initial)
    scaled = metrics([v * factor for v in values], initial_cash=initial * factor)
    for key in ("max_drawdown", "total_return", "cagr", "volatility"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-9, abs=1e-12, nan_ok=True)
    assert -1 <= base["max_drawdown"] <= 0


def test_inputs_are_never_mutated():
    equity = equity_frame([110, 99, 108.9], positions_value=[55, 0, 0])
    fills = pl.DataFrame({"quantity": [1.0, -1.0], "price": [50.0, 60.0], "fee": [0.5, 0.25]})
    statuses = {"filled": 1, "rejected": 1}
    trades = pl.DataFrame({"pnl": [5.0], "status": ["closed"]})
    frames = (equity, fills, trades)
    copies = [f.clone() for f in frames]
    compute_metrics(equity, fills, statuses, trades, initial_cash=100.0)
    assert all(f.equals(c) for f, c in zip(frames, copies, strict=True))
    assert statuses == {"filled": 1, "rejected": 1}


def test_an_equity_table_without_its_columns_is_an_input_error():
    with pytest.raises(InputError, match="positions_value"):
        compute_metrics(pl.DataFrame({"timestamp": [1], "cash": [1.0], "equity": [1.0]}),
                        NO_FILLS, None, None, initial_cash=1.0)


def test_metrics_of_a_backtest_agree_with_its_tables():
    prices, _, _ = random_universe(6, 40, seed=5)
    result = run_backtest(prices, top_k_weights(6, 40, 2, 3, seed=5), BacktestConfig(fees=0.001))
    m = result.metrics
    assert m["final_equity"] == pytest.approx(result.final_equity)
    assert m["n_fills"] == result.fills.height and m["n_orders"] == result.orders.height
    assert m["total_fees"] == pytest.approx(result.fills["fee"].sum())
    assert m["n_trades"] == result.trades.height
    json.dumps(m)
