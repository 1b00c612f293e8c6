"""`tradegap generate` and `tradegap backtest` as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest
from engine.results.artifacts import MARKER
from pipelines.cli import main

OUTPUTS = {"fills.parquet", "orders.parquet", "positions.parquet", "equity.parquet",
           "trades.parquet", "metrics.json", MARKER}


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


def test_an_order_table_backtests_like_run_orders_and_fills_say_what_fired(data, tmp_path):
    """A buy at the first close, then a stop-loss and a take-profit on it in one OCO group:
    the CLI writes what `run_orders` returns, and the exit's fill names its trigger."""
    from engine import run_orders

    prices, _ = data
    bars = pl.read_parquet(prices).filter(pl.col("asset") == pl.col("asset").min())
    first, close = bars["timestamp"][0], bars["close"][0]
    orders = pl.DataFrame({
        "timestamp": [first] * 3, "asset": [bars["asset"][0]] * 3,
        "type": ["market", "stop", "limit"], "quantity": [100.0, -100.0, -100.0],
        "limit_price": [None, None, close * 1.08], "stop_price": [None, close * 0.92, None],
        "group": [None, "exit", "exit"],
    })
    table = tmp_path / "orders.csv"
    orders.write_csv(table)
    out = tmp_path / "run"
    assert main(["backtest", "--prices", str(prices), "--orders", str(table), "--out",
                 str(out), "--fees", "0.001"]) == 0
    fills = pl.read_parquet(out / "fills.parquet")
    expected = run_orders(prices, orders, BacktestConfig(fees=0.001)).fills
    assert fills.equals(expected)
    assert fills["trigger"].to_list()[0] == "market"
    assert fills.height == 2 and fills["trigger"][1] in ("stop", "limit")
    assert fills["quantity"].sum() == pytest.approx(0.0)


def test_stop_flags_add_visible_exits_to_the_weights_positions(data, tmp_path):
    prices, weights = data
    out = tmp_path / "run"
    assert main(["backtest", "--prices", str(prices), "--weights", str(weights), "--out",
                 str(out), "--stop-loss", "0.03", "--take-profit", "0.05",
                 "--max-positions", "3"]) == 0
    fills = pl.read_parquet(out / "fills.parquet")
    orders = pl.read_parquet(out / "orders.parquet")
    fired = set(fills["trigger"].to_list())
    assert {"stop_loss", "take_profit"} <= fired
    assert (orders.filter(pl.col("origin") == "stop_loss")["status"] == "filled").any()
    assert (orders.filter(pl.col("status") == "rejected")["reason"] == "max_positions").any()
    saved = json.loads((out / "metrics.json").read_text())["config"]
    assert (saved["stop_loss"], saved["take_profit"], saved["max_positions"]) == (0.03, 0.05, 3)


def test_a_bad_order_table_is_one_line_exit_2(data, tmp_path):
    prices, _ = data
    asset = pl.read_parquet(prices)["asset"][0]
    first = pl.read_parquet(prices)["timestamp"][0]
    table = tmp_path / "orders.csv"
    pl.DataFrame({"timestamp": [first, first], "asset": [asset, asset],
                  "type": ["market", "limit"], "quantity": [5.0, 5.0],
                  "limit_price": [None, None]}).write_csv(table)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "backtest", "--prices", str(prices),
         "--orders", str(table), "--out", str(tmp_path / "run")],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "orders.csv" in lines[0] and "limit_price" in lines[0]
    assert "2" in lines[0]
    assert not (tmp_path / "run").exists()


def test_weights_and_orders_are_one_or_the_other(data, tmp_path, capsys):
    prices, weights = data
    with pytest.raises(SystemExit):
        main(["backtest", "--prices", str(prices), "--weights", str(weights), "--orders",
              str(weights), "--out", str(tmp_path / "run")])
    assert "not allowed with" in capsys.readouterr().err


