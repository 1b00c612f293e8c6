"""nautilus_trader 1.221.0 (its side environment) against the engine and the reference under
the `nautilus` profile, fill for fill.

Pass: the same fills (timestamp, asset, quantity) with price and fee equal to 1e-9
relative, and final equity to 1e-9. Differences we keep are tested as differences
(docs/peers.md, "nautilus_trader").
"""

from __future__ import annotations

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market, momentum_scores
from engine.peers.nautilus import run_nautilus, setup_side_env
from engine.reference import run_reference
from engine.research.weights import top_k_weights
from tests.builders import random_universe
from tests.builders import top_k_weights as random_top_k
from tests.parity import REL, assert_same_fills

KEY = ["timestamp", "asset"]


@pytest.fixture(scope="module", autouse=True)
def side_environment():
    setup_side_env()


def weights_parity(prices: pl.DataFrame, weights: pl.DataFrame, **settings):
    config = BacktestConfig.for_profile("nautilus", initial_cash=100_000.0, **settings)
    engine = run_backtest(prices, weights, config)
    reference = run_reference(prices, weights, config)
    theirs = run_nautilus(prices, weights, config)
    for ours in (engine, reference):
        assert_same_fills(ours.fills.sort(KEY), theirs.fills.sort(KEY))
        assert ours.final_equity == pytest.approx(theirs.final_equity, rel=REL)
    return engine, theirs


@pytest.mark.parametrize("every", [1, 21], ids=["daily", "every21"])
@pytest.mark.parametrize("fees", [0.0, 0.001])
def test_market_orders_fill_at_the_bar_close_like_nautilus(every, fees):
    prices, _, _ = random_universe(12, 120, seed=3)
    engine, theirs = weights_parity(prices, random_top_k(12, 120, k=4, every=every, seed=every),
                                    fees=fees)
    assert engine.fills.height > 20
    at = theirs.fills.join(prices, on=KEY)
    assert ((at["price"] - at["close"]).abs() <= REL * at["close"]).all()


def test_market_orders_match_with_listings_delistings_and_missing_bars():
    gappy = generate_market(n_assets=20, n_days=200, seed=11)
    weights = top_k_weights(momentum_scores(gappy), k=6, every=10)
    engine, _ = weights_parity(gappy, weights, fees=0.001)
    assert engine.orders.filter(pl.col("reason") == "no_price").height > 0


def test_cash_goes_negative_in_the_margin_account_as_the_profile_allows():
    prices, _, _ = random_universe(12, 120, seed=5)
    engine, theirs = weights_parity(prices, random_top_k(12, 120, k=4, every=5, seed=5),
                                    fees=0.002)
    assert engine.equity["cash"].min() < 0
    assert theirs.equity["cash"].min() == pytest.approx(engine.equity["cash"].min(), rel=REL)
