"""Reading native logs: the engine's fills of a daily top-50 rebalance (500 assets × 2,520
days, about 150,000 fills) written as vectorbt's records_readable, nautilus_trader's fills
report and an IB Flex Trades CSV, each read back onto the bars (`engine.logs.read_log`:
detection, sides, times to bars, symbols, the checks against every fill's bar).

Usage: python bench/log_reading.py [--assets 500] [--days 2520]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from engine import run_backtest
from engine.data.synthetic import generate_market, momentum_scores
from engine.logs import read_log
from engine.research.weights import top_k_weights


def layouts(fills: pl.DataFrame) -> dict[str, pl.DataFrame]:
    side = pl.when(pl.col("quantity") > 0)
    return {
        "vectorbt": fills.with_row_index("Order Id").select(
            "Order Id", Column="asset", Timestamp=pl.col("timestamp").dt.strftime("%Y-%m-%d"),
            Size=pl.col("quantity").abs(), Price="price", Fees="fee",
            Side=side.then(pl.lit("Buy")).otherwise(pl.lit("Sell"))),
        "nautilus": fills.with_row_index("n").select(
            client_order_id=pl.format("O-{}", "n"), instrument_id=pl.col("asset") + ".XNAS",
            order_side=side.then(pl.lit("BUY")).otherwise(pl.lit("SELL")),
            order_type=pl.lit("MARKET"), last_qty=pl.col("quantity").abs(),
            last_px="price", commission=pl.format("{} USD", pl.col("fee").round(2)),
            ts_event=pl.col("timestamp").dt.strftime("%Y-%m-%d 21:00:00+00:00")),
        "ib": fills.select(
            Symbol="asset", DateTime=pl.col("timestamp").dt.strftime("%Y%m%d;093100"),
            Quantity="quantity", TradePrice="price", IBCommission=-pl.col("fee"),
            **{"Buy/Sell": side.then(pl.lit("BUY")).otherwise(pl.lit("SELL"))},
            LevelOfDetail=pl.lit("EXECUTION")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    args = parser.parse_args()
    market = generate_market(n_assets=args.assets, n_days=args.days, seed=0)
    fills = run_backtest(market, top_k_weights(momentum_scores(market), k=50, every=1)).fills
    print(f"{fills.height:,} fills on {args.assets} assets × {args.days} days")
    with tempfile.TemporaryDirectory() as folder:
        for name, frame in layouts(fills).items():
            path = Path(folder) / f"{name}.csv"
            frame.write_csv(path)
            start = time.perf_counter()
            read = read_log(path, market)
            took = time.perf_counter() - start
            print(f"{name:>9}: {read.fills.height:,} fills read as {read.format.title} in "
                  f"{took:.2f}s ({read.fills.height / took:,.0f} fills/s)")


if __name__ == "__main__":
    main()
