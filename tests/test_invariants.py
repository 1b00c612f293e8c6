"""Properties over random universes, weights and settings.

Ledger identities on every bar, positions = cumulative fills, engine = reference on every
fill, and no look-ahead.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import BacktestConfig, run_backtest
from engine.reference import run_reference
from tests.builders import random_universe, top_k_weights
from tests.identities import assert_ledger_identities, last_closes
from tests.parity import REL, assert_same_fills

configs = st.builds(
    BacktestConfig,
    initial_cash=st.sampled_from([10_000.0, 1_000_000.0]),
    fill=st.sampled_from(["next_open", "next_close", "same_close"]),
    fees=st.sampled_from([0.0, 0.001, 0.01]),
    per_share=st.sampled_from([0.0, 0.005]),
    min_fee=st.sampled_from([0.0, 1.0]),
    fixed_fee=st.sampled_from([0.0, 2.5]),
    slippage=st.sampled_from([0.0, 0.0005]),
    shares=st.sampled_from(["fractional", "integer"]),
    cash_policy=st.sampled_from(["shrink", "reject", "allow_negative"]),
)
scenarios = st.tuples(
    st.integers(0, 10_000),  # seed
    st.integers(3, 12),  # assets
    st.integers(5, 40),  # bars
    st.sampled_from([0.0, 0.05]),  # missing bars
    st.integers(1, 5),  # k
    st.integers(1, 6),  # rebalance every
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def make(scenario):
    seed, n_assets, n_bars, missing, k, every = scenario
    prices, _, _ = random_universe(n_assets, n_bars, seed, missing=missing)
    weights = top_k_weights(n_assets, n_bars, min(k, n_assets), every, seed)
    return prices, weights


@SETTINGS
@given(scenario=scenarios, config=configs)
def test_ledger_identities_hold_on_every_bar(scenario, config):
    prices, weights = make(scenario)
    result = run_backtest(prices, weights, config)
    assert_ledger_identities(result, config.initial_cash, last_closes(prices))


@SETTINGS
@given(scenario=scenarios, config=configs)
def test_engine_equals_the_reference_on_every_fill(scenario, config):
    prices, weights = make(scenario)
    ours = run_backtest(prices, weights, config)
    reference = run_reference(prices, weights, config)
    assert_same_fills(ours.fills, reference.fills, require_fills=False)
    assert ours.final_equity == pytest.approx(reference.final_equity, rel=REL, abs=1e-9)


@SETTINGS
@given(scenario=scenarios, cut=st.floats(0.2, 0.8),
       fill=st.sampled_from(["next_open", "next_close", "same_close"]))
def test_no_look_ahead(scenario, cut, fill):
    """Changing prices after t leaves every fill up to t unchanged.

    With next_open, t+1's fills may change only through t+1's open: changing its close
    and everything later leaves them unchanged too.
    """
    prices, weights = make(scenario)
    times = prices["timestamp"].unique().sort()
    t = times[int(cut * (len(times) - 1))]
    config = BacktestConfig(fill=fill, fees=0.001)
    base = run_backtest(prices, weights, config).fills

    later = pl.col("timestamp") > t
    shocked = prices.with_columns(
        [pl.when(later).then(pl.col(c) * 1.7).otherwise(pl.col(c)).alias(c)
         for c in ("open", "high", "low", "close")]
    )
    moved = run_backtest(shocked, weights, config).fills
    assert moved.filter(pl.col("timestamp") <= t).equals(base.filter(pl.col("timestamp") <= t))

    if fill == "next_open" and times[-1] > t:
        t1 = times.filter(times > t)[0]
        keep_open = (pl.col("timestamp") == t1)
        closes_moved = prices.with_columns(
            [pl.when(later & ~keep_open).then(pl.col(c) * 1.7)
             .when(keep_open).then(pl.col(c) * (0.8 if c in ("close", "low") else 1.0))
             .otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low", "close")]
        ).with_columns(pl.max_horizontal("open", "high", "close").alias("high"),
                       pl.min_horizontal("open", "low", "close").alias("low"))
        moved = run_backtest(closes_moved, weights, config).fills
        upto = pl.col("timestamp") <= t1
        assert moved.filter(upto).equals(base.filter(upto))
