"""A first run against the second: cold `tradegap backtest`, and `make run` on a new clone.

1. `tradegap backtest` (`python -m pipelines.cli backtest`, this tree's code) in a new
   process each time, on the daily turnover workload of `engine_vs_vectorbt.py` (500 assets
   × 2,520 days, about 95 fills a bar), with the compiled-code cache present: median, best
   and worst wall time of `--repeats` runs, and the median CPU seconds (the child's user +
   system time), against the 2 s target. Beside it, the write-time validation of the five
   tables alone, in new processes taking turns: through pandera (importing it, which
   imports pandas, then validating) against `schemas.declared` (the same models'
   declarations checked with polars), CPU seconds of that step.
2. `make run` on a fresh clone of this repository's committed HEAD into a temporary folder,
   with its `.venv` a link to this tree's environment (the install step is skipped with
   `make -o .venv/.runtime-installed`, so the shared environment is never reinstalled;
   `PYTHONPATH` points at the clone, so the clone's code runs). `make run` runs twice, each
   time as its two parts: `make warm` (the warm-up: compiles the clone's kernels the first
   time, nothing the second), then `make run` (the job, `tradegap run`, after a warm-up
   that finds nothing to do), each timed in wall and CPU seconds (all processes it
   started). The target: the first job within 15 s of the second. For comparison, the job
   on a second fresh clone without the warm-up (`tradegap run` directly), whose kernels
   compile on first use. With the dev extras installed the job runs the peers too.

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

from engine_vs_vectorbt import cold_backtests, inputs

ROOT = Path(__file__).resolve().parents[1]
CLI_TARGET = 2.0  # seconds, a cold `tradegap backtest` with the cache
JOB_TARGET = 15.0  # seconds, the first job's time over the second's


def cold_backtest(repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `repeats` cold `tradegap backtest` runs (cache present)."""
    return cold_backtests(500, 2520, repeats)


VALIDATE = """
import sys, time
from pathlib import Path
from engine import BacktestConfig, run_backtest
result = run_backtest(Path(sys.argv[1]), Path(sys.argv[2]), BacktestConfig(fees=0.001))
tables = result.tables()
start = time.process_time()
if sys.argv[3] == "pandera":  # else "schemas.declared"
    import schemas.backtest as models
    for name, frame in tables.items():
        getattr(models, name.capitalize()).validate(frame, lazy=True)
else:
    from schemas.declared import conforms
    assert all(conforms(frame, "schemas.backtest", name.capitalize())
               for name, frame in tables.items())
print(time.process_time() - start)
"""


def validation_side_by_side(repeats: int) -> dict[str, list[float]]:
    """CPU seconds of validating the five tables, pandera against `schemas.declared`, each
    in a new process after the backtest, the two taking turns."""
    seconds: dict[str, list[float]] = {"pandera": [], "schemas.declared": []}
    with tempfile.TemporaryDirectory(prefix="cold_start_") as folder:
        work = Path(folder)
        prices, weights = inputs(500, 2520, "turnover", 1)
        prices.write_parquet(work / "prices.parquet")
        weights.write_parquet(work / "weights.parquet")
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        for _ in range(repeats):
            for way in seconds:
                done = subprocess.run(
                    [sys.executable, "-c", VALIDATE, str(work / "prices.parquet"),
                     str(work / "weights.parquet"), way],
                    check=True, capture_output=True, text=True, cwd=ROOT, env=environment)
                seconds[way].append(float(done.stdout.split()[-1]))
    return seconds


def clone(into: Path) -> Path:
    """A fresh clone of HEAD at `into`, its `.venv` a link to this tree's environment."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(into)], check=True)
    (into / ".venv").symlink_to((ROOT / ".venv").resolve())
    return into


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `command` run in `cwd` with the clone's code first."""
    environment = {**os.environ, "PYTHONPATH": str(cwd)}
    environment.pop("NUMBA_CACHE_DIR", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(done.stdout[-3000:] + done.stderr[-3000:]
                 + f"bench/cold_start.py: {' '.join(command)} failed")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def make_runs() -> list[tuple[str, tuple[float, float] | None, tuple[float, float]]]:
    """(label, warm-up wall and CPU, job wall and CPU) of two `make run`s on a new clone,
    and of the job on another new clone without the warm-up."""
    make = ["make", "--no-print-directory", "-o", ".venv/.runtime-installed"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cold_start_clone_") as folder:
        checkout = clone(Path(folder, "tradegap"))
        for label in ("first make run", "second make run"):
            rows.append((label, timed([*make, "warm"], checkout), timed([*make, "run"], checkout)))
        bare = clone(Path(folder, "without_warmup"))
        rows.append(("first job without the warm-up (kernels compile in it)", None,
                     timed([str(bare / ".venv" / "bin" / "tradegap"), "run"], bare)))
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
    seconds = {way: statistics.median(values)
               for way, values in validation_side_by_side(args.repeats).items()}
    print("validating the five tables before writing them (CPU, median of "
          f"{args.repeats} new processes each, taking turns): "
          + "; ".join(f"{way} {value:.3f} s" for way, value in seconds.items())
          + f"; {seconds['pandera'] / seconds['schemas.declared']:.1f}× less CPU")
    if not args.skip_clone:
        rows = make_runs()
        print("\n`make run` on a fresh clone (shared environment), wall; CPU:")
        width = max(len(label) for label, _, _ in rows)
        print(f"  {'run':<{width}}  {'warm-up':>16}  {'job':>16}")
        for label, warm, job in rows:
            shown = f"{warm[0]:5.1f} s; {warm[1]:5.1f} s" if warm else "—"
            print(f"  {label:<{width}}  {shown:>16}  {job[0]:5.1f} s; {job[1]:5.1f} s")
        (first, first_cpu), (second, second_cpu) = rows[0][2], rows[1][2]
        print(f"first job − second job: {first - second:.1f} s wall, "
              f"{first_cpu - second_cpu:.1f} s CPU (target at most {JOB_TARGET:.0f} s: "
              f"{'met' if first - second <= JOB_TARGET else 'NOT met'}); first / second "
              f"{first / second:.2f}× wall, {first_cpu / second_cpu:.2f}× CPU")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
