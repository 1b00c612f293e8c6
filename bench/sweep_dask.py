"""The parameter sweep on Dask with 1 and 2 workers, side by side in one run.

Materializes the upstream assets once on the embedded default data (500 assets × 2,520
days), then runs the same `parameter_sweep` partitions (each: six backtests, one per fee
and fill timing) on Dask with 1 worker, then with 2, two ways:

- `per run`: the job's default, a local cluster started by each run (as a launch from the
  UI does), so the wall time includes starting the workers and importing the code;
- `running`: one cluster started beforehand and named by address, as a team's scheduler
  is, so the workers are warm.

Steps are the backtests' own time, inputs and artifact writing included. The machine's
load average is printed: the other processes share its 2 cores. Usage (from the
repository root):

    .venv/bin/python bench/sweep_dask.py [--partitions 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ((10, 5), (25, 21), (50, 10), (100, 63), (25, 5), (50, 21))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=4, choices=range(1, len(GRID) + 1))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweep_dask_") as folder:
        os.environ["TRADEGAP_ARTIFACTS"] = str(Path(folder, "artifacts"))
        from dagster import AssetSelection, DagsterInstance, materialize
        from dagster._core.definitions.reconstruct import ReconstructableRepository

        from assets.sweeps import SWEEP_ASSET_NAMES, sweep_key
        from pipelines.definitions import ASSETS, resources

        start = time.perf_counter()
        upstream = materialize(ASSETS, selection=AssetSelection.assets(
            "market_data", "features", "signals"), resources=resources(),
            instance=DagsterInstance.ephemeral())
        if not upstream.success:
            sys.exit("bench/sweep_dask.py: the upstream assets failed")
        print(f"upstream (500 assets × 2,520 days): {time.perf_counter() - start:.1f} s")
        home = Path(folder, "home")
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        job = ReconstructableRepository.for_module(
            "pipelines.definitions", "defs", str(ROOT)).get_reconstructable_job(
            "parameter_sweep")
        keys = [sweep_key(k, every) for k, every in GRID[:args.partitions]]
        steps = len(keys) * len(SWEEP_ASSET_NAMES)
        print(f"sweep: {len(keys)} partitions × {len(SWEEP_ASSET_NAMES)} execution settings "
              f"= {steps} backtests, one run per partition\n")
        rows = []
        with DagsterInstance.local_temp(str(home)) as instance:
            for mode in ("per run", "running"):
                for workers in (1, 2):
                    rows.append((mode, workers, *sweep(instance, job, keys, mode, workers)))
    print(f"  {'cluster':<8} {'workers':>7}  {'wall':>8}  {'sum of steps':>12}  {'speed-up':>8}")
    for mode, workers, wall, step_seconds in rows:
        base = next(w for m, n, w, _ in rows if m == mode and n == 1)
        print(f"  {mode:<8} {workers:>7}  {wall:6.1f} s  {step_seconds:10.1f} s  "
              f"{base / wall:7.2f}×")
    print(f"\nload average (1, 5, 15 min) at the end: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return 0


def sweep(instance, job, keys, mode: str, workers: int) -> tuple[float, float]:
    """Wall time and summed step time of the partitions `keys` on `workers` Dask workers."""
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
        step_seconds = 0.0
        for key in keys:
            result = execute_job(job, instance=instance,
                                 run_config={"execution": {"config": config}},
                                 tags={"dagster/partition": str(key)})
            if not result.success:
                sys.exit(f"bench/sweep_dask.py: partition {key} failed")
            step_seconds += sum(e.event_specific_data.duration_ms / 1000
                                for e in result.all_events
                                if e.event_type_value == "STEP_SUCCESS")
        return time.perf_counter() - start, step_seconds
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    sys.exit(main())
