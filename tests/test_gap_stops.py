"""Trade-gap analysis of backtests with risk rules: the stop semantics are named, at the bar
they first change a fill; a stop fill that no semantics produce is not explained by one."""

from __future__ import annotations

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market, momentum_scores
from engine.gap.analyze import Side, analyze
from engine.gap.vocabulary import CAUSES, WHAT_WENT_WRONG, rule_switches
from engine.reference import Bars, Rules, Simulation, decisions_from_weights, rules_for
from engine.research.weights import top_k_weights

pytestmark = pytest.mark.slow

STOP_CAUSES = {"intrabar_path", "stop_priority", "stop_base", "trail_reference",
               "stop_slippage", "gap_fill", "entry_bar_check"}
WIDE = {"stop_loss": 0.04, "take_profit": 0.06}
TIGHT = {"stop_loss": 0.01, "take_profit": 0.01}  # both reached in one bar now and then


@pytest.fixture(scope="module")
def market():
    prices = generate_market(n_assets=30, n_days=250, seed=5, gaps=True)
    return prices, top_k_weights(momentum_scores(prices), k=5, every=10)


def configs(base: dict, a: dict, b: dict, profile_b: str | None = None):
    config_a = BacktestConfig(fees=0.001, **base, **a)
    config_b = (BacktestConfig.for_profile(profile_b, fees=0.001, **base, **b) if profile_b
                else BacktestConfig(fees=0.001, **base, **b))
    return config_a, config_b


def analyzed(market, config_a, fills_a, fills_b, with_weights=True):
    prices, weights = market
    return analyze(Side(fills_a, rules=rules_for(config_a.to_dict()), name="A"),
                   Side(fills_b, name="B"), prices, weights if with_weights else None)


def first_divergent_bar(market, analysis) -> int:
    prices, _ = market
    stamps = prices["timestamp"].unique().sort().to_list()
    first = analysis.gap_fills.filter(pl.col("divergent"))["timestamp"].min()
    return stamps.index(first)


VECTORBT = {"stop_base", "stop_priority", "stop_slippage"}  # the profile's stop semantics
BACKTRADER = {"cash_limit", "rounding", "sizing_basis"}  # its sizing and screen, as without stops


@pytest.mark.parametrize(("base", "a", "b", "profile_b", "causes", "required"), [
    (WIDE, {}, {}, "vectorbt", VECTORBT, {"stop_base"}),
    (TIGHT, {}, {}, "vectorbt", VECTORBT, {"stop_base", "stop_priority"}),
    ({**WIDE, "slippage": 0.001}, {}, {}, "vectorbt", VECTORBT,
     {"stop_base", "stop_slippage"}),
    (TIGHT, {}, {"intrabar_path": "ohlc"}, None, {"intrabar_path"}, {"intrabar_path"}),
    (TIGHT, {}, {"intrabar_path": "olhc"}, None, {"intrabar_path"}, {"intrabar_path"}),
    (TIGHT, {"intrabar_path": "ohlc"}, {}, None, {"intrabar_path"}, {"intrabar_path"}),
    (TIGHT, {}, {"stop_first": True}, None, {"stop_priority"}, {"stop_priority"}),
    (WIDE, {}, {"stop_base": "close"}, None, {"stop_base"}, {"stop_base"}),
    ({"trailing_stop": 0.05}, {}, {"trail_source": "close"}, None, {"trail_reference"},
     {"trail_reference"}),
    ({**WIDE, "max_bars": 7}, {}, {}, "vectorbt", VECTORBT, {"stop_base"}),
    (WIDE, {}, {}, "backtrader", BACKTRADER | {"stop_priority"}, BACKTRADER),
    ({"trailing_stop": 0.05}, {}, {}, "backtrader", BACKTRADER | {"trail_reference"},
     BACKTRADER | {"trail_reference"}),
], ids=["vectorbt", "vectorbt-tight", "vectorbt-slippage", "nearest-ohlc", "nearest-olhc",
        "ohlc-nearest", "stop-first", "stop-base", "trail-source", "vectorbt-max-bars",
        "backtrader", "backtrader-trailing"])
