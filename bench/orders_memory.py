"""Peak memory of a large order table: reading and validating it into the compiled loop's
rows, the whole backtest, the backtest with its orders and fills tables, and the command
line end to end (`tradegap backtest --orders ... --out`, every table written).

Writes a generated market and an order table of `--rows` rows (market, limit and stop
orders on random assets and bars, sorted by timestamp) as Parquet or CSV, then measures
each stage in a fresh process: its peak resident memory (`getrusage` of that process) and
the rows it handled, side by side for the two ways in: `whole` loads the validated table
(`load_orders`, as before) and converts it; `batched` reads and checks it a batch of rows
at a time straight into the loop's rows (`OrderTable.read`, what `run_orders` does).
The `cli` stage runs the command in a child process (its path is always `batched`) and
prints its peak against the 1.5 GB budget. Usage:

    python bench/orders_memory.py [--rows 10000000] [--assets 500] [--days 2520]
                                  [--format parquet|csv] [--stage rows run tables cli]
                                  [--path whole batched]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

STAGES = ("rows", "run", "tables", "cli")
BUDGET_GB = 1.5
PATHS = ("whole", "batched")


def write_inputs(folder: Path, rows: int, assets: int, days: int, fmt: str) -> tuple[Path, Path]:
    """A generated market and `rows` orders on it, as files in `folder`."""
    from engine.data.synthetic import generate_market

    market = generate_market(n_assets=assets, n_days=days, seed=0)
    prices = folder / "prices.parquet"
    market.write_parquet(prices)
    rng = np.random.default_rng(1)
    stamps = market["timestamp"].unique().sort()
    names = market["asset"].unique().sort()
    bar = np.sort(rng.integers(0, len(stamps) - 1, rows))
    kind = rng.choice(np.array(["market", "limit", "stop"]), rows, p=[0.5, 0.3, 0.2])
    level = np.where(kind == "limit", 1.0, np.where(kind == "stop", 1e6, np.nan))
    orders = pl.DataFrame({
        "timestamp": stamps.gather(bar),
        "asset": names.gather(rng.integers(0, len(names), rows)),
        "type": kind,
        "quantity": rng.choice(np.array([-1.0, 1.0]), rows),
        "limit_price": np.where(kind == "limit", level, np.nan),
        "stop_price": np.where(kind == "stop", level, np.nan),
    }).with_columns(pl.col("limit_price", "stop_price").fill_nan(None),
                    valid_until=pl.when(pl.col("type") != "market").then(pl.lit("1")))
    path = folder / f"orders.{fmt}"
    if fmt == "csv":
        orders.write_csv(path)
    else:
        orders.write_parquet(path)
    return prices, path


def measure(stage: str, path: str, prices: str, orders: str) -> dict:
    """Run one stage in this process (`cli`: in a child); its peak RSS and the rows it
    handled."""
    import resource

    if stage == "cli":
        return measure_cli(prices, orders)

    from engine.backtest import market_of
    from engine.core.config import BacktestConfig
    from engine.core.loop import simulate
    from engine.core.strategy import OrderTable
    from engine.data.loading import load_orders
    from engine.results.tables import BacktestResult

    market = market_of(prices)
    start = time.perf_counter()
    strategy = (OrderTable(load_orders(orders, market)) if path == "whole"
                else OrderTable.read(orders, market))
    if stage == "rows":
        handled = len(strategy.order_rows(market)[2])
    else:
        simulation = simulate(market, strategy, BacktestConfig())
        handled = simulation.book.n_orders
        if stage == "tables":
            result = BacktestResult(simulation)
            tables = result.orders, result.fills
            handled = tables[0].height
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB → GiB
    return {"stage": stage, "path": path, "rows": handled, "peak_gb": peak,
            "seconds": elapsed}


def measure_cli(prices: str, orders: str) -> dict:
    """`tradegap backtest --orders` into a temporary folder, run as a child process: its
    peak RSS and the rows of the orders table it wrote."""
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "pipelines.cli", "backtest", "--prices",
                              prices, "--orders", orders, "--out", str(out)],
                             capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"tradegap backtest: {run.stderr.strip().splitlines()[-1]}")
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        handled = pl.scan_parquet(out / "orders.parquet").select(pl.len()).collect().item()
    return {"stage": "cli", "path": "batched", "rows": handled, "peak_gb": peak,
            "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--stage", nargs="+", choices=STAGES, default=["rows", "run"])
    parser.add_argument("--path", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        prices, orders = write_inputs(Path(tmp), args.rows, args.assets, args.days, args.format)
        size = orders.stat().st_size / 1024**2
        print(f"{args.rows:,} order rows ({args.format}, {size:,.0f} MB) on "
              f"{args.assets} assets × {args.days} days")
        print(f"{'stage':<7} {'path':<8} {'rows':>12} {'peak RSS':>10} {'time':>8}")
        for stage in args.stage:
            for path in (["batched"] if stage == "cli" else args.path):
                out = subprocess.run([sys.executable, __file__, "--measure", stage, path,
                                      str(prices), str(orders)], capture_output=True, text=True)
                if out.returncode:
                    print(f"{stage:<7} {path:<8} failed: "
                          f"{out.stderr.strip().splitlines()[-1]}")
                    continue
                r = json.loads(out.stdout)
                budget = (f"  ({'under' if r['peak_gb'] < BUDGET_GB else 'OVER'} the "
                          f"{BUDGET_GB} GB budget)" if stage == "cli" else "")
                print(f"{r['stage']:<7} {r['path']:<8} {r['rows']:>12,} "
                      f"{r['peak_gb']:>8.2f} GB {r['seconds']:>7.1f}s{budget}", flush=True)


if __name__ == "__main__":
    main()
