"""The scenario that returned +34,072% in the system we replace, run through our engine.

500 assets ranked by a score, the top 25 held at 4% each, 239 monthly rebalances. Targets
trade the delta, so the book never holds more than 25 names; the engine equals the
independent reference and vectorbt. Every asset trades every day here: with missing bars a
sell can wait for the asset's next bar while the buys fill, and the book briefly holds more.
"""

from __future__ import annotations

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market, momentum_scores
from engine.peers.vectorbt import run_vectorbt
from engine.reference import run_reference
from engine.research.weights import top_k_weights
from tests.parity import REL, assert_same_fills

pytestmark = [pytest.mark.peers, pytest.mark.slow]

N_ASSETS, K, EVERY, REBALANCES = 500, 25, 21, 239


@pytest.fixture(scope="module")
def scenario():
    market = generate_market(n_assets=N_ASSETS, n_days=EVERY * (REBALANCES + 1), seed=7,
                             gaps=False)
    weights = top_k_weights(momentum_scores(market), k=K, every=EVERY)
    config = BacktestConfig(fees=0.001)
    return market, weights, config, run_backtest(market, weights, config)


def test_the_seed_scenario_has_239_rebalances_of_25_names_at_4_percent(scenario):
    _, weights, _, _ = scenario
    per_decision = weights.group_by("timestamp").agg(pl.len(), pl.col("weight").sum())
    assert per_decision.height == REBALANCES
    assert per_decision["len"].unique().to_list() == [K]
    assert weights["weight"].unique().to_list() == [pytest.approx(0.04)]


def test_never_more_than_25_positions(scenario):
    _, _, _, result = scenario
    held = result.positions.group_by("timestamp").len()["len"]
    assert held.max() <= K
    assert held.max() >= K - 5


def test_engine_equals_reference_and_vectorbt_on_the_seed_scenario(scenario):
    market, weights, config, result = scenario
    reference = run_reference(market, weights, config)
    assert_same_fills(result.fills, reference.fills)
    assert result.final_equity == pytest.approx(reference.final_equity, rel=REL)
    assert_same_fills(result.fills, run_vectorbt(market, weights, config).fills)
