"""Logs as the real tools write them go through `tradegap explain` and `tradegap gap`
unchanged and give the same diagnosis as the same fills in our own format."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from engine.core.config import BacktestConfig
from engine.logs import LogOptions, read_log
from pipelines.cli import main
from tests.native_logs import (
    backtrader_logs,
    nautilus_report,
    small_market,
    vectorbt_log,
    zipline_log,
)

pytestmark = [pytest.mark.peers, pytest.mark.slow]

FILLS = ["timestamp", "asset", "quantity", "price", "fee"]


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    folder = tmp_path_factory.mktemp("market")
    prices, weights = small_market()
    prices = prices.with_columns(pl.col("open", "high", "low", "close").round(2))
    prices.write_parquet(folder / "prices.parquet")
    weights.write_parquet(folder / "weights.parquet")
    return folder, prices, weights


def explain(tmp: Path, market_folder: Path, fills: Path, *flags: str) -> dict:
    out = tmp / f"explain-{fills.name}"
    assert main(["explain", "--fills", str(fills), "--prices",
                 str(market_folder / "prices.parquet"), "--out", str(out), *flags]) == 0
    return json.loads((out / "gap_summary.json").read_text())


def gap(tmp: Path, market_folder: Path, a: Path, b: Path, *flags: str) -> dict:
    out = tmp / f"gap-{b.name}"
    assert main(["gap", "--a", str(a), "--b", str(b), "--prices",
                 str(market_folder / "prices.parquet"), "--out", str(out), *flags]) == 0
    return json.loads((out / "gap_summary.json").read_text())


def diagnosis(summary: dict) -> dict:
    """A summary without the sides' names (the files are named differently)."""
    return {k: v for k, v in summary.items() if k not in ("a", "b")}


def same_both_ways(tmp: Path, market_folder: Path, native: Path, own: pl.DataFrame,
                   decisions: tuple[str, str], *settings: str) -> dict:
    """The native log and our table of the same fills explained alike, by `explain` and
    by `gap` against the engine's own backtest folder under the same settings."""
    own_file = tmp / f"own-{native.stem}.parquet"
    own.write_parquet(own_file)
    by_native = explain(tmp, market_folder, native, *decisions, *settings)
    by_own = explain(tmp, market_folder, own_file, *decisions, *settings)
    assert diagnosis(by_native) == diagnosis(by_own)
    reference = tmp / f"reference-{native.stem}"
    assert main(["backtest", "--prices", str(market_folder / "prices.parquet"),
                 *decisions, "--out", str(reference), *settings]) == 0
    assert diagnosis(gap(tmp, market_folder, reference, native)) == diagnosis(
        gap(tmp, market_folder, reference, own_file))
    return by_native


def causes(summary: dict) -> set[str]:
    return {fault["cause"] for fault in summary["faults"]}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_vectorbt_records_readable(market, tmp_path, suffix):
    folder, prices, weights = market
    native = vectorbt_log(prices, weights, BacktestConfig.for_profile("vectorbt", fees=0.002),
                          tmp_path / f"vbt_orders{suffix}")
    raw = pl.read_csv(native) if suffix == ".csv" else pl.read_parquet(native)
    own = raw.select(
        timestamp=pl.col("Timestamp").cast(pl.String).str.slice(0, 10).str.to_datetime(
            "%Y-%m-%d", time_unit="us"),
        asset=pl.col("Column"),
        quantity=pl.when(pl.col("Side") == "Sell").then(-pl.col("Size"))
        .otherwise(pl.col("Size")),
        price=pl.col("Price"), fee=pl.col("Fees"),
    ).sort("timestamp", maintain_order=True)
    summary = same_both_ways(tmp_path, folder, native, own,
                             ("--weights", str(folder / "weights.parquet")),
                             "--profile", "vectorbt", "--fees", "0.001")
    assert summary["verdict"] != "identical"
    assert causes(summary) == {"fee"}


@pytest.mark.parametrize("which", ["transactions", "pyfolio"])
def test_backtrader_transactions_and_pyfolio(market, tmp_path, which):
    folder, prices, weights = market
    transactions, pyfolio = backtrader_logs(
        prices, weights, BacktestConfig.for_profile("backtrader", fees=0.0), tmp_path)
    native = transactions if which == "transactions" else pyfolio
    own = pl.read_csv(native).select(
        timestamp=pl.col("date").str.slice(0, 10).str.to_datetime("%Y-%m-%d",
                                                                  time_unit="us"),
        asset=pl.col("symbol"), quantity=pl.col("amount").cast(pl.Float64),
        price=pl.col("price"), fee=pl.lit(0.0))
    summary = same_both_ways(tmp_path, folder, native, own,
                             ("--weights", str(folder / "weights.parquet")),
                             "--profile", "backtrader")
    assert summary["verdict"] == "identical"  # backtrader itself, read exactly


