"""Peer parity: our engine under a peer's profile against the real peer, fill for fill.

backtrader 1.9.78 and zipline-reloaded 3.2.1 (in its side environment) run for real.
Pass: every fill equal (quantity, price, fee) to 1e-9 relative, the same orders refused,
and final equity to 1e-9. zipline fills each order separately where we fill an asset's
orders as one, so its fills are compared summed per (timestamp, asset).
"""

from __future__ import annotations

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market, momentum_scores
from engine.gap.analyze import Side, analyze
from engine.peers.backtrader import run_backtrader
from engine.peers.zipline import run_zipline
from engine.reference import rules_for
from engine.research.weights import top_k_weights
from engine.results.compare import Tolerance, join_sides
from tests.builders import random_universe
from tests.builders import top_k_weights as random_top_k
from tests.parity import REL, assert_same_fills

pytestmark = [pytest.mark.peers, pytest.mark.slow]


@pytest.fixture(scope="module")
def complete():
    prices, _, _ = random_universe(16, 160, seed=3)
    return prices


@pytest.fixture(scope="module")
def gappy():
    """Late listings, delistings and missing bars."""
    return generate_market(n_assets=40, n_days=300, seed=11)


def backtrader_parity(prices, weights, **settings):
    config = BacktestConfig.for_profile("backtrader", initial_cash=100_000.0, **settings)
    ours = run_backtest(prices, weights, config)
    peer = run_backtrader(prices, weights, config)
    assert_same_fills(ours.fills, peer.fills)
    assert ours.final_equity == pytest.approx(peer.final_equity, rel=REL)
    refused = ours.orders.filter(pl.col("reason") == "margin")
    assert sorted(zip(refused["created"], refused["asset"], strict=True)) == sorted(
        zip(peer.rejections["created"], peer.rejections["asset"], strict=True))
    return ours, peer


@pytest.mark.parametrize("every", [1, 21], ids=["daily", "every21"])
@pytest.mark.parametrize("fees", [0.0, 0.001])
def test_backtrader_profile_matches_backtrader(complete, every, fees):
    weights = random_top_k(16, 160, k=5, every=every, seed=every)
    ours, _ = backtrader_parity(complete, weights, fees=fees)
    assert ours.fills.height > 20


def test_backtrader_profile_refuses_the_same_orders_for_margin(complete):
    """Weights summing to 1 with fees: backtrader refuses buys rather than shrinking them."""
    weights = random_top_k(16, 160, k=4, every=5, seed=9)
    _, peer = backtrader_parity(complete, weights, fees=0.002)
    assert peer.rejections.height > 5


def test_backtrader_profile_matches_with_listings_delistings_and_missing_bars(gappy):
    weights = top_k_weights(momentum_scores(gappy), k=8, every=21)
    backtrader_parity(gappy, weights, fees=0.001)


def test_backtrader_fills_two_orders_when_one_waits_for_a_missing_bar(gappy):
    """The one difference we keep: backtrader does not net pending orders.

    An order waiting for an asset's missing bar and the next decision's order for that
    asset (sized from the position without the pending one) both fill on the asset's next
    bar: a close() after a waiting sell sells the position twice and goes short. Our engine
    nets the pending order, so it never fills one asset twice in one bar. The gap analysis
    names it where it first happens: open orders not netted (and a sell past the position).
    """
    weights = top_k_weights(momentum_scores(gappy), k=8, every=1)
    config = BacktestConfig.for_profile("backtrader", initial_cash=100_000.0, fees=0.001)
    peer = run_backtrader(gappy, weights, config)
    repeated = peer.fills.filter(pl.struct("timestamp", "asset").is_duplicated())
    assert repeated.height > 0
    ours = run_backtest(gappy, weights, config)
    assert not ours.fills.select(pl.struct("timestamp", "asset").is_duplicated()).to_series(
        ).any()
    gap = analyze(Side(ours.fills, rules=rules_for(config), name="engine"),
                  Side(peer.fills, name="backtrader"), gappy, weights, config.initial_cash).summary
    first = gap["first_divergence"]
    assert "duplicate_fill" in first["cause"].split("+")
    assert gap["faults"][0]["cause"] == "duplicate_fill"
    assert gap["faults"][0]["onset"] == first["timestamp"]
    assert "not netted" in gap["faults"][0]["what"]


def zipline_parity(prices, weights, **settings):
    config = BacktestConfig.for_profile("zipline", initial_cash=100_000.0, **settings)
    ours = run_backtest(prices, weights, config)
    peer = run_zipline(prices, weights, config)
    assert ours.fills.height > 0 and peer.fills.height > 0, "a side filled nothing"
    joined = join_sides(ours.fills, peer.fills, Tolerance(rel=REL, abs=1e-9))
    assert joined.filter(pl.col("divergent")).height == 0, joined.filter(pl.col("divergent"))
    assert ours.final_equity == pytest.approx(peer.final_equity, rel=REL)
    return ours, peer


@pytest.mark.parametrize("every", [1, 21], ids=["daily", "every21"])
def test_zipline_profile_matches_zipline_with_its_default_costs(complete, every):
    weights = random_top_k(16, 160, k=5, every=every, seed=every)
    ours, _ = zipline_parity(complete, weights)
    assert ours.fills.height > 20
    assert (ours.fills["fee"] > 0).all()


@pytest.mark.parametrize("costs", [{"fees": 0.001, "per_share": 0.0, "slippage": 0.0},
                                   {"per_share": 0.005, "min_fee": 1.0, "slippage": 0.001}],
                         ids=["per_dollar", "per_share_with_minimum"])
def test_zipline_profile_matches_zipline_with_other_costs(complete, costs):
    zipline_parity(complete, random_top_k(16, 160, k=4, every=5, seed=7), **costs)


def test_zipline_profile_carries_volume_capped_remainders_like_zipline(complete):
    """Thin volume: at most 10% of a bar's volume fills, the rest on later bars."""
    thin = complete.with_columns(volume=pl.lit(3_000.0))
    ours, _ = zipline_parity(thin, random_top_k(16, 160, k=4, every=10, seed=2))
    fills_per_order = ours.fills.group_by("order_id").len()["len"]
    assert fills_per_order.max() > 1


def test_zipline_profile_goes_into_negative_cash_like_zipline(complete):
    ours, peer = zipline_parity(complete, random_top_k(16, 160, k=4, every=5, seed=5))
    assert ours.equity["cash"].min() < 0
    assert peer.equity["cash"].min() == pytest.approx(ours.equity["cash"].min(), rel=REL)


def test_zipline_profile_matches_with_listings_delistings_and_missing_bars(gappy):
    zipline_parity(gappy, top_k_weights(momentum_scores(gappy), k=8, every=21))
