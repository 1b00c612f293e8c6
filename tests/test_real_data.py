"""Real data as it comes: vendor row order, closes only (a constant volume), too little
history; `tradegap run` on the user's files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from engine.data.loading import load_prices
from engine.errors import InputError
from engine.research.features import DegenerateFeature, compute_features
from engine.research.signals import walk_forward_scores
from engine.research.weights import top_k_weights
from pipelines.cli import main
from pipelines.definitions import ASSETS, CHECKS, resources
from pipelines.run_config import user_run_config

pytestmark = pytest.mark.slow

SP500 = Path(__file__).parent / "data" / "sp500_closes.csv"
VOLUME = 1_000_000.0  # what a closes-only data set gets: one volume for every bar


def closes_only(closes: pl.DataFrame) -> pl.DataFrame:
    """Bars from closes alone: every price the close, one constant volume; row order kept."""
    close = pl.col("close").cast(pl.Float64)
    return closes.select("timestamp", "asset", open=close, high=close, low=close, close=close,
                         volume=pl.lit(VOLUME))


@pytest.fixture(scope="module")
def sp500_bars() -> pl.DataFrame:
    return closes_only(pl.read_csv(SP500))


def test_the_sp500_extract_is_grouped_by_asset_and_loads_sorted(sp500_bars):
    assert sp500_bars["asset"][0] == sp500_bars["asset"][1]  # the vendor layout
    loaded = load_prices(sp500_bars)
    assert loaded.height == sp500_bars.height == 8000
    assert loaded.equals(loaded.sort("timestamp", "asset"))


def test_a_constant_volume_drops_its_feature_with_a_warning_and_scores_the_rest(sp500_bars):
    features = compute_features(load_prices(sp500_bars))
    with pytest.warns(DegenerateFeature, match=r"feature volume_z dropped: no value on any row"):
        scores = walk_forward_scores(features)
    assert scores.height > 0
    assert scores["score"].is_finite().all()


def test_a_feature_with_no_variance_is_dropped_by_name(sp500_bars):
    features = compute_features(load_prices(sp500_bars)).with_columns(flat=pl.lit(2.0))
    with pytest.warns(DegenerateFeature) as warned:
        walk_forward_scores(features)
    messages = {str(w.message) for w in warned}
    assert "feature flat dropped: no variance (every row is 2)" in messages


def test_no_training_rows_says_why(sp500_bars):
    features = compute_features(load_prices(sp500_bars))
    with pytest.raises(InputError) as raised:
        walk_forward_scores(features, feature_columns=["ret_1", "volume_z"])
    assert str(raised.value) == (
        "signals: no training rows: every row has a null feature (volume_z is null on 8000 "
        "of 8000 rows)")
    with (pytest.warns(DegenerateFeature),
          pytest.raises(InputError, match=r"^signals: too few training rows: at most 20 rows")):
        walk_forward_scores(features, train_window=1, min_train_rows=100)


def test_no_finite_score_is_no_target_weights():
    scores = pl.DataFrame({"timestamp": [None], "asset": ["A"], "score": [float("nan")]},
                          schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                                  "score": pl.Float64})
    with pytest.raises(InputError, match="no target weights: none of the 1 score rows"):
        top_k_weights(scores, k=2, every=1)


def test_too_little_history_fails_the_signals_asset_not_a_later_step(tmp_path, sp500_bars):
    short = tmp_path / "short.csv"
    first_days = sp500_bars["timestamp"].unique().sort().head(100)
    sp500_bars.filter(pl.col("asset").is_in(["AAPL", "KO", "XOM"]),
                      pl.col("timestamp").is_in(first_days.implode())).write_csv(short)
    result = materialize([*ASSETS, *CHECKS], selection=["market_data", "features", "signals",
                                                        "target_weights", "backtest_engine"],
                         resources=resources(str(tmp_path / "artifacts")),
                         run_config=user_run_config(prices=str(short)),
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["signals"]
    assert "signals: too few training rows: at most" in (
        failures[0].event_specific_data.error.to_string())
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert started == {"market_data", "features", "signals"}


def test_tradegap_run_takes_closes_only_real_prices_and_a_run_config(tmp_path, sp500_bars,
                                                                       capsys):
    prices = tmp_path / "sp500.csv"
    sp500_bars.write_csv(prices)
    config = tmp_path / "run.yaml"
    config.write_text("ops:\n  target_weights:\n    config:\n      top_k: 5\n      every: 10\n")
    out = tmp_path / "out"
    assert main(["run", "--prices", str(prices), "--config", str(config), "--out", str(out)]) == 0
    base = next(p.parent for p in out.rglob("market_data.parquet"))
    bars = pl.read_parquet(base / "market_data.parquet")
    assert bars.height == 8000 and set(bars["asset"]) == set(sp500_bars["asset"])
    weights = pl.read_parquet(base / "target_weights.parquet")
    assert weights.height > 0
    assert weights.group_by("timestamp").len()["len"].max() == 5
    fills = pl.read_parquet(base / "backtest_engine" / "fills.parquet")
    assert fills.height > 0 and set(fills["asset"]) <= set(sp500_bars["asset"])
    printed = capsys.readouterr().out
    assert "signals warning: feature volume_z dropped: no value on any row" in printed
    assert "parity engine vs reference: PASSED" in printed


def test_tradegap_run_trades_the_users_weights_without_the_model(tmp_path, sp500_bars):
    prices = tmp_path / "sp500.csv"
    sp500_bars.write_csv(prices)
    first = sp500_bars["timestamp"].sort()[0]
    weights = tmp_path / "weights.csv"
    pl.DataFrame({"timestamp": [first, first], "asset": ["KO", "XOM"], "weight": [0.5, 0.5]}
                 ).write_csv(weights)
    config = user_run_config(prices=str(prices), weights=str(weights))
    assert config["ops"]["signals"]["config"] == {"skip": True}
    assert config["ops"]["target_weights"]["config"]["weights_path"] == str(weights.resolve())
    result = materialize([*ASSETS, *CHECKS], selection=["market_data", "features", "signals",
                                                        "target_weights", "backtest_engine"],
                         resources=resources(str(tmp_path / "artifacts")), run_config=config,
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    fills = pl.read_parquet(tmp_path / "artifacts" / "backtest_engine" / "fills.parquet")
    assert set(fills["asset"]) == {"KO", "XOM"}


def test_run_flags_are_checked_in_one_line(tmp_path, capsys):
    assert main(["run", "--prices", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"tradegap: error: missing.csv: file not found: {tmp_path / 'missing.csv'}")
    bad = tmp_path / "run.yaml"
    bad.write_text("- a list\n")
    assert main(["run", "--config", str(bad)]) == 2
    assert "run.yaml: a run config is a mapping" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--weights", "w.csv", "--signals", "s.csv"])


def test_the_signals_asset_names_the_dropped_feature_in_its_metadata(tmp_path, sp500_bars):
    prices = tmp_path / "sp500.csv"
    sp500_bars.write_csv(prices)
    result = materialize([*ASSETS, *CHECKS], selection=["market_data", "features", "signals"],
                         resources=resources(str(tmp_path / "artifacts")),
                         run_config=user_run_config(prices=str(prices)),
                         instance=DagsterInstance.ephemeral())
    [signals] = [m for m in result.asset_materializations_for_node("signals")]
    assert signals.metadata["dropped_features"].value == (
        "feature volume_z dropped: no value on any row (null or NaN throughout)")
    assert signals.metadata["scored_bars"].value > 0
