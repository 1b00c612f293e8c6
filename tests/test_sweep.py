"""A sweep's points each give what a single `run_backtest` gives for them alone."""

from __future__ import annotations

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market, momentum_scores
from engine.research.weights import top_k_weights
from engine.sweep import Point, grid, run_sweep, summary

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def market():
    prices = generate_market(n_assets=25, n_days=260, seed=4)
    return prices, momentum_scores(prices)


def test_grid_is_every_combination_in_order():
    points = grid([5, 10], [21], fees=[0.0, 0.001], fill=["next_open", "next_close"])
    assert len(points) == 8
    assert points[0] == Point(5, 21, {"fees": 0.0, "fill": "next_open"})
    assert points[-1] == Point(10, 21, {"fees": 0.001, "fill": "next_close"})
    assert points[1].label == "k5 every21 fees=0.0 fill=next_close"


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_point_equals_its_single_run(market, workers):
    prices, scores = market
    base = BacktestConfig(shares="integer", initial_cash=250_000)
    points = grid([3, 8], [5, 21], fees=[0.0, 0.0025], fill=["next_open", "next_close"],
                  stop_loss=[0.0, 0.04])
    swept = run_sweep(prices, scores, points, base, workers=workers)
    assert [point for point, _ in swept] == points
    for point, result in swept:
        alone = run_backtest(prices, top_k_weights(scores, point.top_k, point.every),
                             base.with_(**point.settings))
        for name in ("fills", "orders", "equity", "positions", "trades"):
            assert getattr(result, name).equals(getattr(alone, name)), (point.label, name)
        assert result.metrics == alone.metrics


def test_keep_reduces_each_result_and_summary_has_a_row_per_point(market):
    prices, scores = market
    points = grid([4], [10, 20], fees=[0.0, 0.01])
    swept = run_sweep(prices, scores, points, keep=lambda point, result: result.metrics)
    table = summary(swept)
    assert table.height == 4
    assert table["point"].to_list() == [point.label for point in points]
    by_fee = table.group_by("fees").agg(pl.col("total_return").mean()).sort("fees")
    assert by_fee["total_return"][0] > by_fee["total_return"][1]


def test_a_bad_setting_is_refused_before_any_point_runs(market):
    prices, scores = market
    with pytest.raises(ValueError, match="fill"):
        run_sweep(prices, scores, [Point(3, 5, {"fill": "yesterday"})])
