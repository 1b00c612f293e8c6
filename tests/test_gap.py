"""Trade-gap analysis on honest configuration differences, by file and by Python call."""

from __future__ import annotations

import json

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.gap.analyze import Side, analyze
from engine.gap.report import render_markdown
from engine.gap.vocabulary import CAUSES, WHAT_WENT_WRONG, rule_switches
from engine.reference import Rules, rules_for
from engine.results.artifacts import MARKER
from engine.results.compare import Tolerance, canonical, join_sides
from pipelines.cli import main
from tests.builders import random_universe, top_k_weights

N_ASSETS, N_BARS = 24, 160


@pytest.fixture(scope="module")
def universe():
    prices, _, _ = random_universe(N_ASSETS, N_BARS, seed=5)
    return prices, top_k_weights(N_ASSETS, N_BARS, k=6, every=8, seed=5)


def gap(universe, config_a, config_b, with_weights=True):
    prices, weights = universe
    a, b = run_backtest(prices, weights, config_a), run_backtest(prices, weights, config_b)
    return analyze(Side(a.fills, a.equity, name="A"), Side(b.fills, b.equity, name="B"),
                   prices, weights if with_weights else None, config_a.initial_cash)


def test_identical_backtests_are_identical(universe):
    analysis = gap(universe, BacktestConfig(), BacktestConfig())
    assert analysis.summary["verdict"] == "identical"
    assert analysis.summary["first_divergence"] is None
    assert not analysis.gap_fills["divergent"].any()


@pytest.mark.parametrize(("change", "cause"), [
    ({"fees": 0.002}, "fee"),
    ({"slippage": 0.001}, "fill_price"),
    ({"shares": "integer"}, "rounding"),
    ({"fill": "same_close"}, "look_ahead"),
    ({"fill": "next_close"}, "timing"),
])
def test_one_setting_changed_is_named_and_explains_the_whole_gap(universe, change, cause):
    analysis = gap(universe, BacktestConfig(), BacktestConfig(**change))
    s = analysis.summary
    assert s["verdict"] == "explained"
    assert s["first_divergence"]["cause"] == cause
    assert set(s["root_causes"]) == {cause}
    assert abs(s["final_equity"]["gap"]) > 1.0
    assert abs(s["attribution"].get("unexplained", 0.0)) <= 0.01 * abs(s["final_equity"]["gap"])
    assert sum(s["attribution"].values()) == pytest.approx(s["final_equity"]["gap"], abs=1e-6)


def test_two_settings_changed_split_the_gap_between_them(universe):
    analysis = gap(universe, BacktestConfig(fees=0.001), BacktestConfig(slippage=0.002))
    attribution = analysis.summary["attribution"]
    assert attribution["fee"] > 0 > attribution["fill_price"]
    assert abs(attribution.get("unexplained", 0.0)) < 1e-6


def test_without_weights_the_visible_causes_are_still_named(universe):
    analysis = gap(universe, BacktestConfig(), BacktestConfig(fees=0.002), with_weights=False)
    first = analysis.summary["first_divergence"]
    assert first["cause"] == "fee"
    assert sum(analysis.summary["attribution"].values()) == pytest.approx(
        analysis.summary["final_equity"]["gap"], abs=1e-6)


def test_duplicated_rows_are_kept_apart_from_summed_quantities():
    t = pl.datetime(2024, 1, 1)
    rows = pl.DataFrame({"timestamp": [1, 1], "asset": ["X", "X"], "quantity": [2.0, 2.0],
                         "price": [10.0, 10.0], "fee": [0.1, 0.1]}).with_columns(timestamp=t)
    single = rows.head(1).with_columns(pl.col("quantity") * 2, pl.col("fee") * 2)
    assert canonical(rows)["rows"].to_list() == [2]
    assert join_sides(single, rows, Tolerance())["divergent"].to_list() == [True]