def test_stop_semantics_are_named_at_their_onset(market, base, a, b, profile_b, causes,
                                                 required):
    prices, weights = market
    config_a, config_b = configs(base, a, b, profile_b)
    run_a, run_b = run_backtest(prices, weights, config_a), run_backtest(prices, weights,
                                                                         config_b)
    analysis = analyzed(market, config_a, run_a.fills, run_b.fills)
    s = analysis.summary
    assert s["verdict"] == "explained", [(f.cause, f.onset) for f in analysis.faults]
    assert required <= set(s["root_causes"]) <= causes
    assert required <= {f.cause for f in analysis.faults} <= causes
    assert min(f.onset for f in analysis.faults) == first_divergent_bar(market, analysis)
    assert abs(s["attribution"].get("unexplained", 0.0)) <= 0.01 * abs(
        s["final_equity"]["gap"]) + 1e-6
    # the same logs without their `trigger` column (another engine's) read the same
    bare = analyzed(market, config_a, run_a.fills.drop("trigger"),
                    run_b.fills.drop("trigger"))
    assert bare.summary["verdict"] == "explained"
    assert {f.cause for f in bare.faults} <= causes


@pytest.mark.parametrize(("b", "profile_b", "cause"), [
    ({}, "vectorbt", "stop_base"),
    ({"stop_base": "close"}, None, "stop_base"),
])
@pytest.mark.parametrize("trigger", [True, False])
def test_without_weights_exits_are_not_read_as_decisions(market, b, profile_b, cause,
                                                         trigger):
    """Decisions inferred from A's book leave A's exits out: its `trigger` column, or
    without it, the rows that flatten a position where A's own exits fill."""
    prices, weights = market
    config_a, config_b = configs(WIDE, {}, b, profile_b)
    fills_a = run_backtest(prices, weights, config_a).fills
    fills_b = run_backtest(prices, weights, config_b).fills
    if not trigger:
        fills_a, fills_b = fills_a.drop("trigger"), fills_b.drop("trigger")
    analysis = analyzed(market, config_a, fills_a, fills_b, with_weights=False)
    assert analysis.summary["verdict"] == "explained"
    assert cause in {f.cause for f in analysis.faults} <= VECTORBT
    assert min(f.onset for f in analysis.faults) == first_divergent_bar(market, analysis)


def reference_fills(market, rules: Rules) -> pl.DataFrame:
    """A fill log from the reference under `rules` (no trigger column: another engine)."""
    prices, weights = market
    bars = Bars.from_frame(prices)
    sim = Simulation(bars, decisions_from_weights(bars, weights), rules, 1_000_000.0).run()
    return pl.DataFrame([(bars.timestamps[t], a, q, p, f) for t, a, q, p, f, _ in sim.fills],
                        orient="row", schema={"timestamp": prices.schema["timestamp"],
                                              "asset": pl.String, "quantity": pl.Float64,
                                              "price": pl.Float64, "fee": pl.Float64})


@pytest.mark.parametrize(("change", "cause"), [
    ({"gap_fill": "level"}, "gap_fill"),
    ({"entry_bar_check": True}, "entry_bar_check"),
])
def test_departures_no_profile_takes_are_named(market, change, cause):
    """An engine that fills a gapped exit at its level, or checks exits on the entry bar."""
    prices, weights = market
    config_a, _ = configs(WIDE, {}, {})
    trusted = rules_for(config_a.to_dict())
    run_a = run_backtest(prices, weights, config_a)
    analysis = analyzed(market, config_a, run_a.fills,
                        reference_fills(market, trusted.with_(**change)))
    assert analysis.summary["verdict"] == "explained"
    assert {f.cause for f in analysis.faults} == {cause}
    assert min(f.onset for f in analysis.faults) == first_divergent_bar(market, analysis)


