"""Runs on one artifact folder cannot mix their inputs, a run that fails leaves the folder
as an earlier run left it, and `tradegap run`'s exit code says whether a step failed, on
bad input or otherwise, or an ERROR-severity check failed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from engine import BacktestConfig, run_backtest
from engine.errors import InputError
from engine.results.artifacts import mark_folder
from pipelines.cli import EXIT_BAD_INPUT
from pipelines.definitions import ASSETS, CHECKS, resources
from pipelines.lock import artifact_lock
from pipelines.run import EXIT_CHECK_FAILED, run_main_job
from pipelines.run_config import merge, user_inputs

pytestmark = pytest.mark.slow

SMALL = {"ops": {
    "market_data": {"config": {"n_assets": 20, "n_days": 200, "seed": 3}},
    "signals": {"config": {"train_window": 60, "refit_every": 10}},
    "target_weights": {"config": {"top_k": 4, "every": 10}},
}}

RUN = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from pipelines.run import run_main_job
    base, fills, config = sys.argv[1], sys.argv[2] or None, json.loads(sys.argv[3])
    sys.exit(run_main_job(Path(base), external_fills=fills, run_config=config))
""")


def start_run(base: Path, fills: Path | None, config: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN, str(base), str(fills or ""),
                             json.dumps(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def unexplainable_log(tmp_path_factory) -> Path:
    """A fill log the analysis cannot explain: one rebalance's buys 30% too large."""
    folder = tmp_path_factory.mktemp("inputs")
    done = materialize([*ASSETS, *CHECKS], selection=AssetSelection.assets(
        "market_data", "features", "signals", "target_weights"),
        resources=resources(str(folder / "artifacts")), run_config=SMALL,
        instance=DagsterInstance.ephemeral())
    assert done.success
    market = pl.read_parquet(folder / "artifacts" / "market_data.parquet")
    weights = pl.read_parquet(folder / "artifacts" / "target_weights.parquet")
    fills = run_backtest(market, weights, BacktestConfig()).fills.drop("order_id")
    third = fills["timestamp"].unique().sort()[2]
    fills = fills.with_columns(pl.when(pl.col("timestamp") == third)
                               .then(pl.col("quantity") * 1.3).otherwise("quantity")
                               .alias("quantity"))
    path = folder / "my_engine.csv"
    fills.write_csv(path)
    return path


def test_two_concurrent_runs_on_one_folder_each_end_with_their_own_checks(
        tmp_path, unexplainable_log):
    base = tmp_path / "artifacts"
    first = start_run(base, unexplainable_log, SMALL)
    time.sleep(2)
    second = start_run(base, None, SMALL)
    out_first, err_first = first.communicate(timeout=1200)
    out_second, err_second = second.communicate(timeout=1200)
    assert first.returncode == EXIT_CHECK_FAILED, err_first
    assert "trade_gap:external_log_explained failed" in err_first
    assert "check trade_gap:external_log_explained passed" not in out_first
    assert second.returncode == 0, err_second
    assert "waiting for the run using" in err_second
    assert "check trade_gap:external_log_explained passed" in out_second


def test_a_failing_error_check_alone_exits_non_zero_and_names_it(tmp_path, unexplainable_log):
    run = start_run(tmp_path / "artifacts", unexplainable_log, SMALL)
    out, err = run.communicate(timeout=1200)
    assert run.returncode == EXIT_CHECK_FAILED
    assert "check trade_gap:external_log_explained failed (ERROR)" in err
    assert "performance_summary done" in out


def cli_run(out: Path, config: dict, *flags: str) -> subprocess.CompletedProcess:
    """`tradegap run --out out` with `config` as its `--config` file (beside `out`)."""
    config_file = out.with_name(f"{out.name}-config.json")
    config_file.write_text(json.dumps(config))
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--out", str(out),
                           "--config", str(config_file), *flags],
                          capture_output=True, text=True, timeout=1200)


def test_a_step_failing_on_bad_input_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "prices.csv"
    bad.write_text("timestamp,asset,open\n2020-01-01,A,1\n")
    done = cli_run(tmp_path / "out", SMALL, "--prices", str(bad))
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("tradegap: error: prices.csv: ")


def tree(folder: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


def test_a_failed_run_leaves_the_earlier_runs_folder_exactly_as_it_was(tmp_path):
    """The second run rewrites `market_data` (another seed), then fails on its weights: the
    folder still holds the first run's market data beside its other artifacts, and the
    user's note, and nothing is left beside it."""
    out = tmp_path / "out"
    base = out / "artifacts"
    done = materialize([*ASSETS, *CHECKS], selection=AssetSelection.assets(
        "market_data", "features", "signals", "target_weights"),
        resources=resources(str(base)), run_config=SMALL, instance=DagsterInstance.ephemeral())
    assert done.success
    mark_folder(base, "artifacts")
    with artifact_lock(base):  # as an earlier `tradegap run` leaves it: with its lock file
        (base / "notes.md").write_text("the user's")
    before = tree(base)
    weights = tmp_path / "weights.csv"
    weights.write_text("timestamp,asset,weight\n2020-01-01,ZZZ,0.5\n")
    other_seed = merge(SMALL, {"ops": {"market_data": {"config": {"seed": 4}}}})
    done = cli_run(out, other_seed, "--weights", str(weights))
    assert "market_data done" in done.stdout
    assert tree(base) == before
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert sorted(path.name for path in out.iterdir()) == ["artifacts"]


def test_the_lock_makes_a_second_holder_wait_or_refuse(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from pipelines.lock import artifact_lock
        with artifact_lock(Path({str(tmp_path)!r})):
            print("held", flush=True)
            time.sleep(3)
            Path({str(tmp_path / "finished")!r}).write_text("yes")
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RuntimeError, match="another tradegap run holds it"), \
            artifact_lock(tmp_path, wait=False):
        pass
    with artifact_lock(tmp_path):
        assert (tmp_path / "finished").read_text() == "yes"
    holder.wait()


def test_the_files_a_run_config_reads_are_its_inputs(tmp_path):
    config = {"ops": {"market_data": {"config": {"prices_paths": ["a.csv", "b.csv"]}},
                      "target_weights": {"config": {"weights_path": "w.csv"}},
                      "signals": {"config": {"skip": True}}}}
    assert user_inputs(config) == ["a.csv", "b.csv", "w.csv"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "prices.csv").write_text("timestamp,asset\n")
    with pytest.raises(InputError, match="contains the input"):
        run_main_job(data, run_config={"ops": {"market_data": {"config": {
            "prices_paths": [str(data / "prices.csv")]}}}})
    assert [p.name for p in data.iterdir()] == ["prices.csv"]


@pytest.mark.parametrize("instance", ["deploy/dagster.yaml", "deploy/dagster-local.yaml"])
def test_the_instances_run_one_artifact_writing_run_at_a_time(instance):
    import yaml

    from pipelines.jobs import ARTIFACTS_TAG, nightly_regression, sweep_report

    text = (Path(__file__).parents[1] / instance).read_text()
    limits = yaml.safe_load(text)["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": ARTIFACTS_TAG, "limit": 1} in limits
    for job in (nightly_regression, sweep_report):
        assert ARTIFACTS_TAG in job.tags
