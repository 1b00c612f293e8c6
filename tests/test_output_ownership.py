"""`--out` owns only what it writes: a folder holding anything else is refused, untouched.

An output folder may be replaced only when it is new, empty, or an earlier tradegap output
of the same kind holding nothing but what that output wrote; `--force` replaces a tradegap
output of another kind; an output never contains an input.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine import BacktestConfig, run_backtest
from engine.errors import InputError
from engine.results.artifacts import MARKER, claim_output
from pipelines.cli import main

pytestmark = pytest.mark.slow

BACKTEST_OUTPUTS = {"fills.parquet", "orders.parquet", "positions.parquet", "equity.parquet",
                    "trades.parquet", "metrics.json", MARKER}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs") / "data"
    prices, weights = folder / "prices.csv", folder / "weights.csv"
    assert main(["generate", "--prices", str(prices), "--weights", str(weights),
                 "--assets", "12", "--days", "120", "--top", "3", "--every", "10"]) == 0
    (folder / "notes.txt").write_text("my notes\n")
    return folder


def backtest(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "backtest", "--prices",
         str(data / "prices.csv"), "--weights", str(data / "weights.csv"), "--out", str(out),
         *extra], capture_output=True, text=True)


def test_out_naming_the_input_folder_is_refused_and_the_inputs_survive(data):
    before = snapshot(data)
    done = backtest(data, data)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "contains the input" in done.stderr
    assert snapshot(data) == before


def test_out_naming_a_parent_of_the_inputs_is_refused(data):
    before = snapshot(data)
    done = backtest(data, data.parent)
    assert done.returncode == 2 and "contains the input" in done.stderr
    assert snapshot(data) == before


def test_a_folder_that_is_not_a_tradegap_output_is_refused_untouched(data, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("\\section{results}\n")
    done = backtest(data, mine)
    assert done.returncode == 2
    assert "not a tradegap output" in done.stderr
    assert snapshot(mine) == {"thesis.tex": b"\\section{results}\n"}


def test_a_new_or_empty_folder_is_written_with_its_marker(data, tmp_path):
    for out in (tmp_path / "new", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        assert backtest(data, out).returncode == 0
        assert {p.name for p in out.iterdir()} == BACKTEST_OUTPUTS


def test_an_earlier_output_of_the_same_kind_is_replaced(data, tmp_path):
    out = tmp_path / "bt"
    assert backtest(data, out).returncode == 0
    first = snapshot(out)
    assert backtest(data, out, "--fees", "0.01").returncode == 0
    assert snapshot(out)["fills.parquet"] != first["fills.parquet"]


def test_a_file_added_to_an_output_is_never_deleted(data, tmp_path):
    out = tmp_path / "bt"
    assert backtest(data, out).returncode == 0
    (out / "comments.md").write_text("looks right\n")
    before = snapshot(out)
    for extra in ((), ("--force",)):
        done = backtest(data, out, *extra)
        assert done.returncode == 2 and "comments.md" in done.stderr
        assert snapshot(out) == before


def test_another_kind_of_output_needs_force(data, tmp_path):
    a, b, report = tmp_path / "a", tmp_path / "b", tmp_path / "report"
    assert backtest(data, a).returncode == 0
    assert backtest(data, b, "--fees", "0.002").returncode == 0
    prices = str(data / "prices.csv")
    assert main(["gap", "--a", str(a), "--b", str(b), "--prices", prices,
                 "--out", str(report)]) == 0
    gap_report = snapshot(report)
    done = backtest(data, report)
    assert done.returncode == 2 and "--force" in done.stderr
    assert snapshot(report) == gap_report
    assert backtest(data, report, "--force").returncode == 0
    assert {p.name for p in report.iterdir()} == BACKTEST_OUTPUTS


def test_gap_never_writes_over_one_of_its_sides(data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert backtest(data, a).returncode == 0
    assert backtest(data, b, "--fees", "0.002").returncode == 0
    before = snapshot(a)
    prices = str(data / "prices.csv")
    assert main(["gap", "--a", str(a), "--b", str(b), "--prices", prices, "--out",
                 str(a)]) == 2
    assert main(["gap", "--a", str(a), "--b", str(b), "--prices", prices, "--out",
                 str(tmp_path)]) == 2
    assert snapshot(a) == before


def test_the_python_api_refuses_the_same_folders(data, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    result = run_backtest(data / "prices.csv", data / "weights.csv", BacktestConfig())
    with pytest.raises(InputError, match="not a tradegap output"):
        result.save(mine)
    assert snapshot(mine) == {"keep.txt": b"x"}


def test_claim_refuses_an_existing_file(tmp_path):
    target = tmp_path / "file.parquet"
    target.write_bytes(b"data")
    with pytest.raises(InputError, match="not a folder"):
        claim_output(target, "backtest")
    assert target.read_bytes() == b"data"


def test_run_refuses_an_artifact_folder_it_did_not_create(tmp_path):
    base = tmp_path / "artifacts"
    base.mkdir()
    (base / "market_data.parquet").write_bytes(b"somebody else's file")
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--out",
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "not a tradegap output" in done.stderr
    assert (base / "market_data.parquet").read_bytes() == b"somebody else's file"
