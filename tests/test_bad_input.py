"""Every class of bad input, through the command line and through the pipeline: the same
one-line message naming the file, the column and the first offending rows, and nothing
already written changes (the CLI's output folder, the pipeline's artifact folder).

Prices are given to the CLI's `backtest --prices` and to `market_data`'s `prices_paths`;
weights to `--weights` and to `target_weights`' `weights_path`, against good prices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from engine.data.synthetic import generate_market, momentum_scores
from engine.research.weights import top_k_weights
from pipelines.cli import main
from pipelines.definitions import ASSETS, resources
from tests.test_loading import edit

pytestmark = pytest.mark.slow

NAN, INF = float("nan"), float("inf")
UPSTREAM = ("market_data", "features", "signals", "target_weights")


@dataclass(frozen=True)
class Case:
    """One class of bad input: which file it spoils, how, and the message it must give."""

    name: str
    kind: str  # "prices" or "weights"
    write: Callable[[pl.DataFrame, pl.DataFrame, Path], Path]
    message: str  # the whole one-line message, or its start when `prefix_only`
    prefix_only: bool = False


def csv(frame: pl.DataFrame, folder: Path, name: str) -> Path:
    frame.write_csv(folder / name)
    return folder / name


def prices_csv(change: Callable[[pl.DataFrame], pl.DataFrame]):
    return lambda prices, _weights, folder: csv(change(prices), folder, "prices.csv")


def weights_csv(change: Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]):
    return lambda prices, weights, folder: csv(change(weights, prices), folder, "weights.csv")


def raw(name: str, content: bytes):
    def write(_prices, _weights, folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder / name
    return write


def truncated_parquet(prices: pl.DataFrame, _weights, folder: Path) -> Path:
    prices.write_parquet(folder / "prices.parquet")
    data = (folder / "prices.parquet").read_bytes()
    (folder / "prices.parquet").write_bytes(data[: len(data) // 2])
    return folder / "prices.parquet"


def numeric_timestamps(prices: pl.DataFrame, _weights, folder: Path) -> Path:
    prices.with_columns(pl.col("timestamp").dt.epoch("d")).write_parquet(
        folder / "prices.parquet")
    return folder / "prices.parquet"


def with_offsets(prices: pl.DataFrame) -> pl.DataFrame:
    return prices.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"))


def leverage(weights: pl.DataFrame, _prices) -> pl.DataFrame:
    return edit(weights, 2, "weight", 0.9)


PRICE = "prices.csv: column"
CASES = [
    Case("missing column", "prices", prices_csv(lambda p: p.drop("volume")),
         "prices.csv: missing column 'volume'"),
    Case("renamed column", "prices", prices_csv(lambda p: p.rename({"close": "Closing"})),
         "prices.csv: missing column 'close' (found 'Closing'?)"),
    Case("wide table", "prices",
         prices_csv(lambda p: p.pivot(on="asset", index="timestamp", values="close")),
         "prices.csv: missing columns 'asset', 'open', 'high', 'low', 'close', 'volume'; a "
         "table with one column per asset is not read", prefix_only=True),
    Case("ambiguous numeric dates", "prices",
         prices_csv(lambda p: p.filter(pl.col("timestamp").dt.day() <= 12).with_columns(
             pl.col("timestamp").dt.strftime("%m/%d/%Y"))),
         f"{PRICE} 'timestamp': dates read both month-first and day-first", prefix_only=True),
    Case("text in a number column", "prices",
         prices_csv(lambda p: edit(p.with_columns(pl.col("open").cast(pl.String)), 3, "open",
                                   "n/a")),
         f"{PRICE} 'open': not a number, found 'n/a' at rows 3"),
    Case("numbers as timestamps", "prices", numeric_timestamps,
         "prices.parquet: column 'timestamp': expected dates or ISO timestamps, got Int32"),
    Case("NaN price", "prices", prices_csv(lambda p: edit(p, 4, "close", NAN)),
         f"{PRICE} 'close': price must be a positive number, found NaN at rows 4"),
    Case("negative price", "prices", prices_csv(lambda p: edit(p, 5, "open", -2.5)),
         f"{PRICE} 'open': price must be a positive number, found -2.5 at rows 5"),
    Case("zero price", "prices", prices_csv(lambda p: edit(p, 6, "low", 0.0)),
         f"{PRICE} 'low': price must be a positive number, found 0.0 at rows 6"),
    Case("infinite price", "prices", prices_csv(lambda p: edit(p, 7, "high", INF)),
         f"{PRICE} 'high': price must be a positive number, found inf at rows 7"),
    Case("negative volume", "prices", prices_csv(lambda p: edit(p, 9, "volume", -1.0)),
         f"{PRICE} 'volume': volume must be a non-negative number, found -1.0 at rows 9"),
    Case("duplicate rows", "prices",
         prices_csv(lambda p: pl.concat([p.head(3), p.slice(2, 1), p.slice(3)])),
         "prices.csv: duplicate (timestamp, asset) rows for (2010-01-04, 'A0003') "
         "at rows 3, 4"),
    Case("close above the high", "prices",
         prices_csv(lambda p: edit(p, 5, "close", p["high"][4] * 1.5)),
         f"{PRICE} 'high': high below open or close (inconsistent bar; repair_ohlc widens "
         "high and low to cover them), found open ", prefix_only=True),
    Case("low above the high", "prices",
         prices_csv(lambda p: edit(edit(p, 3, "low", p["high"][2] * 2), 3, "high",
                                   p["low"][2])),
         f"{PRICE} 'high': high below open or close", prefix_only=True),
    Case("null asset name", "prices", prices_csv(lambda p: edit(p, 8, "asset", None)),
         f"{PRICE} 'asset': missing asset name at rows 8"),
    Case("null timestamp", "prices", prices_csv(lambda p: edit(p, 5, "timestamp", None)),
         f"{PRICE} 'timestamp': missing timestamp at rows 5"),
    Case("timestamp that is not a date", "prices",
         prices_csv(lambda p: edit(p.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%d")),
                                   7, "timestamp", "yesterday")),
         f"{PRICE} 'timestamp': not a date or ISO timestamp, found 'yesterday' at rows 7"),
    Case("time zones mixed", "prices",
         prices_csv(lambda p: edit(with_offsets(p), 6, "timestamp", "2010-01-04")),
         f"{PRICE} 'timestamp': mixes timestamps with and without a UTC offset (give every "
         "row an offset, or none), found '2010-01-04' at rows 6"),
    Case("empty file", "prices", raw("prices.csv", b""), "prices.csv: file is empty"),
    Case("header only", "prices",
         raw("prices.csv", b"timestamp,asset,open,high,low,close,volume\n"),
         "prices.csv: no data rows"),
    Case("truncated Parquet", "prices", truncated_parquet,
         "prices.parquet: cannot read as Parquet: ", prefix_only=True),
    Case("unsupported file type", "prices", raw("prices.xlsx", b"PK\x03\x04"),
         "prices.xlsx: unsupported file type '.xlsx' (use .parquet, .pq, .csv)"),
    Case("unknown asset", "weights", weights_csv(lambda w, _p: edit(w, 2, "asset", "ZZZ")),
         "weights.csv: column 'asset': asset not in the prices, found 'ZZZ' at rows 2"),
    Case("timestamp that is no bar", "weights",
         weights_csv(lambda w, _p: edit(w, 4, "timestamp", dt.datetime(2010, 1, 9))),
         "weights.csv: column 'timestamp': timestamp is not a bar of the prices, found "
         "2010-01-09 at rows 4"),
    Case("leverage", "weights", weights_csv(leverage),
         "weights.csv: column 'weight': weights at 2010-01-11 sum to 1.566666667, above 1 "
         "(leverage needs allow_leverage) at rows 1, 2, 3"),
    Case("negative weight", "weights", weights_csv(lambda w, _p: edit(w, 3, "weight", -0.1)),
         "weights.csv: column 'weight': negative weight (shorts need allow_short), found -0.1 "
         "at rows 3"),
    Case("NaN weight", "weights", weights_csv(lambda w, _p: edit(w, 5, "weight", NAN)),
         "weights.csv: column 'weight': weight must be a finite number, found NaN at rows 5"),
    Case("duplicate weights", "weights",
         weights_csv(lambda w, _p: pl.concat([w.head(1), w])),
         "weights.csv: duplicate (timestamp, asset) rows for (2010-01-11, 'A0003') "
         "at rows 1, 2"),
    Case("renamed weight column", "weights",
         weights_csv(lambda w, _p: w.rename({"weight": "weights"})),
         "weights.csv: missing column 'weight' (found 'weights'?)"),
]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def matches(text: str, case: Case) -> bool:
    return text.startswith(case.message) if case.prefix_only else text == case.message


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, object]:
    """Good prices and weights, a CLI output folder and an artifact folder made from them."""
    folder = tmp_path_factory.mktemp("good")
    prices = generate_market(n_assets=8, n_days=60, seed=2)
    weights = top_k_weights(momentum_scores(prices, lookback=5), k=3, every=5)
    prices_path, weights_path = csv(prices, folder, "prices.csv"), csv(
        weights, folder, "weights.csv")
    out = folder / "out"
    assert main(["backtest", "--prices", str(prices_path), "--weights", str(weights_path),
                 "--out", str(out)]) == 0
    artifacts = folder / "artifacts"
    config = {"ops": {"market_data": {"config": {"prices_paths": [str(prices_path)]}},
                      "signals": {"config": {"skip": True}},  # the weights come from a file
                      "target_weights": {"config": {"weights_path": str(weights_path)}}}}
    result = materialize(ASSETS, selection=AssetSelection.assets(*UPSTREAM),
                         resources=resources(artifacts), run_config=config,
                         instance=DagsterInstance.ephemeral())
    assert result.success
    return {"prices": prices, "weights": weights, "prices_path": prices_path,
            "weights_path": weights_path, "out": out, "artifacts": artifacts}


def test_there_are_at_least_twenty_two_classes():
    assert len({case.name for case in CASES}) == len(CASES) >= 22
    assert {case.kind for case in CASES} == {"prices", "weights"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_cli_prints_the_one_line_message_and_keeps_its_output(case, good, tmp_path,
                                                                   capsys):
    bad = case.write(good["prices"], good["weights"], tmp_path)
    prices = bad if case.kind == "prices" else good["prices_path"]
    weights = bad if case.kind == "weights" else good["weights_path"]
    before = snapshot(good["out"])
    code = main(["backtest", "--prices", str(prices), "--weights", str(weights),
                 "--out", str(good["out"])])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tradegap: error: ")
    assert matches(lines[0].removeprefix("tradegap: error: "), case), lines[0]
    assert snapshot(good["out"]) == before


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_pipeline_fails_the_asset_with_the_message_and_keeps_its_artifacts(
    case, good, tmp_path,
):
    bad = case.write(good["prices"], good["weights"], tmp_path)
    if case.kind == "prices":
        asset, config = "market_data", {"prices_paths": [str(bad)]}
    else:
        asset, config = "target_weights", {"weights_path": str(bad)}
    before = snapshot(good["artifacts"])
    result = materialize(ASSETS, selection=AssetSelection.assets(asset),
                         resources=resources(good["artifacts"]),
                         run_config={"ops": {asset: {"config": config}}},
                         instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == asset
    error = failure.event_specific_data.error
    while error.cause is not None:
        error = error.cause
    assert error.cls_name == "InputError"
    message = error.message.strip().removeprefix("engine.errors.InputError: ")
    assert matches(message, case), message
    assert snapshot(good["artifacts"]) == before
