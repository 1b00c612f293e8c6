"""Engine = reference for resting orders and risk rules, over random cases, every profile.

Random OHLC bars with gapped opens and missing bars, random order tables (every type, both
sides, OCO pairs, brackets, expiries), random intra-bar settings (the `close` path too)
and risk rules, and bars with little volume, where zipline's cap binds on resting orders. The
engine's `run_orders` (an order table) and `run_backtest` (weights with position and
portfolio rules) must produce the reference's fills: `timestamp, asset, quantity, price,
fee, trigger`, in order, numbers to 1e-9 relative; and both sides must fill something over
the whole run of examples.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import BacktestConfig, run_backtest, run_strategy
from engine.reference import run_reference
from engine.reference.bars import Bars
from engine.reference.orders import Call
from engine.reference.resting import order_table_rows
from engine.reference.rules import rules_for
from engine.reference.simulation import Place, Simulation
from tests.parity import REL, relative_gap
from tests.resting_cases import Replay, gappy_bars, random_orders

COLUMNS = ["timestamp", "asset", "quantity", "price", "fee", "trigger"]
PROFILES = ["tradegap", "vectorbt", "backtrader", "zipline", "nautilus"]
RULES = [{}, {"stop_loss": 0.03}, {"take_profit": 0.04},
         {"stop_loss": 0.03, "take_profit": 0.05}, {"trailing_stop": 0.03},
         {"trailing_stop": 0.02, "take_profit": 0.06, "max_bars": 5}, {"max_bars": 3},
         {"max_positions": 2}, {"max_weight": 0.3}, {"max_gross": 0.8},
         {"halt_drawdown": 0.05, "stop_loss": 0.02}]

cases = st.fixed_dictionaries({
    "seed": st.integers(0, 100_000),
    "n_assets": st.integers(1, 6),
    "n_bars": st.integers(8, 60),
    "n_orders": st.integers(1, 40),
    "profile": st.sampled_from(PROFILES),
    "intrabar_path": st.sampled_from([None, "nearest", "ohlc", "olhc", "close"]),
    "stop_first": st.sampled_from([None, True, False]),
    "stop_base": st.sampled_from([None, "fill", "close"]),
    "trail_source": st.sampled_from([None, "high_low", "close"]),
    "fees": st.sampled_from([0.0, 0.001]),
    "slippage": st.sampled_from([0.0, 0.002]),
    "cash": st.sampled_from([3_000.0, 1e7]),
    "rules": st.sampled_from(RULES),
    "volume": st.sampled_from([1e9, 120.0]),  # 120: zipline's 10% cap binds at 12 shares
})

filled = {"engine": 0, "reference": 0}


def config_of(case: dict) -> BacktestConfig:
    settings = {"initial_cash": case["cash"], "fees": case["fees"], **case["rules"]}
    if case["profile"] in ("tradegap", "vectorbt"):
        settings["slippage"] = case["slippage"]
    for name in ("intrabar_path", "stop_first", "stop_base", "trail_source"):
        if case[name] is not None:
            settings[name] = case[name]
    return BacktestConfig.for_profile(case["profile"], **settings)


def bars_of(case: dict) -> pl.DataFrame:
    prices = gappy_bars(case["n_assets"], case["n_bars"], seed=case["seed"], missing=0.05)
    return prices.with_columns(volume=pl.lit(case["volume"]))


def assert_same(engine_fills: pl.DataFrame, reference_fills: pl.DataFrame) -> None:
    ours, theirs = engine_fills.select(COLUMNS), reference_fills.select(COLUMNS)
    assert ours.height == theirs.height, f"{ours.height} engine fills, {theirs.height} reference"
    for key in ("timestamp", "asset", "trigger"):
        differs = (ours[key] != theirs[key]).arg_true()
        assert differs.len() == 0, (key, ours[int(differs[0])], theirs[int(differs[0])])
    for column in ("quantity", "price", "fee"):
        gap = relative_gap(ours[column].to_numpy(), theirs[column].to_numpy())
        assert gap <= REL, (column, gap)
    filled["engine"] += ours.height
    filled["reference"] += theirs.height


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_engine_fills_an_order_table_like_the_reference(case):
    from engine import run_orders

    prices = bars_of(case)
    orders = random_orders(prices, case["seed"] + 1, case["n_orders"])
    config = config_of(case)
    assert_same(run_orders(prices, orders, config).fills,
                run_reference(prices, config=config, resting=orders).fills)


def random_weights(prices: pl.DataFrame, seed: int, every: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = prices["timestamp"].unique().sort().to_list()
    assets = prices["asset"].unique().sort().to_list()
    rows = []
    for t in days[:-1:every]:
        chosen = [a for a in assets if rng.random() < 0.5]
        rows += [(t, a, 1.0 / max(len(chosen), 2)) for a in chosen]
    return pl.DataFrame(rows, orient="row", schema={
        "timestamp": pl.Datetime("us"), "asset": pl.String, "weight": pl.Float64})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases, st.sampled_from([1, 3, 10]))
def test_engine_applies_risk_rules_to_weights_like_the_reference(case, every):
    prices = bars_of(case)
    weights = random_weights(prices, case["seed"] + 2, every)
    if weights.is_empty():
        return
    config = config_of(case)
    assert_same(run_backtest(prices, weights, config).fills,
                run_reference(prices, weights, config).fills)


def reference_fills(sim: Simulation, prices: pl.DataFrame) -> pl.DataFrame:
    """The reference simulation's fills as a table (`COLUMNS`)."""
    stamps = prices["timestamp"].unique().sort().to_list()
    return pl.DataFrame(
        [(stamps[t], a, q, p, f, sim.triggers.get(i, "market")) for t, a, q, p, f, i
         in sim.fills], orient="row", schema={
            "timestamp": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
            "price": pl.Float64, "fee": pl.Float64, "trigger": pl.String})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases, st.floats(0.0, 1.0))
def test_a_strategy_placing_the_table_fills_like_the_reference_with_targets(case, share):
    """The table's rows as `Context.order` calls (the callback path), with a target on
    the asset right after a `share` of the market bracket entries (it replaces them)."""
    prices = bars_of(case)
    orders = random_orders(prices, case["seed"] + 1, case["n_orders"])
    config = config_of(case)
    bars = Bars.from_frame(prices)
    rng = np.random.default_rng(case["seed"] + 3)
    after, decisions = {}, {}
    rows = orders.to_dicts()
    for row, placed in zip(rows, order_table_rows(orders), strict=True):
        bar = bars.index_of([row["timestamp"]])[row["timestamp"]]
        decision = decisions.setdefault(bar, [])
        k = sum(isinstance(call, Place) for call in decision)
        decision.append(Place(placed))
        if row["type"] == "market" and row["id"] is not None and rng.random() < share:
            amount = float(rng.integers(0, 20))
            decision.append(Call("target_shares", row["asset"], amount))
            after[(bar, k)] = [lambda ctx, a=row["asset"], n=amount: ctx.order_target(a, n)]
    engine = run_strategy(prices, Replay(rows, after), config)
    reference = Simulation(bars, decisions, rules_for(config.to_dict()),
                           config.initial_cash).run()
    assert_same(engine.fills, reference_fills(reference, prices))


def test_the_properties_compared_real_fills():
    """Run after the two properties above (file order): both sides filled plenty."""
    assert filled["engine"] > 500 and filled["reference"] > 500, filled