def test_every_switch_names_a_cause_the_report_can_put_in_words():
    for switch in rule_switches(Rules(), Rules(rounding="truncate")):
        assert switch.cause in CAUSES
        assert switch.cause in WHAT_WENT_WRONG
        assert switch.apply(Rules()) != Rules() or switch.changes == ()


def test_the_report_opens_with_what_went_wrong(universe):
    text = render_markdown(gap(universe, BacktestConfig(), BacktestConfig(fees=0.003)))
    first_sentence = text.splitlines()[2]
    assert first_sentence.startswith("**Explained.** B charged other fees")
    assert "100.0% of the" in first_sentence


def test_tradegap_gap_on_two_backtest_outputs_writes_four_outputs(universe, tmp_path):
    prices, weights = universe
    prices.write_parquet(tmp_path / "prices.parquet")
    weights.write_csv(tmp_path / "weights.csv")
    common = ["--prices", str(tmp_path / "prices.parquet"), "--weights",
              str(tmp_path / "weights.csv")]
    assert main(["backtest", *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["backtest", *common, "--out", str(tmp_path / "b"), "--shares", "integer"]) == 0
    assert main(["gap", "--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), *common,
                 "--out", str(tmp_path / "gap")]) == 0
    out = tmp_path / "gap"
    assert {p.name for p in out.iterdir()} == {"gap_fills.parquet", "gap_summary.json",
                                                "gap_report.md", "gap_report.png", MARKER}
    summary = json.loads((out / "gap_summary.json").read_text())
    assert summary["verdict"] == "explained"
    assert summary["first_divergence"]["cause"] == "rounding"
    assert set(summary) >= {"first_divergence", "causes", "attribution", "final_equity",
                            "verdict"}
    fills = pl.read_parquet(out / "gap_fills.parquet")
    assert set(fills["cause"].unique()) <= {*CAUSES, "identical"}


def test_tradegap_gap_refuses_a_fills_file_with_unknown_assets(universe, tmp_path, capsys):
    prices, _ = universe
    prices.write_parquet(tmp_path / "prices.parquet")
    bad = pl.DataFrame({"timestamp": [prices["timestamp"][0]], "asset": ["NOPE"],
                        "quantity": [1.0], "price": [1.0], "fee": [0.0]})
    bad.write_parquet(tmp_path / "b.parquet")
    code = main(["gap", "--a", str(tmp_path / "b.parquet"), "--b", str(tmp_path / "b.parquet"),
                 "--prices", str(tmp_path / "prices.parquet"), "--out", str(tmp_path / "g")])
    assert code == 2
    assert ("b.parquet: column 'asset': read as tradegap fills: unknown asset"
            in capsys.readouterr().err)
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize(("profile", "causes"), [
    ("backtrader", {"rounding", "sizing_basis", "cash_limit", "sequencing"}),
    ("zipline", {"timing", "fill_price", "fee", "rounding", "sizing_basis", "cash_limit",
                 "volume_limit"}),
    ("vectorbt", {"sizing_basis", "missing_fill"}),
])
def test_a_peer_profiles_results_are_explained_against_the_default(profile, causes):
    """What a user sees comparing tradegap with a peer's semantics: every difference named."""
    from engine.data.synthetic import generate_market, momentum_scores
    from engine.research.weights import top_k_weights as momentum_top_k

    market = generate_market(n_assets=30, n_days=250, seed=11)
    weights = momentum_top_k(momentum_scores(market), k=6, every=1)
    a_config = BacktestConfig(initial_cash=100_000.0, fees=0.001)
    b_config = BacktestConfig.for_profile(profile, initial_cash=100_000.0, fees=0.001)
    a, b = run_backtest(market, weights, a_config), run_backtest(market, weights, b_config)
    s = analyze(Side(a.fills, a.equity, rules_for(a_config), "tradegap"),
                Side(b.fills, b.equity, name=profile), market, weights, 100_000.0).summary
    assert s["verdict"] == "explained"
    assert set(s["root_causes"]) <= causes
    assert abs(s["attribution"].get("unexplained", 0.0)) <= 0.01 * abs(s["final_equity"]["gap"])
