"""Engine = reference on every fill beyond target weights: every profile with missing bars,
and random order calls of every kind (deltas and targets) with and without shorts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine import BacktestConfig, Strategy, run_backtest, run_strategy
from engine.reference import run_reference
from tests.builders import random_universe, top_k_weights
from tests.parity import assert_same_fills

PROFILES = ["tradegap", "vectorbt", "backtrader", "zipline"]
METHODS = {"shares": "order", "value": "order_value", "percent": "order_percent",
           "target_shares": "order_target", "target_value": "order_target_value",
           "target_percent": "order_target_percent"}


class Calls(Strategy):
    """Replays a table of order calls (`timestamp, asset, kind, amount`) through `ctx`."""

    def __init__(self, calls: dict[int, list[tuple[str, str, float]]]) -> None:
        self.calls = calls

    def on_bar(self, ctx) -> None:
        for kind, asset, amount in self.calls.get(ctx.bar, []):
            getattr(ctx, METHODS[kind])(asset, amount)


def random_calls(prices: pl.DataFrame, seed: int) -> tuple[dict, pl.DataFrame]:
    """Random calls of every kind on about half the bars, as a dict and as a table."""
    rng = np.random.default_rng(seed)
    assets = sorted(prices["asset"].unique().to_list())
    stamps = prices["timestamp"].unique().sort().to_list()
    amounts = {"shares": lambda: rng.normal(0, 20), "value": lambda: rng.normal(0, 2000),
               "percent": lambda: rng.normal(0, 0.2), "target_shares": lambda: rng.normal(10, 20),
               "target_value": lambda: rng.normal(1000, 2000),
               "target_percent": lambda: rng.uniform(-0.2, 0.4)}
    calls: dict[int, list] = {}
    rows = []
    for t in range(len(stamps) - 1):
        if rng.random() < 0.5:
            continue
        for _ in range(rng.integers(1, 4)):
            kind = list(amounts)[rng.integers(0, len(amounts))]
            asset = assets[rng.integers(0, len(assets))]
            amount = float(amounts[kind]())
            calls.setdefault(t, []).append((kind, asset, amount))
            rows.append((stamps[t], asset, kind, amount))
    table = pl.DataFrame(rows, orient="row", schema={
        "timestamp": pl.Datetime("us"), "asset": pl.String, "kind": pl.String,
        "amount": pl.Float64})
    return calls, table


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", range(6))
def test_every_profile_matches_the_reference_with_missing_bars(profile, seed):
    prices, _, _ = random_universe(8, 40, seed, missing=0.08 if seed % 2 else 0.0)
    weights = top_k_weights(8, 40, 3, 1 + seed % 4, seed)
    extra = {"fees": 0.001} if profile == "backtrader" else {}
    config = BacktestConfig.for_profile(profile, initial_cash=10_000.0, **extra)
    ours = run_backtest(prices, weights, config)
    reference = run_reference(prices, weights, config)
    assert ours.fills.height > 0 and reference.fills.height > 0
    assert_same_fills(ours.fills, reference.fills)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", range(8))
def test_order_calls_of_every_kind_match_the_reference(profile, seed):
    prices, _, _ = random_universe(5, 30, seed, missing=0.05 * (seed % 2))
    calls, table = random_calls(prices, seed)
    fees = {} if profile == "zipline" else {"fees": 0.001}
    config = BacktestConfig.for_profile(profile, initial_cash=10_000.0,
                                        allow_short=seed % 3 == 0, **fees)
    ours = run_strategy(prices, Calls(calls), config)
    reference = run_reference(prices, orders=table, config=config)
    assert ours.fills.height > 0 and reference.fills.height > 0
    assert_same_fills(ours.fills, reference.fills)