def vectorbt_pair(market):
    prices, weights = market
    config_a, config_b = configs(WIDE, {}, {}, "vectorbt")
    return (config_a, run_backtest(prices, weights, config_a).fills,
            run_backtest(prices, weights, config_b).fills)


def test_stop_fills_moved_by_one_percent_are_not_a_stop_semantics(market):
    config_a, fills_a, fills_b = vectorbt_pair(market)
    stops = fills_b.with_row_index("_row").filter(pl.col("trigger") == "stop_loss")
    moved = set(stops["_row"].to_list()[5:8])
    fills_b = fills_b.with_row_index("_row").with_columns(
        price=pl.when(pl.col("_row").is_in(moved)).then(pl.col("price") * 1.01)
        .otherwise(pl.col("price"))).drop("_row")
    analysis = analyzed(market, config_a, fills_a, fills_b)
    assert analysis.summary["verdict"] != "explained"
    touched = fills_b.with_row_index("_row").filter(pl.col("_row").is_in(moved))
    labels = analysis.gap_fills.join(touched.select("timestamp", "asset"),
                                     on=["timestamp", "asset"])
    assert labels.height == len(moved)
    assert all("unexplained" in c.split("+") for c in labels["cause"].to_list())
    assert not any(set(c.split("+")) & STOP_CAUSES for c in labels["cause"].to_list())


def test_a_missing_stop_exit_is_not_a_stop_semantics(market):
    config_a, fills_a, fills_b = vectorbt_pair(market)
    stops = fills_b.with_row_index("_row").filter(pl.col("trigger") == "stop_loss").join(
        fills_a.select("timestamp", "asset"), on=["timestamp", "asset"])  # a key A has too
    lost = stops.row(3, named=True)
    fills_b = fills_b.with_row_index("_row").filter(pl.col("_row") != lost["_row"]).drop("_row")
    analysis = analyzed(market, config_a, fills_a, fills_b)
    assert analysis.summary["verdict"] != "explained"
    row = analysis.gap_fills.filter((pl.col("timestamp") == lost["timestamp"])
                                    & (pl.col("asset") == lost["asset"]))
    assert row["cause"].to_list() == ["unexplained"]


def test_stop_switches_only_with_position_rules():
    plain = {s.cause for s in rule_switches(Rules(), Rules())}
    assert not plain & STOP_CAUSES
    stops = rule_switches(Rules(stop_loss=0.05, take_profit=0.1, trailing_stop=0.05),
                          Rules())
    assert {s.cause for s in stops} >= STOP_CAUSES
    assert not STOP_CAUSES - set(CAUSES)
    assert not STOP_CAUSES - set(WHAT_WENT_WRONG)


def test_vectorbt_rules_fill_stops_without_slippage():
    assert rules_for({"profile": "vectorbt"}).stop_slippage is False
    assert rules_for({}).stop_slippage is True


def test_a_take_profit_preferred_over_a_gapped_stop_is_stop_priority(market):
    """The third member of the stop-priority family: the take-profit whenever the bar
    reaches it, even when the open gapped past the stop."""
    config_a, _ = configs(TIGHT, {}, {})
    trusted = rules_for(config_a.to_dict())
    run_a = run_backtest(market[0], market[1], config_a)
    analysis = analyzed(market, config_a, run_a.fills,
                        reference_fills(market, trusted.with_(take_profit_first=True)))
    assert analysis.summary["verdict"] == "explained"
    assert {f.cause for f in analysis.faults} == {"stop_priority"}
    assert [f.words for f in analysis.faults] == [
        "take-profit before stop-loss in a bar that reaches both, even when the open "
        "gapped past the stop"]
    assert min(f.onset for f in analysis.faults) == first_divergent_bar(market, analysis)