STOPPED_MID_WRITE = textwrap.dedent("""
    import os, signal, sys
    from engine.results import tables
    from pipelines.cli import main

    # Ctrl-C as at a terminal, even where the test run was started ignoring it (a
    # background job without job control inherits SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    write, written = tables.write_parquet, []

    def write_then_stop(frame, path):  # the second table written, then the signal
        write(frame, path)
        written.append(path)
        if len(written) == 2:
            os.kill(os.getpid(), int(sys.argv[1]))

    tables.write_parquet = write_then_stop
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_write_is_one_line_and_leaves_no_half_written_output(data, tmp_path,
                                                                          signum):
    """Ctrl-C or SIGTERM while the tables are written: the earlier output stays as it was,
    no temporary folder is left beside it, and the exit status is 128 + the signal."""
    prices, weights = data
    out = tmp_path / "run"
    args = ["backtest", "--prices", str(prices), "--weights", str(weights), "--out", str(out)]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    done = subprocess.run([sys.executable, "-c", STOPPED_MID_WRITE, str(int(signum)), *args,
                           "--fees", "0.01"], capture_output=True, text=True)
    assert done.returncode == 128 + signum
    assert done.stderr.strip().splitlines() == [
        f"tradegap: stopped by {signum.name}; nothing was left half written"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_generate_never_replaces_a_file_unless_forced(tmp_path, capsys):
    prices, weights = tmp_path / "prices.csv", tmp_path / "weights.csv"
    weights.write_text("mine\n")
    args = ["generate", "--prices", str(prices), "--weights", str(weights), "--assets", "3",
            "--days", "30", "--top", "1", "--every", "5"]
    assert main(args) == 2
    assert capsys.readouterr().err == (f"tradegap: error: {weights}: --weights: a file is "
                                       "there; pass --force to replace it (nothing was "
                                       "written)\n")
    assert weights.read_text() == "mine\n" and not prices.exists()
    assert main([*args, "--force"]) == 0
    assert pl.read_csv(weights).columns == ["timestamp", "asset", "weight"]


@pytest.mark.parametrize(("change", "error"), [
    ({"--weights": "same"}, "--prices and --weights name the same file"),
    ({"--prices": "prices.txt"}, "--prices: unsupported file type '.txt' (use .parquet, .pq, "
                                 ".csv)"),
    ({"--days": "21"}, "command line: --days 21: the momentum weights need more than 21 days"),
])
def test_generate_refuses_what_it_cannot_write_in_one_line(tmp_path, capsys, change, error):
    given = {"--prices": "prices.parquet", "--weights": "weights.parquet", "--days": "30"}
    given.update(change)
    given = {flag: str(tmp_path / (given["--prices"] if value == "same" else value))
             if flag != "--days" else value for flag, value in given.items()}
    assert main(["generate", "--assets", "3", *[x for pair in given.items() for x in pair]]) == 2
    assert error in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["generate", "--prices", "p.csv", "--weights", "w.csv"],
                                     ["demo"]])
def test_counts_below_one_are_refused_by_the_parser(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--assets", "0"])
    assert stopped.value.code == 2
    assert "argument --assets: expected a whole number of at least 1, got '0'" in (
        capsys.readouterr().err)


class _Error:
    def __init__(self, cls_name: str, message: str = "") -> None:
        self.cls_name, self.cause, self.message = cls_name, None, f"{cls_name}: {message}"


class _Event:
    def __init__(self, step_key: str, error: _Error) -> None:
        self.step_key, self.event_type_value = step_key, "STEP_FAILURE"
        self.event_specific_data = type("Data", (), {"error": error})()


def test_a_run_stopped_by_a_signal_says_what_it_leaves_and_stops_as_interrupted(
        tmp_path, capsys, monkeypatch):
    """Dagster turns Ctrl-C (and SIGTERM, which it maps to it) into a failed step; `run`
    reports it as a stop, not as a step that failed, and exits 130."""
    from pipelines import cli, run

    stopped = type("Result", (), {"success": False, "all_events": [
        _Event("backtest_zipline", _Error("DagsterExecutionInterruptedError"))]})()
    with pytest.raises(KeyboardInterrupt):
        run.report_outcome(stopped, tmp_path, 3.0)
    assert capsys.readouterr().err == (
        "tradegap: the run was stopped during backtest_zipline after 3.0s; "
        f"{tmp_path} is as it was before the run (nothing of this run was kept)\n")

    def interrupted(_args):
        run.report_outcome(stopped, tmp_path, 3.0)

    monkeypatch.setitem(cli.COMMANDS, "run", interrupted)
    assert main(["run", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "tradegap: stopped by SIGINT; nothing was left half written")


@pytest.mark.parametrize(("content", "error"), [
    ("ops:\n  nope: {}\n", 'Received unexpected config entry "nope" at path root:ops.'),
    ("ops:\n  market_data:\n    config:\n      n_assets: many\n",
     "Invalid scalar at path root:ops:market_data:config:n_assets."),
])
def test_a_run_config_the_job_does_not_take_is_one_line_exit_2_before_anything_is_written(
        tmp_path, capsys, content, error):
    config, out = tmp_path / "run.yaml", tmp_path / "out"
    config.write_text(content)
    assert main(["run", "--out", str(out), "--config", str(config)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tradegap: error: run.yaml: not a run config of "
                               f"nightly_regression: {error}")
    assert not out.exists()


def test_a_failed_run_names_the_step_and_says_what_its_artifacts_hold(tmp_path, capsys):
    from pipelines import run

    failed = type("Result", (), {"success": False, "all_events": [
        _Event("backtest_engine", _Error("ZeroDivisionError", "division by zero"))]})()
    assert run.report_outcome(failed, tmp_path, 2.0) == run.EXIT_STEP_FAILED
    assert capsys.readouterr().err.splitlines() == [
        "tradegap: step backtest_engine failed: ZeroDivisionError: division by zero",
        f"tradegap: the run failed after 2.0s; {tmp_path} is as it was before the run "
        "(nothing of this run was kept)"]


def test_a_run_whose_step_failed_on_bad_input_is_one_line_exit_2(tmp_path, capsys,
                                                                 monkeypatch):
    """Bad input found by a step of `run` is told as the other commands tell it."""
    from pipelines import cli, run

    failed = type("Result", (), {"success": False, "all_events": [
        _Event("market_data", _Error("engine.errors.InputError",
                                     "p.csv: missing column 'close'"))]})()
    failed.all_events[0].event_specific_data.error.cls_name = "InputError"
    monkeypatch.setitem(cli.COMMANDS, "run",
                        lambda _args: run.report_outcome(failed, tmp_path, 2.0))
    assert main(["run", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "tradegap: error: p.csv: missing column 'close'\n"


def test_of_two_backtests_into_one_folder_the_one_replaced_says_so(data, tmp_path, capsys,
                                                                   monkeypatch):
    """The first backtest swaps its output in; a second, with other fees, swaps its own in
    right after: the first does not say it wrote what the folder no longer holds."""
    from engine.results import artifacts

    prices, weights = data
    out, swap_in, swaps = tmp_path / "run", artifacts._swap_in, []
    args = ["backtest", "--prices", str(prices), "--weights", str(weights), "--out", str(out)]

    def then_another(tmp, out_dir):
        previous = swap_in(tmp, out_dir)
        swaps.append(tmp)
        if len(swaps) == 1:
            assert main([*args, "--fees", "0.01"]) == 0
        return previous

    monkeypatch.setattr(artifacts, "_swap_in", then_another)
    assert main(args) == 1
    printed = capsys.readouterr()
    assert printed.out.count("wrote") == 1  # the second's
    assert printed.err == (f"tradegap: error: {out}: another tradegap backtest output, "
                           "written to this folder at the same time, finished after this "
                           "backtest output and replaced it; the folder holds that one\n")
    assert json.loads((out / "metrics.json").read_text())["config"]["fees"] == 0.01
