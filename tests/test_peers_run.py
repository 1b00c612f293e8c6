"""The real backtrader and zipline run on our frames and their normalized output is sound.

Each peer is checked against itself only: fills fit our schema, equity is cash plus the
positions value, cash is the initial cash less what the peer's own fills cost, and fills
land on the bar after each decision at the price that peer documents (backtrader: open,
zipline: close). backtrader runs in this environment; zipline runs here when it imports,
else in its side environment, created on first use (`python -m engine.peers.zipline --setup`).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import polars as pl
import pytest

from engine import BacktestConfig
from engine.peers.backtrader import run_backtrader
from engine.peers.result import PeerResult
from engine.peers.zipline import run_zipline, setup_side_env
from schemas.backtest import Fills
from tests.builders import random_universe, top_k_weights

pytestmark = [pytest.mark.peers, pytest.mark.slow]

N_ASSETS, N_BARS, K, EVERY, SEED = 8, 120, 3, 5, 5
CASH = 1_000_000.0
BACKTRADER = BacktestConfig(initial_cash=CASH, fees=0.001)
ZIPLINE = BacktestConfig(initial_cash=CASH, fill="next_close", fees=0.001)


@pytest.fixture(scope="module")
def universe():
    prices, open_, close = random_universe(N_ASSETS, N_BARS, seed=SEED)
    weights = top_k_weights(N_ASSETS, N_BARS, k=K, every=EVERY, seed=SEED)
    return prices, weights, open_, close


@pytest.fixture(scope="module")
def zipline_python():
    """None when zipline imports here, else the side environment's interpreter."""
    return None if importlib.util.find_spec("zipline") else setup_side_env()


@pytest.fixture(scope="module")
def backtrader_run(universe):
    prices, weights, _, _ = universe
    return run_backtrader(prices, weights, BACKTRADER)


@pytest.fixture(scope="module")
def zipline_run(universe, zipline_python):
    prices, weights, _, _ = universe
    return run_zipline(prices, weights, ZIPLINE, python=zipline_python)


@pytest.fixture(params=["backtrader", "zipline"])
def run(request) -> PeerResult:
    return request.getfixturevalue(f"{request.param}_run")


def bar_of(result: PeerResult) -> np.ndarray:
    """Row index of each fill in the equity calendar."""
    stamps = result.equity["timestamp"].to_numpy()
    return np.searchsorted(stamps, result.fills["timestamp"].to_numpy())


def decision_bars(weights: pl.DataFrame, result: PeerResult) -> np.ndarray:
    stamps = result.equity["timestamp"].to_numpy()
    return np.searchsorted(stamps, weights["timestamp"].unique().sort().to_numpy())


def test_fills_fit_the_fills_schema_with_one_fill_per_order(run):
    Fills.validate(run.fills)
    assert run.fills.height > 30
    assert run.fills["order_id"].is_unique().all()


def test_equity_is_cash_plus_positions_value_every_bar(run):
    eq = run.equity
    assert eq.height == N_BARS
    total = eq["cash"].to_numpy() + eq["positions_value"].to_numpy()
    np.testing.assert_allclose(eq["equity"].to_numpy(), total, rtol=1e-9)


def test_positions_value_is_the_fills_positions_marked_at_the_close(run, universe):
    close = universe[3]
    held = np.zeros((N_BARS, N_ASSETS))
    assets = sorted(set(universe[0]["asset"]))
    columns = np.array([assets.index(a) for a in run.fills["asset"]])
    np.add.at(held, (bar_of(run), columns), run.fills["quantity"].to_numpy())
    marked = (np.cumsum(held, axis=0) * close).sum(axis=1)
    np.testing.assert_allclose(run.equity["positions_value"].to_numpy(), marked,
                               rtol=1e-9, atol=1e-6)


def test_cash_is_initial_cash_less_the_peers_own_fills_and_fees(run):
    cost = np.zeros(N_BARS)
    fills = run.fills
    np.add.at(cost, bar_of(run),
              (fills["quantity"] * fills["price"] + fills["fee"]).to_numpy())
    expected = CASH - np.cumsum(cost)
    np.testing.assert_allclose(run.equity["cash"].to_numpy(), expected, rtol=0,
                               atol=1e-6 * CASH)


def test_fees_are_the_configured_fraction_of_the_traded_value(run):
    fills = run.fills
    traded = (fills["quantity"].abs() * fills["price"]).to_numpy()
    np.testing.assert_allclose(fills["fee"].to_numpy(), 0.001 * traded, rtol=1e-9)


@pytest.mark.parametrize("peer, field", [("backtrader", 2), ("zipline", 3)],
                         ids=["backtrader-open", "zipline-close"])
def test_fills_land_on_the_bar_after_each_decision_at_its_documented_price(
    request, universe, peer, field
):
    result = request.getfixturevalue(f"{peer}_run")
    prices, weights = universe[:2]
    bars = bar_of(result)
    fill_bars = set((decision_bars(weights, result) + 1).tolist())
    assert set(bars.tolist()) == fill_bars
    assets = sorted(set(prices["asset"]))
    columns = np.array([assets.index(a) for a in result.fills["asset"]])
    np.testing.assert_allclose(result.fills["price"].to_numpy(),
                               universe[field][bars, columns], rtol=1e-12)


def test_first_buys_are_whole_shares_of_the_weight_of_the_cash_at_the_decision_close(
    run, universe
):
    """From a flat book both peers buy floor(weight × value / decision close) shares."""
    prices, weights, _, close = universe
    first = weights.filter(pl.col("timestamp") == weights["timestamp"].min())
    assets = sorted(set(prices["asset"]))
    wanted = {a: math.floor(w * CASH / close[0, assets.index(a)])
              for a, w in first.select("asset", "weight").iter_rows()}
    bought = run.fills.filter(pl.col("timestamp") == run.equity["timestamp"][1])
    got = dict(bought.select("asset", "quantity").iter_rows())
    assert got and all(got[a] == wanted[a] for a in got)


def test_backtrader_refuses_the_buys_it_cannot_pay_for_instead_of_shrinking(backtrader_run):
    """Weights summing to 1 with fees: the last buy of a rebalance is refused (Margin)."""
    refused = backtrader_run.rejections
    assert refused.height > 0
    assert set(refused["status"]) == {"margin"}
    assert (refused["quantity"] > 0).all()
    assert refused.join(backtrader_run.fills, on="order_id").height == 0
    assert (refused["timestamp"] > refused["created"]).all()
    assert backtrader_run.equity["cash"].min() >= 0


def test_zipline_lets_cash_go_negative(zipline_run):
    assert zipline_run.equity["cash"].min() < 0


def test_zipline_default_costs_slip_5bp_and_charge_a_tenth_of_a_cent_a_share(
    universe, zipline_python
):
    prices, weights, _, close = universe
    result = run_zipline(prices, weights, ZIPLINE.with_(fees=0.0), zipline_costs=True,
                         python=zipline_python)
    fills = result.fills
    assets = sorted(set(prices["asset"]))
    columns = np.array([assets.index(a) for a in fills["asset"]])
    side = np.sign(fills["quantity"].to_numpy())
    np.testing.assert_allclose(fills["price"].to_numpy(),
                               close[bar_of(result), columns] * (1 + 5e-4 * side), rtol=1e-12)
    np.testing.assert_allclose(fills["fee"].to_numpy(),
                               0.001 * fills["quantity"].abs().to_numpy(), rtol=1e-9)
