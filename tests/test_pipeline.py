"""The Dagster pipeline: definitions, assets on tiny frames, in-process runs, gates, sweep.

Runs use small generated data so the whole graph materializes in seconds.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetSelection,
    DagsterInstance,
    Definitions,
    asset,
    build_asset_context,
    materialize,
)

from assets.backtests import backtest_engine
from assets.groups import SWEEP
from assets.resources import ArtifactStore, ExecutionSettings
from assets.sweeps import CHUNKS, SWEEP_ASSET_NAMES, SWEEP_CHUNKS, SweepGrid, sweep_summary
from assets.types import BarsFrame
from engine import BacktestConfig, run_backtest
from engine.data.synthetic import generate_market
from pipelines.definitions import ASSETS, CHECKS, defs, resources
from pipelines.jobs import nightly_regression
from tests.native_logs import vectorbt_log

pytestmark = [pytest.mark.slow, pytest.mark.peers]

SMALL = {
    "ops": {
        "market_data": {"config": {"n_assets": 30, "n_days": 300, "seed": 1}},
        "signals": {"config": {"train_window": 60, "refit_every": 10}},
        "target_weights": {"config": {"top_k": 5, "every": 10}},
    }
}
MAIN = AssetSelection.all() - AssetSelection.groups(SWEEP)


PEERS = ("vectorbt", "backtrader", "zipline", "nautilus")


def run_main(base: Path, run_config: dict = SMALL, selection=MAIN):
    return materialize([*ASSETS, *CHECKS], selection=selection, resources=resources(str(base)),
                       run_config=run_config, instance=DagsterInstance.ephemeral(),
                       raise_on_error=False)


def checks_of(result) -> dict[str, bool]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
            for e in result.get_asset_check_evaluations()}


def test_definitions_load_and_validate():
    Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"market_data", "features", "signals", "target_weights", "backtest_engine",
            "backtest_reference", "performance_summary", "peer_engines", *SWEEP_ASSET_NAMES,
            "sweep_summary"} <= keys


def test_the_nightly_schedule_runs_the_regression_job_at_two_utc():
    schedule = defs.resolve_schedule_def("nightly_regression_schedule")
    assert schedule.job_name == "nightly_regression"
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "UTC")
    job = defs.resolve_job_def("nightly_regression")
    assert {"market_data", "backtest_engine", "performance_summary"} <= {
        node.name for node in job.graph.node_defs}


def test_the_backtest_asset_called_directly_returns_validated_tables():
    bars = generate_market(n_assets=6, n_days=40, seed=3)
    weights = (bars.filter(pl.col("timestamp") == bars["timestamp"].min())
               .select("timestamp", "asset").head(3).with_columns(weight=pl.lit(0.3)))
    context = build_asset_context(resources={"settings": ExecutionSettings(fees=0.0)})
    tables = backtest_engine(context, bars, weights)
    assert set(tables) >= {"fills", "orders", "positions", "equity", "trades", "metrics",
                           "fingerprint"}
    assert tables["fills"].height == 3
    assert BarsFrame.type_check(None, bars).success


def test_the_main_graph_materializes_with_every_check_passing(tmp_path):
    result = run_main(tmp_path)
    assert result.success
    checks = checks_of(result)
    assert checks["backtest_reference:engine_parity"] is True
    assert checks["backtest_engine:ledger_identities"] is True
    assert checks["backtest_reference:ledger_identities"] is True
    assert checks["trade_gap:no_unexplained_gap"] is True
    gaps = pl.read_parquet(tmp_path / "trade_gap" / "summary.parquet")
    assert "backtest_reference vs backtest_engine" in gaps["pair"].to_list()
    assert set(gaps["verdict"]) == {"identical"}
    for peer in PEERS:
        assert checks[f"backtest_{peer}:parity_with_engine"] is True
        assert f"backtest_{peer} vs backtest_engine_{peer}" in gaps["pair"].to_list()
    for table in ("fills", "orders", "positions", "equity", "trades", "metrics"):
        assert (tmp_path / "backtest_engine" / f"{table}.parquet").is_file()
        assert (tmp_path / "backtest_reference" / f"{table}.parquet").is_file()
    summary = pl.read_parquet(tmp_path / "performance_summary.parquet")
    assert summary["backtest"].to_list()[:2] == ["backtest_engine", "backtest_reference"]
    assert {f"backtest_{peer}" for peer in PEERS} <= set(summary["backtest"])
    assert summary["final_equity"][0] == pytest.approx(summary["final_equity"][1], rel=1e-9)
    assert (tmp_path / "performance_summary.png").read_bytes()[:4] == b"\x89PNG"


def test_an_invalid_frame_is_never_written(tmp_path):
    @asset(name="market_data", dagster_type=BarsFrame)
    def broken_market_data() -> pl.DataFrame:
        return generate_market(n_assets=3, n_days=5, seed=1).with_columns(close=pl.lit(-1.0))

    result = materialize([broken_market_data], resources=resources(str(tmp_path)),
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    assert not (tmp_path / "market_data.parquet").exists()


def test_bad_user_data_fails_its_asset_keeps_the_last_artifact_and_stops_downstream(tmp_path):
    assert run_main(tmp_path).success
    good = (tmp_path / "market_data.parquet").read_bytes()
    engine_before = (tmp_path / "backtest_engine" / "fills.parquet").read_bytes()

    bad = tmp_path / "prices.csv"
    generate_market(n_assets=5, n_days=50, seed=2).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("close")).alias("close")
    ).write_csv(bad)
    config = {"ops": {**SMALL["ops"],
                      "market_data": {"config": {"prices_paths": [str(bad)]}}}}
    result = run_main(tmp_path, config)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "market_data"
    message = str(failure.event_specific_data.error.to_string())
    assert "prices.csv: column 'close'" in message and "rows 4" in message
    assert (tmp_path / "market_data.parquet").read_bytes() == good
    assert (tmp_path / "backtest_engine" / "fills.parquet").read_bytes() == engine_before
    ran = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert ran == {"market_data", "peer_engines"}  # peer_engines reads no data


def test_user_signals_naming_unknown_assets_fail_the_signals_asset(tmp_path):
    signals_file = tmp_path / "signals.csv"
    pl.DataFrame({"timestamp": ["2010-01-05"], "asset": ["NOT_AN_ASSET"], "score": [1.0]}
                 ).write_csv(signals_file)
    config = {"ops": {**SMALL["ops"],
                      "signals": {"config": {"signals_path": str(signals_file)}}}}
    result = run_main(tmp_path, config)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "signals"
    assert "signals.csv: column 'asset'" in failure.event_specific_data.error.to_string()


SMALL_GRID = SweepGrid(top_k=[3, 6], every=[5, 21], fees_bp=[0.0, 25.0],
                       fills=["next_open", "next_close"])


def test_the_sweep_runs_its_grid_in_chunks_and_ranks_every_point(tmp_path):
    upstream = {"ops": {k: SMALL["ops"][k] for k in ("market_data", "signals")}}
    assert run_main(tmp_path, upstream, AssetSelection.assets("market_data", "features",
                                                              "signals")).success
    result = materialize([*ASSETS], selection=[*SWEEP_CHUNKS, sweep_summary],
                         resources={**resources(str(tmp_path)), "sweep_grid": SMALL_GRID},
                         instance=DagsterInstance.ephemeral())
    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert steps == {*SWEEP_ASSET_NAMES, "sweep_summary"}  # one step per chunk, not per point
    points = SMALL_GRID.points()
    chunks = [pl.read_parquet(tmp_path / name / "points.parquet") for name in SWEEP_ASSET_NAMES]
    assert [chunk.height for chunk in chunks] == [len(points[i::CHUNKS]) for i in range(CHUNKS)]
    summary = pl.read_parquet(tmp_path / "sweep_summary.parquet")
    assert sorted(summary["backtest"]) == sorted(point.label for point in points)
    assert summary["sharpe"].drop_nulls().is_sorted(descending=True)
    by_point = {row["backtest"]: row for row in summary.iter_rows(named=True)}
    free = by_point["k6 every21 fees=0.0 fill=next_open"]
    costly = by_point["k6 every21 fees=0.0025 fill=next_open"]
    assert free["n_fills"] > 0 and costly["final_equity"] < free["final_equity"]
    market = pl.read_parquet(tmp_path / "market_data.parquet")
    signals = pl.read_parquet(tmp_path / "signals.parquet")
    from engine.research.weights import top_k_weights

    alone = run_backtest(market, top_k_weights(signals, 6, 21),
                         BacktestConfig(fees=0.0025, fill="next_open"))
    assert costly["final_equity"] == alone.final_equity
    equity = pl.concat([pl.read_parquet(tmp_path / name / "equity.parquet")
                        for name in SWEEP_ASSET_NAMES])
    curve = equity.filter(pl.col("backtest") == "k6 every21 fees=0.0025 fill=next_open")
    assert curve["equity"].to_list() == alone.equity["equity"].to_list()


def test_an_empty_grid_fails_the_summary_with_the_reason(tmp_path):
    upstream = {"ops": {k: SMALL["ops"][k] for k in ("market_data", "signals")}}
    assert run_main(tmp_path, upstream, AssetSelection.assets("market_data", "features",
                                                              "signals")).success
    result = materialize([*ASSETS], selection=[*SWEEP_CHUNKS, sweep_summary],
                         resources={**resources(str(tmp_path)),
                                    "sweep_grid": SweepGrid(top_k=[])},
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["sweep_summary"]
    assert "the sweep grid has no points" in str(failures[0].event_specific_data.error)


def baseline_check(result, backtest: str = "backtest_engine"):
    return next(e for e in result.get_asset_check_evaluations()
                if e.asset_key.to_user_string() == backtest
                and e.check_name == "matches_baseline")


def test_without_an_accepted_baseline_the_check_says_so_and_does_not_pass(tmp_path):
    evaluation = baseline_check(run_main(tmp_path))
    assert evaluation.passed is False
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.description.startswith("no baseline: nothing accepted to compare with")
    assert evaluation.metadata["state"].value == "no baseline"


def test_a_result_that_moves_with_unchanged_inputs_fails_the_baseline_check(tmp_path):
    assert run_main(tmp_path).success
    store = ArtifactStore(base_dir=str(tmp_path))
    store.accept_baseline("backtest_engine")

    again = run_main(tmp_path)
    assert checks_of(again)["backtest_engine:matches_baseline"] is True
    assert baseline_check(again).metadata["state"].value == "unchanged"

    accepted = store.baseline_folder("backtest_engine") / "fills.parquet"
    fills = pl.read_parquet(accepted)
    fills.with_columns(pl.col("quantity") * 1.001).write_parquet(accepted)
    evaluation = baseline_check(run_main(tmp_path))
    assert evaluation.passed is False
    assert evaluation.severity == AssetCheckSeverity.ERROR
    assert "results moved while inputs and settings did not" in evaluation.description
    assert evaluation.metadata["state"].value == "moved"


def test_changed_settings_are_reported_not_failed_by_the_baseline_check(tmp_path):
    assert run_main(tmp_path).success
    ArtifactStore(base_dir=str(tmp_path)).accept_baseline("backtest_engine")
    result = materialize(
        [*ASSETS, *CHECKS], selection=MAIN, run_config=SMALL,
        resources={**resources(str(tmp_path)), "settings": ExecutionSettings(fees=0.002)},
        instance=DagsterInstance.ephemeral(),
    )
    evaluation = baseline_check(result)
    assert evaluation.passed is True
    assert "inputs or settings changed" in evaluation.description
    assert evaluation.metadata["state"].value == "inputs changed"


def test_make_run_job_is_the_nightly_regression():
    assert nightly_regression.name == "nightly_regression"


def drift_the_reference(monkeypatch) -> None:
    """Make the reference's fills 1% larger than the engine's (a parity failure)."""
    import assets.backtests
    from engine.reference import run_reference

    def drifting_reference(prices, weights, config):
        result = run_reference(prices, weights, config)
        fills = result.fills.with_columns(pl.col("quantity") * 1.01)
        return type(result)(fills, result.orders, result.equity, result.final_equity,
                            result.rejections)

    monkeypatch.setattr(assets.backtests, "run_reference", drifting_reference)


def test_a_parity_failure_blocks_everything_downstream(tmp_path, monkeypatch):
    drift_the_reference(monkeypatch)
    result = run_main(tmp_path)
    assert checks_of(result)["backtest_reference:engine_parity"] is False
    ran = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "backtest_reference" in ran
    assert "performance_summary" not in ran and "trade_gap" not in ran


def test_your_own_engines_log_is_explained_against_the_reference(tmp_path):
    first = run_main(tmp_path, selection=AssetSelection.assets(
        "market_data", "features", "signals", "target_weights"))
    assert first.success
    market = pl.read_parquet(tmp_path / "market_data.parquet")
    weights = pl.read_parquet(tmp_path / "target_weights.parquet")
    theirs = run_backtest(market, weights, BacktestConfig(fees=0.002)).fills
    theirs.drop("order_id").write_csv(tmp_path / "my_engine.csv")
    config = {"ops": {**SMALL["ops"], "backtest_external": {
        "config": {"fills_path": str(tmp_path / "my_engine.csv")}}}}
    result = run_main(tmp_path, run_config=config)
    assert result.success
    checks = checks_of(result)
    assert checks["trade_gap:external_log_explained"] is True
    gaps = pl.read_parquet(tmp_path / "trade_gap" / "summary.parquet")
    row = gaps.filter(pl.col("pair") == "backtest_external vs backtest_reference").row(
        0, named=True)
    assert row["verdict"] == "explained"
    assert row["first_cause"] == "fee"
    assert row["headline"].startswith("backtest_external charged other fees")
    assert (tmp_path / "trade_gap_reports"
            / "backtest_external_vs_backtest_reference.png").is_file()


def test_a_native_vectorbt_log_is_explained_in_the_nightly_report(tmp_path):
    first = run_main(tmp_path, selection=AssetSelection.assets(
        "market_data", "features", "signals", "target_weights"))
    assert first.success
    market = pl.read_parquet(tmp_path / "market_data.parquet")
    weights = pl.read_parquet(tmp_path / "target_weights.parquet")
    log = vectorbt_log(market, weights, BacktestConfig.for_profile("vectorbt", fees=0.002),
                       tmp_path / "vbt_orders.csv")
    config = {"ops": {**SMALL["ops"], "backtest_external": {
        "config": {"fills_path": str(log), "format": "vectorbt"}}}}
    result = run_main(tmp_path, run_config=config)
    assert result.success
    source = [e.materialization.metadata["source"].value
              for e in result.get_asset_materialization_events()
              if e.asset_key.to_user_string() == "backtest_external"]
    assert source == [f"{log}, read as vectorbt records_readable"]
    gaps = pl.read_parquet(tmp_path / "trade_gap" / "summary.parquet")
    row = gaps.filter(pl.col("pair") == "backtest_external vs backtest_reference").row(
        0, named=True)
    assert row["first_cause"] == "fee"
    assert "fee" in row["root_causes"]


def test_risk_rules_in_the_run_config_reach_the_engine_and_the_reference(tmp_path):
    """The settings resource takes the stop settings like any other: the engine's exits show
    in its fills, and the reference, run with the same settings, agrees fill for fill."""
    run_config = {**SMALL, "resources": {"settings": {"config": {
        "stop_loss": 0.03, "take_profit": 0.05, "intrabar_path": "ohlc"}}}}
    selection = AssetSelection.assets("market_data", "features", "signals", "target_weights",
                                      "backtest_engine", "backtest_reference")
    result = run_main(tmp_path, run_config, selection=selection)
    assert result.success
    assert checks_of(result)["backtest_reference:engine_parity"]
    fills = pl.read_parquet(tmp_path / "backtest_engine" / "fills.parquet")
    assert {"stop_loss", "take_profit"} <= set(fills["trigger"].to_list())