def test_zipline_transactions(market, tmp_path):
    folder, prices, weights = market
    native = zipline_log(prices, weights, BacktestConfig.for_profile("zipline"), tmp_path)
    own = pl.read_csv(native).select(
        timestamp=pl.col("dt").str.slice(0, 10).str.to_datetime("%Y-%m-%d", time_unit="us"),
        asset=pl.col("sid").str.extract(r"\[(.+)\]", 1),
        quantity=pl.col("amount").cast(pl.Float64), price=pl.col("price"), fee=pl.lit(0.0))
    summary = same_both_ways(tmp_path, folder, native, own,
                             ("--weights", str(folder / "weights.parquet")),
                             "--profile", "zipline")
    # zipline's transactions carry no commission: the log is read as paying none
    assert "fee" in causes(summary)


def test_nautilus_fills_report(market, tmp_path):
    folder, prices, _ = market
    stamps = prices["timestamp"].unique().sort()
    orders = pl.DataFrame({
        "timestamp": [stamps[1], stamps[1], stamps[5], stamps[9], stamps[9], stamps[14]],
        "asset": ["A0001", "A0002", "A0001", "A0002", "A0003", "A0003"],
        "type": ["market"] * 6, "quantity": [100.0, 50.0, -40.0, -50.0, 30.0, -30.0]})
    orders.write_parquet(tmp_path / "orders.parquet")
    native = nautilus_report(prices, orders, 0.0, tmp_path)
    raw = pl.read_csv(native)
    assert raw["instrument_id"][0] == "A0001.XNAS" and raw["commission"][0] == "0.00 USD"
    own = raw.select(
        timestamp=pl.col("ts_event").str.slice(0, 10).str.to_datetime("%Y-%m-%d",
                                                                      time_unit="us"),
        asset=pl.col("instrument_id").str.split(".").list.first(),
        quantity=pl.when(pl.col("order_side") == "SELL").then(-pl.col("last_qty"))
        .otherwise(pl.col("last_qty")).cast(pl.Float64),
        price=pl.col("last_px"), fee=pl.col("commission").str.split(" ").list.first()
        .cast(pl.Float64)).sort("timestamp", maintain_order=True)
    orders_flag = ("--orders", str(tmp_path / "orders.parquet"))
    summary = same_both_ways(tmp_path, folder, native, own, orders_flag, "--fill", "same_close")
    assert summary["verdict"] == "identical"  # a market order in on_bar fills at its close
    per_order = read_log(tmp_path / "nautilus_orders.csv", prices)
    assert per_order.format.name == "nautilus_orders"
    assert per_order.fills.select(FILLS).equals(read_log(native, prices).fills.select(FILLS))
    charged = same_both_ways(tmp_path, folder, native, own, orders_flag, "--fill",
                             "same_close", "--fees", "0.001")
    assert "fee" in causes(charged)


def test_nautilus_partial_fills_kept_or_summed(market, tmp_path):
    """nautilus's L1 book fills a market order past a quarter of the bar's volume in two
    rows of one order, the second a tick worse: kept, or summed at their average."""
    _, prices, _ = market
    thin = prices.with_columns(volume=pl.lit(400.0))
    stamps = prices["timestamp"].unique().sort()
    orders = pl.DataFrame({"timestamp": [stamps[2], stamps[6]], "asset": ["A0001", "A0001"],
                           "type": ["market"] * 2, "quantity": [150.0, -150.0]})
    native = nautilus_report(thin, orders, 0.0, tmp_path)
    kept = read_log(native, thin).fills
    assert kept["quantity"].to_list() == [100.0, 50.0, -100.0, -50.0]
    assert kept["order"].n_unique() == 2
    close = thin.filter(pl.col("asset") == "A0001", pl.col("timestamp") == stamps[2])[
        "close"][0]
    assert kept["price"][:2].to_list() == pytest.approx([close, close + 0.01])
    summed = read_log(native, thin, LogOptions(partials="sum")).fills
    assert summed["quantity"].to_list() == [150.0, -150.0]
    assert summed["price"][0] == pytest.approx((100 * close + 50 * (close + 0.01)) / 150)
