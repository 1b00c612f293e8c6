"""One source of settings: `BacktestConfig` defines every setting and default; the pipeline's
`ExecutionSettings` and the command line are generated from it. One rule for where
artifacts live: `--out`, else `$TRADEGAP_ARTIFACTS`, else `out/artifacts`, in every command.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from assets.resources import ARTIFACTS_ENV, ExecutionSettings, artifacts_dir, settings_fields
from engine import BacktestConfig
from pipelines import cli
from pipelines.cli import build_parser, config_from_args, main
from pipelines.definitions import resources

BACKTEST_ARGS = ["backtest", "--prices", "p.csv", "--weights", "w.csv", "--out", "o"]


def test_the_pipeline_cli_and_engine_defaults_are_one_set():
    from_cli = config_from_args(build_parser().parse_args(BACKTEST_ARGS))
    assert ExecutionSettings().config() == BacktestConfig() == from_cli


def test_every_engine_setting_is_a_pipeline_setting_with_its_default():
    fields = {field.name: field.default for field in dataclasses.fields(BacktestConfig)}
    resource = {name: info.default for name, info in ExecutionSettings.model_fields.items()}
    assert resource == fields


def test_every_engine_setting_but_the_profile_is_a_command_line_option():
    options = {action.dest for action in build_parser()._subparsers._group_actions[0]
               .choices["backtest"]._actions}
    assert {field.name for field in dataclasses.fields(BacktestConfig)} <= options


def test_a_setting_added_to_a_config_dataclass_becomes_a_resource_field():
    @dataclasses.dataclass(frozen=True)
    class Grown:
        fees: float = 0.0
        max_leverage: float | None = None
        label: str = "x"

    resource = settings_fields(Grown)
    assert {n: i.default for n, i in resource.model_fields.items()} == {
        "fees": 0.0, "max_leverage": None, "label": "x"}
    assert resource(max_leverage=2.0).max_leverage == 2.0


def test_command_line_settings_override_the_defaults():
    args = build_parser().parse_args([*BACKTEST_ARGS, "--fees", "0.002", "--cash", "5000",
                                      "--allow-short", "--periods-per-year", "52"])
    assert config_from_args(args) == BacktestConfig(fees=0.002, initial_cash=5000,
                                                    allow_short=True, periods_per_year=52)


def test_pipeline_settings_override_the_defaults():
    assert ExecutionSettings(fees=0.002, shares="integer").config() == BacktestConfig(
        fees=0.002, shares="integer")


def test_artifacts_follow_out_then_the_environment_then_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv(ARTIFACTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert artifacts_dir() == tmp_path / "out" / "artifacts"
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "shared"))
    assert artifacts_dir() == tmp_path / "shared"
    assert artifacts_dir("elsewhere") == tmp_path / "elsewhere" / "artifacts"
    assert Path(resources()["io_manager"].base_dir) == tmp_path / "shared"
    assert Path(resources()["alerts"].alerts_file) == tmp_path / "shared" / "alerts" / (
        "alerts.jsonl")


def materialized_backtest(base: Path, name: str = "backtest_engine") -> None:
    folder = base / name
    folder.mkdir(parents=True)
    pl.DataFrame({"fingerprint": ["abc123"]}).write_parquet(folder / "fingerprint.parquet")
    for table in ("fills", "equity"):
        pl.DataFrame({"x": [1.0]}).write_parquet(folder / f"{table}.parquet")


def test_accept_baseline_uses_tradegap_artifacts(monkeypatch, tmp_path, capsys):
    shared = tmp_path / "shared"
    materialized_backtest(shared)
    monkeypatch.setenv(ARTIFACTS_ENV, str(shared))
    monkeypatch.chdir(tmp_path)
    assert main(["accept-baseline", "backtest_engine"]) == 0
    assert (shared / "baselines" / "backtest_engine" / "fingerprint.txt").read_text() == (
        "abc123\n")
    assert not (tmp_path / "out").exists()
    assert str(shared) in capsys.readouterr().out


def test_accept_baseline_without_results_names_the_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "empty"))
    assert main(["accept-baseline", "backtest_engine"]) == 2
    assert f"{tmp_path / 'empty'}: no materialized backtest_engine" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "expected"), [
    (["run"], "shared"), (["run", "--out", "mine"], "mine/artifacts")])
def test_run_writes_where_the_rule_says(monkeypatch, tmp_path, argv, expected):
    import pipelines.run

    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "shared"))
    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr(pipelines.run, "run_main_job",
                        lambda base, **_: seen.append(base) or 0)
    assert cli.main(argv) == 0
    assert seen == [tmp_path / expected]
