"""Invariants of resting orders and risk rules over random OHLC bars with gaps and missing
bars, random order tables and random settings, under every profile: a fill lies inside its
bar; a stop never fills before its trigger was touched; a limit never fills at a worse
price; OCO siblings never both fill; expired orders never fill; cash is the initial cash
less every fill's notional and fee. Under the `close` path (zipline's) a resting fill is its
bar's close with the market slippage, on a close that meets the order's (rounded) level or
after one that did (a met condition stays met), and thin bars make the volume cap bind."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import BacktestConfig, BacktestResult, run_orders
from engine.core.loop import simulate
from engine.core.strategy import OrderTable
from engine.data.loading import load_orders, load_prices
from engine.data.market import Market

T0 = dt.datetime(2024, 1, 1)
TYPES = ["market", "limit", "stop", "stop_limit", "trailing_stop"]


def random_bars(rng, n_bars: int, n_assets: int) -> pl.DataFrame:
    """Bars with gaps at the open (up to ±8%) and about 8% of bars missing."""
    rows = []
    for j in range(n_assets):
        close = 50.0 * (1 + j)
        for t in range(n_bars):
            open_ = close * np.exp(rng.normal(0, 0.04))
            close = open_ * np.exp(rng.normal(0, 0.03))
            high = max(open_, close) * (1 + rng.exponential(0.01))
            low = min(open_, close) * (1 - rng.exponential(0.01))
            if t and rng.random() < 0.08:
                continue
            rows.append((T0 + dt.timedelta(days=t), f"A{j}", open_, high, low, close, 1e6))
    return pl.DataFrame(rows, orient="row", schema=[
        "timestamp", "asset", "open", "high", "low", "close", "volume"]).sort(
        "timestamp", "asset")


def random_orders(rng, prices: pl.DataFrame, n_rows: int) -> pl.DataFrame:
    """Orders of every type at random bars, levels within ±8% of the decision close."""
    rows = []
    sample = prices.filter(pl.col("timestamp") < prices["timestamp"].max())
    for k in sorted(rng.choice(sample.height, size=n_rows)):
        bar = sample.row(int(k), named=True)
        kind = TYPES[rng.integers(len(TYPES))]
        close = bar["close"]
        quantity = float(rng.choice([-1, 1]) * rng.integers(1, 30))
        near = close * (1 + rng.uniform(-0.08, 0.08))
        limit = near if kind in ("limit", "stop_limit") else None
        stop = close * (1 + rng.uniform(-0.08, 0.08)) if kind in ("stop", "stop_limit") else None
        trail = rng.uniform(0.01, 0.1) if kind == "trailing_stop" else None
        resting = kind != "market"
        valid = str(int(rng.integers(1, 4))) if resting and rng.random() < 0.4 else None
        group = f"g{rng.integers(3)}" if resting and rng.random() < 0.5 else None
        rows.append((bar["timestamp"], bar["asset"], kind, quantity, limit, stop, trail,
                     valid, group))
    return pl.DataFrame(rows, orient="row", schema={
        "timestamp": pl.Datetime("us"), "asset": pl.String, "type": pl.String,
        "quantity": pl.Float64, "limit_price": pl.Float64, "stop_price": pl.Float64,
        "trail": pl.Float64, "valid_until": pl.String, "group": pl.String})


def random_config(rng, profile: str) -> BacktestConfig:
    extra = {"fees": float(rng.choice([0.0, 0.001]))}
    if profile in ("tradegap", "vectorbt"):
        extra["slippage"] = float(rng.choice([0.0, 0.002]))
        extra["allow_short"] = bool(rng.random() < 0.3)
    if profile == "tradegap":
        extra["fill"] = str(rng.choice(["next_open", "next_close", "same_close"]))
        extra["intrabar_path"] = str(rng.choice(["nearest", "ohlc", "olhc", "close"]))
        extra["trail_source"] = str(rng.choice(["high_low", "close"]))
    rules = {"stop_loss": 0.03, "take_profit": 0.05, "trailing_stop": 0.04, "max_bars": 3}
    for name, value in rules.items():
        if rng.random() < 0.4:
            extra[name] = value
    return BacktestConfig.for_profile(profile, initial_cash=20_000.0, **extra)


def check_invariants(result, prices: pl.DataFrame, config: BacktestConfig) -> None:
    market = Market.from_bars(prices)
    fills = result.fills.join(result.orders.select(
        "order_id", "type", "limit_price", "stop_price", "created", "valid_until", "group"),
        on="order_id", how="left")
    bar = market.bar_index(fills["timestamp"])
    col = market.asset_index(fills["asset"])
    high, low = market.high[bar, col], market.low[bar, col]
    price = fills["price"].to_numpy()
    resting = (fills["type"] != "market").to_numpy() | (fills["trigger"] == "time_exit").to_numpy()
    inside = (price >= low * (1 - 1e-12)) & (price <= high * (1 + 1e-12))
    buy = fills["quantity"].to_numpy() > 0
    limit = fills["limit_price"].to_numpy()
    created = market.bar_index(fills["created"])
    if (config.intrabar_path or config.semantics.intrabar_path) == "close":
        check_close_path(fills, market, bar, col, created, config)
    else:
        assert inside[resting].all(), "a resting order filled outside its bar"
        has_limit = np.isfinite(limit) & (fills["type"] != "stop_limit").to_numpy()
        worse = np.where(buy, price > limit * (1 + 1e-12), price < limit * (1 - 1e-12))
        assert not (has_limit & worse).any(), "a limit filled at a worse price than its limit"
    if config.slippage == 0:
        assert inside.all(), "a fill outside its bar"
    stop = fills["stop_price"].to_numpy()
    for i in np.flatnonzero(np.isfinite(stop)):
        span = slice(created[i] + 1, bar[i] + 1)
        if buy[i]:
            touched = np.nanmax(market.high[span, col[i]]) >= stop[i] * (1 - 1e-12)
        else:
            touched = np.nanmin(market.low[span, col[i]]) <= stop[i] * (1 + 1e-12)
        assert touched, f"stop order {fills['order_id'][int(i)]} filled before its trigger"
    late = fills.filter(pl.col("valid_until").is_not_null()
                        & (pl.col("timestamp") > pl.col("valid_until")))
    assert late.height == 0, "a fill after valid_until"
    orders = result.orders
    expired = orders.filter(pl.col("status") == "expired")
    if config.semantics.volume_limit:  # an order the cap cut short expires with its part
        assert (expired["filled_quantity"].abs() < expired["amount"].abs()).all()
    else:
        assert (expired["filled_quantity"] == 0).all()
    first_fill = result.fills.group_by("order_id").agg(first=pl.col("timestamp").min())
    members = orders.filter(pl.col("group").is_not_null() & (pl.col("filled_quantity") != 0)
                            ).join(first_fill, on="order_id").select(
        "order_id", "group", "created", "first")
    pairs = members.join(members, on="group", suffix="_other").filter(
        (pl.col("order_id") != pl.col("order_id_other"))
        & (pl.col("first") <= pl.col("first_other")) & (pl.col("created_other") < pl.col("first")))
    # a label reused after a member filled names that group again (a part-filled member is
    # still open); only members that both rested when the first of them filled are siblings
    assert pairs.height == 0, "two orders of one OCO group filled"
    flows = (result.fills["quantity"] * result.fills["price"] + result.fills["fee"]).sum()
    assert result.equity["cash"][-1] == pytest.approx(config.initial_cash - flows, rel=1e-9,
                                                      abs=1e-6)


def check_close_path(fills: pl.DataFrame, market: Market, bar, col, created,
                     config: BacktestConfig) -> None:
    """Under the `close` path: every fill of a user's limit, stop or stop-limit is its
    bar's close ± the slippage, and a close since the order was placed, up to the fill's
    own, met its level (a stop-limit: its stop, then its limit at that close or later)."""
    kind = fills["trigger"].to_numpy()
    buy = fills["quantity"].to_numpy() > 0
    price = fills["price"].to_numpy()
    limit, stop = fills["limit_price"].to_numpy(), fills["stop_price"].to_numpy()
    for i in np.flatnonzero(np.isin(kind, ["limit", "stop", "stop_limit"])):
        closes = market.close[created[i] + 1: bar[i] + 1, col[i]]
        side = 1.0 if buy[i] else -1.0
        assert price[i] == pytest.approx(closes[-1] * (1 + side * config.slippage),
                                         rel=1e-12), "a resting fill not at its close"
        with np.errstate(invalid="ignore"):
            stop_met = closes >= stop[i] if buy[i] else closes <= stop[i]
            limit_met = closes <= limit[i] if buy[i] else closes >= limit[i]
        if kind[i] == "limit":
            met = limit_met.any()
        elif kind[i] == "stop":
            met = stop_met.any()
        else:
            met = stop_met.any() and limit_met[int(np.argmax(stop_met)):].any()
        assert met, f"order {fills['order_id'][int(i)]} filled on closes that never met it"


@pytest.mark.parametrize("profile", ["tradegap", "vectorbt", "backtrader", "zipline"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_resting_orders_keep_their_invariants(profile, seed):
    rng = np.random.default_rng(seed)
    prices = random_bars(rng, n_bars=25, n_assets=3)
    if profile == "zipline" and rng.random() < 0.5:  # thin: the 10% cap binds (5–30 shares)
        prices = prices.with_columns(volume=pl.lit(float(rng.integers(50, 300))))
    orders = random_orders(rng, prices, n_rows=int(rng.integers(4, 25)))
    config = random_config(rng, profile)
    result = run_orders(prices, orders, config).validate()
    check_invariants(result, prices, config)


@pytest.mark.parametrize("profile", ["tradegap", "backtrader"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_an_order_table_placed_in_the_compiled_loop_equals_one_placed_by_the_strategy_api(
        profile, seed):
    rng = np.random.default_rng(seed)
    prices = random_bars(rng, n_bars=20, n_assets=2)
    orders = random_orders(rng, prices, n_rows=int(rng.integers(4, 20)))
    brackets = orders.with_row_index("row").with_columns(
        id=pl.col("row").cast(pl.String),
        parent=pl.when((pl.col("row") > 0) & (pl.col("type").is_in(["limit", "stop"]))
                       & (pl.col("row") % 3 == 0)).then((pl.col("row") - 1).cast(pl.String)))
    parent_ok = brackets.join(brackets.select(parent="id", p_asset="asset", p_type="type",
                                              p_parent="parent"), on="parent", how="left")
    orders = brackets.with_columns(parent=pl.when(
        (parent_ok["p_asset"] == pl.col("asset")) & parent_ok["p_type"].is_in(["market", "limit"])
        & parent_ok["p_parent"].is_null() & (pl.col("timestamp") == pl.col("timestamp")))
        .then(pl.col("parent"))).with_columns(
        group=pl.when(pl.col("parent").is_null()).then(pl.col("group"))).drop("row")
    config = random_config(rng, profile)
    config = config.with_(max_weight=0.4 if rng.random() < 0.5 else 0.0)
    market = Market.from_bars(load_prices(prices))
    table = load_orders(orders, market)
    compiled = BacktestResult(simulate(market, OrderTable(table), config))
    called = BacktestResult(simulate(market, OrderTable(table, compiled=False), config))
    assert compiled.orders.equals(called.orders)
    assert compiled.fills.equals(called.fills)
