"""Properties of the reference's resting orders and risk rules, over random cases.

Random OHLC bars with gaps and missing bars, random order tables (every type, both sides,
OCO pairs, brackets, expiries) and random settings under every profile. Whatever the case:
a resting fill lies inside its bar, a stop never fills before its trigger is touched, a
limit never fills at a worse price, nothing fills before the bar after its decision,
members of one OCO group never both fill, expired orders never fill, and a long-only book
never goes short.
"""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.reference import run_reference
from tests.resting_cases import gappy_bars, random_orders

PROFILES = {
    "tradegap": {},
    "vectorbt": {"profile": "vectorbt"},
    "backtrader": {"profile": "backtrader", "fill": "next_open", "shares": "integer",
                   "cash_policy": "reject"},
    "zipline": {"profile": "zipline", "fill": "next_close", "shares": "integer",
                "cash_policy": "allow_negative"},
}

cases = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "n_assets": st.integers(1, 5),
    "n_bars": st.integers(8, 40),
    "n_orders": st.integers(1, 30),
    "profile": st.sampled_from(list(PROFILES)),
    "intrabar_path": st.sampled_from(["nearest", "ohlc", "olhc"]),
    "stop_first": st.sampled_from([None, True, False]),
    "stop_base": st.sampled_from([None, "fill", "close"]),
    "trail_source": st.sampled_from([None, "high_low", "close"]),
    "slippage": st.sampled_from([0.0, 0.002]),
    "fees": st.sampled_from([0.0, 0.001]),
    "cash": st.sampled_from([2_000.0, 1e7]),
    "rules": st.sampled_from([{}, {"stop_loss": 0.03}, {"take_profit": 0.04},
                              {"trailing_stop": 0.03, "take_profit": 0.05},
                              {"max_bars": 3, "stop_loss": 0.02},
                              {"max_positions": 2, "max_weight": 0.3},
                              {"max_gross": 0.8, "halt_drawdown": 0.05}]),
})


def run_case(case: dict):
    prices = gappy_bars(case["n_assets"], case["n_bars"], seed=case["seed"], missing=0.05)
    orders = random_orders(prices, case["seed"] + 1, case["n_orders"])
    config = {**PROFILES[case["profile"]], "initial_cash": case["cash"], "fees": case["fees"],
              **case["rules"]}
    if case["profile"] != "backtrader":
        config["slippage"] = case["slippage"]
    for name in ("intrabar_path", "stop_first", "stop_base", "trail_source"):
        if case[name] is not None:
            config[name] = case[name]
    return prices, orders, run_reference(prices, config=config, resting=orders)


def fills_with_orders(prices: pl.DataFrame, result) -> pl.DataFrame:
    return result.fills.join(prices, on=["timestamp", "asset"], how="left").join(
        result.orders.select("order_id", "created", "type", "limit_price", "stop_price",
                             "valid_until", "group"), on="order_id", how="left")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_resting_fills_keep_their_promises(case):
    prices, _, result = run_case(case)
    joined = fills_with_orders(prices, result)
    resting = joined.filter(pl.col("trigger") != "market")
    scale = 1e-12 * resting["high"].abs().max() if resting.height else 0.0
    assert (resting["price"] >= resting["low"] - scale).all()
    assert (resting["price"] <= resting["high"] + scale).all()
    assert (joined["timestamp"] > joined["created"]).all(), "a fill at or before its decision"
    buys, sells = pl.col("quantity") > 0, pl.col("quantity") < 0
    stops = resting.filter(pl.col("type") == "stop")
    assert stops.filter(buys & (pl.col("high") < pl.col("stop_price"))).is_empty()
    assert stops.filter(sells & (pl.col("low") > pl.col("stop_price"))).is_empty()
    for asset, created, filled, quantity, stop in resting.filter(
            pl.col("type") == "stop_limit").select("asset", "created", "timestamp", "quantity",
                                                   "stop_price").iter_rows():
        path = prices.filter((pl.col("asset") == asset) & (pl.col("timestamp") > created)
                             & (pl.col("timestamp") <= filled))
        touched = path["high"].max() >= stop if quantity > 0 else path["low"].min() <= stop
        assert touched, "a stop-limit filled before its stop was touched"
    limits = resting.filter(pl.col("type").is_in(["limit", "stop_limit"]))
    assert limits.filter(buys & (pl.col("price") > pl.col("limit_price") + scale)).is_empty()
    assert limits.filter(sells & (pl.col("price") < pl.col("limit_price") - scale)).is_empty()
    late = joined.filter(pl.col("valid_until").is_not_null()
                         & (pl.col("timestamp") > pl.col("valid_until")))
    assert late.is_empty(), "a fill after its last valid bar"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_oco_siblings_never_both_fill_and_expired_orders_never_fill(case):
    _, _, result = run_case(case)
    orders = result.orders
    filled_ids = result.fills["order_id"].unique()
    expired = orders.filter(pl.col("status") == "expired")["order_id"]
    assert not expired.is_in(filled_ids.implode()).any()
    groups = orders.filter(pl.col("group").is_not_null() & pl.col("order_id").is_in(
        filled_ids.implode())).group_by("group").len()
    assert (groups["len"] <= 1).all(), groups.filter(pl.col("len") > 1)
    cancelled = orders.filter(pl.col("status") == "cancelled")["order_id"]
    assert not cancelled.is_in(filled_ids.implode()).any()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_a_long_only_book_never_goes_short(case):
    _, _, result = run_case(case)
    held = result.fills.sort("timestamp", maintain_order=True).group_by(
        "asset", maintain_order=True).agg(pl.col("quantity").cum_sum().min().alias("low"))
    assert (held["low"] >= -1e-9).all()
