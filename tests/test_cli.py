"""`tradegap generate` and `tradegap backtest` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from pipelines.cli import main

OUTPUTS = {"fills.parquet", "orders.parquet", "positions.parquet", "equity.parquet",
           "trades.parquet", "metrics.json"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    prices, weights = folder / "prices.parquet", folder / "weights.csv"
    assert main(["generate", "--prices", str(prices), "--weights", str(weights),
                 "--assets", "40", "--days", "300", "--top", "5", "--every", "10"]) == 0
    return prices, weights


def test_backtest_writes_six_outputs_equal_to_the_python_call(data, tmp_path):
    prices, weights = data
    out = tmp_path / "run"
    code = main(["backtest", "--prices", str(prices), "--weights", str(weights), "--out",
                 str(out), "--fees", "0.001", "--shares", "integer", "--cash", "250000"])
    assert code == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    config = BacktestConfig(fees=0.001, shares="integer", initial_cash=250_000)
    expected = run_backtest(prices, weights, config)
    assert pl.read_parquet(out / "fills.parquet").equals(expected.fills)
    assert pl.read_parquet(out / "equity.parquet").equals(expected.equity)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"] == config.to_dict()
    assert saved["metrics"]["final_equity"] == pytest.approx(expected.final_equity, rel=1e-15)


def test_bad_input_is_one_line_exit_2_and_leaves_the_output_untouched(data, tmp_path):
    prices, weights = data
    out = tmp_path / "run"
    assert main(["backtest", "--prices", str(prices), "--weights", str(weights),
                 "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    broken = tmp_path / "broken.csv"
    pl.read_parquet(prices).with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(-1.0).otherwise(pl.col("close"))
        .alias("close")
    ).write_csv(broken)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "backtest", "--prices", str(broken),
         "--weights", str(weights), "--out", str(out)],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "broken.csv" in lines[0] and "'close'" in lines[0] and "8" in lines[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_bad_settings_are_refused_as_bad_input(data, tmp_path, capsys):
    prices, weights = data
    code = main(["backtest", "--prices", str(prices), "--weights", str(weights),
                 "--out", str(tmp_path / "x"), "--fees", "-1"])
    assert code == 2
    assert "fees" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_allow_leverage_with_max_leverage_buys_beyond_the_cash(tmp_path):
    """Two assets at 0.75 each: with --allow-leverage --max-leverage 1.5 both fill whole."""
    from tests.builders import bars, weights

    prices, targets = tmp_path / "prices.parquet", tmp_path / "weights.parquet"
    bars([[10.0, 40.0], [20.0, 50.0], [25.0, 40.0]],
         [[12.0, 45.0], [22.0, 44.0], [24.0, 48.0]]).write_parquet(prices)
    weights({0: {"A0": 0.75, "A1": 0.75}}).write_parquet(targets)
    out = tmp_path / "run"
    assert main(["backtest", "--prices", str(prices), "--weights", str(targets), "--out",
                 str(out), "--cash", "1000", "--allow-leverage", "--max-leverage", "1.5"]) == 0
    fills = pl.read_parquet(out / "fills.parquet")
    assert fills["quantity"].to_list() == [750.0 / 20.0, 750.0 / 50.0]
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["allow_leverage"], config["max_leverage"]) == (True, 1.5)
