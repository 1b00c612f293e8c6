"""Properties over the whole space of settings: every profile, shorts, leverage, and delta
orders mixed with targets.

A case is a random universe (with missing bars), a program — a target-weight table or a
table of order intents (tests/intents.py) — and a config. Every case satisfies the ledger
identities on every bar and has no look-ahead. A second implementation is compared fill by
fill on the cases it covers: `COVERAGE` says which, and grows with it (the reference
covers target weights under the default profile today; an entry with intents, shorts,
leverage or other profiles adds those cases to the comparison).
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import BacktestConfig, run_backtest, run_strategy
from engine.reference import run_reference
from tests.builders import random_universe
from tests.identities import assert_ledger_identities, last_closes
from tests.intents import METHODS, IntentReplay
from tests.parity import REL, assert_same_fills

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILES = ("tradegap", "vectorbt", "backtrader", "zipline")
PROGRAMS = ("weights", "intents")


def run_engine(case: dict):
    if case["program"] == "weights":
        return run_backtest(case["prices"], case["weights"], case["config"])
    return run_strategy(case["prices"], IntentReplay(case["intents"]), case["config"])


def run_reference_fills(case: dict) -> pl.DataFrame:
    return run_reference(case["prices"], case["weights"], case["config"]).fills


# What each second implementation covers, and how to run it (fills in execution order).
COVERAGE = {
    "reference": {"programs": ("weights",), "profiles": ("tradegap",), "shorts": False,
                  "leverage": False, "run": run_reference_fills},
}


@st.composite
def configs(draw, profile: str, shorts: bool, leverage: bool) -> BacktestConfig:
    """A config for `profile`, drawing what the profile leaves free."""
    free = {"initial_cash": draw(st.sampled_from([10_000.0, 1_000_000.0])),
            "fees": draw(st.sampled_from([0.0, 0.001, 0.01]))}
    allow_short = shorts and draw(st.booleans())
    if profile in ("tradegap", "vectorbt"):
        free |= {"fill": draw(st.sampled_from(["next_open", "next_close", "same_close"])),
                 "fixed_fee": draw(st.sampled_from([0.0, 2.5])),
                 "slippage": draw(st.sampled_from([0.0, 0.0005])),
                 "shares": draw(st.sampled_from(["fractional", "integer"])),
                 "cash_policy": draw(st.sampled_from(["shrink", "reject", "allow_negative"]))}
    if profile in ("tradegap", "zipline"):
        free |= {"per_share": draw(st.sampled_from([0.0, 0.005])),
                 "min_fee": draw(st.sampled_from([0.0, 1.0]))}
    if leverage and profile != "backtrader" and draw(st.booleans()):
        free |= {"allow_leverage": True,
                 "max_leverage": draw(st.sampled_from([1.0, 1.5, 2.0, 3.0]))}
    return BacktestConfig.for_profile(profile, allow_short=allow_short, **free)


@st.composite
def weight_tables(draw, names: list[str], times: list, config: BacktestConfig):
    """Target weights on random subsets every few bars; negative with shorts, summing
    past 1 with leverage."""
    every = draw(st.integers(1, 5))
    rows = []
    for t in range(0, len(times) - 1, every):
        k = draw(st.integers(1, len(names)))
        chosen = draw(st.permutations(names))[:k]
        scale = draw(st.sampled_from([0.5, 1.0, 1.6])) if config.allow_leverage else 1.0
        for name in sorted(chosen):
            sign = -1.0 if config.allow_short and draw(st.booleans()) else 1.0
            rows.append((times[t], name, sign * scale / k))
    return pl.DataFrame(rows, schema=["timestamp", "asset", "weight"], orient="row",
                        ).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


AMOUNTS = {
    "shares": st.integers(-20, 40).map(float),
    "value": st.floats(-3_000, 8_000),
    "percent": st.floats(-0.2, 0.5),
    "target_shares": st.integers(-10, 60).map(float),
    "target_value": st.floats(-2_000, 10_000),
    "target_percent": st.floats(-0.3, 0.6),
}


@st.composite
def intent_tables(draw, names: list[str], times: list):
    """Order intents of every kind, several per bar, in submission order."""
    rows = draw(st.lists(st.tuples(st.integers(0, len(times) - 1), st.sampled_from(names),
                                   st.sampled_from(sorted(METHODS))), min_size=1, max_size=30))
    rows.sort(key=lambda row: row[0])
    return pl.DataFrame(
        [(times[t], name, kind, draw(AMOUNTS[kind])) for t, name, kind in rows],
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "kind": pl.String,
                "amount": pl.Float64}, orient="row")


@st.composite
def cases(draw, programs=PROGRAMS, profiles=PROFILES, shorts=True, leverage=True) -> dict:
    """A universe, a program and a config from the given part of the space."""
    seed, n_assets, n_bars = draw(st.integers(0, 10_000)), draw(st.integers(3, 8)), draw(
        st.integers(5, 30))
    missing = draw(st.sampled_from([0.0, 0.05]))
    prices, _, _ = random_universe(n_assets, n_bars, seed, missing=missing)
    names = prices["asset"].unique().sort().to_list()
    times = prices["timestamp"].unique().sort().to_list()
    config = draw(configs(draw(st.sampled_from(profiles)), shorts, leverage))
    program = draw(st.sampled_from(programs))
    case = {"prices": prices, "config": config, "program": program}
    if program == "weights":
        case["weights"] = draw(weight_tables(names, times, config))
    else:
        case["intents"] = draw(intent_tables(names, times))
    return case


@SETTINGS
@given(case=cases())
def test_ledger_identities_hold_on_every_bar_in_every_case(case):
    result = run_engine(case)
    assert_ledger_identities(result, case["config"].initial_cash, last_closes(case["prices"]))


@SETTINGS
@given(case=cases(), cut=st.floats(0.2, 0.8))
def test_no_look_ahead_in_every_case(case, cut):
    """Changing every price after t leaves every fill up to t unchanged."""
    times = case["prices"]["timestamp"].unique().sort()
    t = times[int(cut * (len(times) - 1))]
    base = run_engine(case).fills
    later = pl.col("timestamp") > t
    shocked = case["prices"].with_columns(
        [pl.when(later).then(pl.col(c) * 1.7).otherwise(pl.col(c)).alias(c)
         for c in ("open", "high", "low", "close")])
    moved = run_engine({**case, "prices": shocked}).fills
    upto = pl.col("timestamp") <= t
    assert moved.filter(upto).equals(base.filter(upto))


@pytest.mark.parametrize("oracle", sorted(COVERAGE))
@SETTINGS
@given(data=st.data())
def test_engine_equals_a_second_implementation_on_every_fill_it_covers(oracle, data):
    cover = COVERAGE[oracle]
    case = data.draw(cases(cover["programs"], cover["profiles"], cover["shorts"],
                           cover["leverage"]))
    ours = run_engine(case)
    theirs = cover["run"](case)
    assert_same_fills(ours.fills, theirs, rel=REL, require_fills=False)


def test_the_space_reaches_every_profile_shorts_leverage_and_delta_orders():
    """Draws from `cases()` include each dimension the properties claim to cover."""
    seen: dict[str, set] = {"profile": set(), "short": set(), "leverage": set(),
                            "kinds": set()}

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def collect(case):
        config = case["config"]
        seen["profile"].add(config.profile)
        seen["short"].add(config.allow_short)
        seen["leverage"].add(config.allow_leverage)
        if case["program"] == "intents":
            seen["kinds"] |= set(case["intents"]["kind"].to_list())

    collect()
    assert seen["profile"] == set(PROFILES)
    assert seen["short"] == {False, True} and seen["leverage"] == {False, True}
    assert seen["kinds"] == set(METHODS)
