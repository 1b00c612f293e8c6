"""The whole 96-point grid as one `parameter_sweep` run on Dask, against the engine alone.

Materializes the upstream assets once on the embedded default data (500 assets × 2,520
days), then runs `parameter_sweep` (its chunks, each running a quarter of the grid in one
call, then the summary) on Dask with 1 and with 2 workers, two ways:

- `per run`: the job's default, a local cluster started by the run (as a launch from the UI
  does), so the wall time includes starting the workers and importing the code;
- `running`: one cluster started beforehand and named by address, as a team's scheduler
  is, so the workers are warm.

Beside them, the sum of the 96 single-run engine times (`run_weights` and the metrics on a
prepared market, in this process): what the grid costs without any orchestration. The
machine's load average is printed: other processes share its 2 cores. Usage (from the
repository root):

    .venv/bin/python bench/sweep_dask.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sweep_dask_") as folder:
        os.environ["TRADEGAP_ARTIFACTS"] = str(Path(folder, "artifacts"))
        from dagster import AssetSelection, DagsterInstance, materialize
        from dagster._core.definitions.reconstruct import ReconstructableRepository

        from assets.sweeps import SweepGrid
        from pipelines.definitions import ASSETS, resources

        start = time.perf_counter()
        upstream = materialize(ASSETS, selection=AssetSelection.assets(
            "market_data", "features", "signals"), resources=resources(),
            instance=DagsterInstance.ephemeral())
        if not upstream.success:
            sys.exit("bench/sweep_dask.py: the upstream assets failed")
        print(f"upstream (500 assets × 2,520 days): {time.perf_counter() - start:.1f} s")
        points = SweepGrid().points()
        engine = engine_seconds(Path(folder, "artifacts"), points)
        print(f"grid: {len(points)} points; the single-run engine times add up to "
              f"{engine:.1f} s\n")
        home = Path(folder, "home")
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        job = ReconstructableRepository.for_module(
            "pipelines.definitions", "defs", str(ROOT)).get_reconstructable_job(
            "parameter_sweep")
        rows = []
        with DagsterInstance.local_temp(str(home)) as instance:
            for mode in ("per run", "running"):
                for workers in (1, 2):
                    rows.append((mode, workers, *sweep(instance, job, mode, workers)))
    print(f"  {'cluster':<8} {'workers':>7}  {'wall':>8}  {'sum of steps':>12}  "
          f"{'wall / engine sum':>17}")
    for mode, workers, wall, step_seconds in rows:
        print(f"  {mode:<8} {workers:>7}  {wall:6.1f} s  {step_seconds:10.1f} s  "
              f"{wall / engine:16.2f}")
    print(f"\nload average (1, 5, 15 min) at the end: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return 0


def engine_seconds(artifacts: Path, points) -> float:
    """The summed time of each point run alone on a prepared market (weights ready)."""
    import polars as pl

    from engine import BacktestConfig, market_of
    from engine.backtest import run_weights, valid_weights
    from engine.research.weights import top_k_weights

    market = market_of(pl.read_parquet(artifacts / "market_data.parquet"))
    signals = pl.read_parquet(artifacts / "signals.parquet")
    total = 0.0
    for point in points:
        config = BacktestConfig().with_(**point.settings)
        weights = valid_weights(top_k_weights(signals, point.top_k, point.every), market,
                                config)
        start = time.perf_counter()
        run_weights(market, weights, config).metrics  # noqa: B018
        total += time.perf_counter() - start
    return total


def sweep(instance, job, mode: str, workers: int) -> tuple[float, float]:
    """Wall time and summed step time of one whole-grid run on `workers` Dask workers."""
    from dagster import execute_job
    from distributed import LocalCluster

    from pipelines.executors import existing_cluster, local_cluster

    cluster = None
    if mode == "running":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        config = existing_cluster(cluster.scheduler_address)
    else:
        config = local_cluster(workers)
    try:
        start = time.perf_counter()
        result = execute_job(job, instance=instance,
                             run_config={"execution": {"config": config}})
        if not result.success:
            sys.exit(f"bench/sweep_dask.py: the sweep failed ({mode}, {workers} workers)")
        step_seconds = sum(e.event_specific_data.duration_ms / 1000 for e in result.all_events
                           if e.event_type_value == "STEP_SUCCESS")
        return time.perf_counter() - start, step_seconds
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    sys.exit(main())
