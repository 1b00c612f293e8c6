"""A first run against the second: cold `tradegap backtest`, and `make run` on a new clone.

1. `tradegap backtest` (`python -m pipelines.cli backtest`, this tree's code) in a new
   process each time, on the daily turnover workload of `engine_vs_vectorbt.py` (500 assets
   × 2,520 days, about 95 fills a bar), with the compiled-code cache present: median, best
   and worst wall time of `--repeats` runs, and the median CPU seconds (the child's user +
   system time), against the 2 s target.
2. `make run` on a fresh clone of this repository's committed HEAD into a temporary folder,
   with its `.venv` a link to this tree's environment (the install step is skipped with
   `make -o .venv/.runtime-installed`, so the shared environment is never reinstalled;
   `PYTHONPATH` points at the clone, so the clone's code runs). `make run` runs twice; each
   is split into the warm-up (`make warm`: compiles the clone's kernels the first time,
   nothing the second) and the job (`tradegap run`), timed from the lines they print. The
   target: the first job within 15 s of the second. For comparison, the job on a second
   fresh clone without the warm-up (`tradegap run` directly), whose kernels compile on
   first use.

Usage (from the repository root):

    .venv/bin/python bench/cold_start.py [--repeats 5] [--skip-clone]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine_vs_vectorbt import inputs

ROOT = Path(__file__).resolve().parents[1]
CLI_TARGET = 2.0  # seconds, a cold `tradegap backtest` with the cache
JOB_TARGET = 15.0  # seconds, the first job's time over the second's
WARM_LINE = "engine.warmup:"


def cold_backtest(repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `repeats` cold `tradegap backtest` runs (cache present)."""
    with tempfile.TemporaryDirectory(prefix="cold_start_") as folder:
        work = Path(folder)
        prices, weights = inputs(500, 2520, "turnover", 1)
        prices.write_parquet(work / "prices.parquet")
        weights.write_parquet(work / "weights.parquet")
        command = [sys.executable, "-m", "pipelines.cli", "backtest", "--prices",
                   str(work / "prices.parquet"), "--weights", str(work / "weights.parquet"),
                   "--out", str(work / "out"), "--fees", "0.001"]
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=environment)
        walls, cpus = [], []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=environment)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return walls, cpus


def clone(into: Path) -> Path:
    """A fresh clone of HEAD at `into`, its `.venv` a link to this tree's environment."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(into)], check=True)
    (into / ".venv").symlink_to((ROOT / ".venv").resolve())
    return into


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(seconds until the warm-up's line, wall seconds) of `command` run in `cwd`."""
    environment = {**os.environ, "PYTHONPATH": str(cwd)}
    environment.pop("NUMBA_CACHE_DIR", None)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    warm, lines = 0.0, []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(WARM_LINE):
            warm = time.perf_counter() - start
    wall = time.perf_counter() - start
    if process.wait() != 0:
        sys.exit("".join(lines[-30:]) + f"bench/cold_start.py: {' '.join(command)} failed")
    return warm, wall


def make_runs() -> list[tuple[str, float, float]]:
    """(label, warm-up seconds, job seconds) of two `make run`s on a new clone, and of the
    job on another new clone without the warm-up."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="cold_start_clone_") as folder:
        checkout = clone(Path(folder, "tradegap"))
        make = ["make", "--no-print-directory", "-o", ".venv/.runtime-installed", "run"]
        for label in ("first make run", "second make run"):
            warm, wall = timed(make, checkout)
            rows.append((label, warm, wall - warm))
        bare = clone(Path(folder, "without_warmup"))
        _, wall = timed([str(bare / ".venv" / "bin" / "tradegap"), "run"], bare)
        rows.append(("first job without the warm-up (kernels compile in it)", 0.0, wall))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-clone", action="store_true", help="only the cold backtest")
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    walls, cpus = cold_backtest(args.repeats)
    wall = statistics.median(walls)
    print(f"cold `tradegap backtest` (500 × 2,520, daily turnover, cache present), "
          f"{args.repeats} new processes: median {wall:.2f} s wall (best {min(walls):.2f}, "
          f"worst {max(walls):.2f}), median {statistics.median(cpus):.2f} s CPU; target "
          f"{CLI_TARGET:.1f} s: {wall / CLI_TARGET:.2f}× the target "
          f"({'met' if wall <= CLI_TARGET else 'NOT met'}); CPU "
          f"{statistics.median(cpus) / CLI_TARGET:.2f}× the target")
    if not args.skip_clone:
        rows = make_runs()
        print("\n`make run` on a fresh clone (shared environment):")
        width = max(len(label) for label, _, _ in rows)
        print(f"  {'run':<{width}}  {'warm-up':>8}  {'job':>7}")
        for label, warm, job in rows:
            print(f"  {label:<{width}}  {warm:6.1f} s  {job:5.1f} s")
        first, second = rows[0][2], rows[1][2]
        print(f"first job − second job: {first - second:.1f} s (target at most "
              f"{JOB_TARGET:.0f} s: {'met' if first - second <= JOB_TARGET else 'NOT met'}); "
              f"first / second {first / second:.2f}×")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
