"""The engine reproduces vectorbt's `from_orders` target-percent rebalancing fill for fill.

vectorbt runs for real here (a dev dependency installed by `make test`).
"""

from __future__ import annotations

import pytest

from engine import BacktestConfig, run_backtest
from engine.peers.vectorbt import run_vectorbt
from tests.builders import random_universe, top_k_weights
from tests.parity import REL, assert_same_fills, relative_gap

pytestmark = pytest.mark.peers

N_ASSETS, N_BARS = 40, 260
COSTS = {"fees": 0.001, "fixed_fee": 1.0, "slippage": 0.0005}


@pytest.fixture(scope="module")
def universe():
    prices, _, _ = random_universe(N_ASSETS, N_BARS, seed=11)
    return prices


@pytest.mark.parametrize("every", [1, 21], ids=["daily", "every21"])
@pytest.mark.parametrize("shares", ["fractional", "integer"])
@pytest.mark.parametrize("costs", [{}, COSTS], ids=["free", "fees+fixed+slippage"])
def test_engine_matches_vectorbt_on_every_fill(universe, every, shares, costs):
    weights = top_k_weights(N_ASSETS, N_BARS, k=8, every=every, seed=every)
    config = BacktestConfig(shares=shares, **costs)
    ours = run_backtest(universe, weights, config)
    theirs = run_vectorbt(universe, weights, config)
    assert ours.fills.height > 50
    assert_same_fills(ours.fills, theirs.fills)
    assert relative_gap(ours.equity["equity"].to_numpy(), theirs.equity["equity"].to_numpy()) <= REL
    assert ours.final_equity == pytest.approx(theirs.final_equity, rel=REL)


def test_engine_matches_vectorbt_under_a_cash_shortfall(universe):
    """Weights summing to 1 with fees: the last buy of every rebalance shrinks to the cash."""
    weights = top_k_weights(N_ASSETS, N_BARS, k=5, every=5, seed=3)
    config = BacktestConfig(fees=0.002, fixed_fee=5.0)
    ours = run_backtest(universe, weights, config)
    assert (ours.orders["reason"] == "shrunk_to_cash").sum() > 10
    assert_same_fills(ours.fills, run_vectorbt(universe, weights, config).fills)


@pytest.mark.parametrize("fill", ["next_close", "same_close"])
def test_engine_matches_vectorbt_with_close_fills(universe, fill):
    weights = top_k_weights(N_ASSETS, N_BARS, k=8, every=7, seed=5)
    config = BacktestConfig(fill=fill, fees=0.001)
    ours = run_backtest(universe, weights, config)
    assert_same_fills(ours.fills, run_vectorbt(universe, weights, config).fills)


@pytest.mark.parametrize("every", [1, 21], ids=["daily", "every21"])
def test_vectorbt_profile_matches_vectorbt_with_listings_delistings_and_missing_bars(every):
    """vectorbt drops an order whose asset has no price on the fill row and values a held
    asset without one at its last open; the `vectorbt` profile does the same."""
    from engine.data.synthetic import generate_market, momentum_scores
    from engine.research.weights import top_k_weights as momentum_top_k

    market = generate_market(n_assets=40, n_days=300, seed=11)
    weights = momentum_top_k(momentum_scores(market), k=8, every=every)
    config = BacktestConfig.for_profile("vectorbt", fees=0.001, slippage=0.0005)
    ours = run_backtest(market, weights, config)
    assert_same_fills(ours.fills, run_vectorbt(market, weights, config).fills)
    if every == 1:
        assert (ours.orders["reason"] == "no_price").sum() > 0
