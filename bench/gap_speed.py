"""Trade-gap analysis speed: 1,000,000 fills per side, analyzed from the fill logs alone.

Side A fills every asset on every bar of a generated market; side B is A with a fee model
change on every fill, a price change on 1% of fills, 1,000 fills missing and 1,000 rows
duplicated. Timed: `analyze` (canonical join, cause labels, attribution, equity curves)
without target weights, i.e. the replay-free path; the replay path is timed separately on
the default pipeline data. Usage: python bench/gap_speed.py [--fills 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from engine.data.synthetic import generate_market
from engine.gap.analyze import Side, analyze


def fill_logs(n_fills: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    n_assets = 1000
    prices = generate_market(n_assets=n_assets, n_days=n_fills // n_assets, seed=seed,
                             gaps=False)
    rng = np.random.default_rng(seed)
    quantity = np.round(rng.normal(0, 100, prices.height), 2)
    quantity[quantity == 0] = 1.0
    a = prices.select("timestamp", "asset", pl.Series("quantity", quantity),
                      price=pl.col("open"), fee=pl.col("open") * np.abs(quantity) * 0.001)
    moved = rng.random(a.height) < 0.01
    b = a.with_columns(
        fee=pl.col("fee") * 0.5,
        price=pl.when(pl.Series(moved)).then(pl.col("price") * 1.001).otherwise(pl.col("price")),
    )
    drop = rng.choice(b.height, 1000, replace=False)
    b = b.filter(~pl.Series(np.isin(np.arange(b.height), drop)))
    dup = b.sample(1000, seed=seed)
    b = pl.concat([b, dup]).sort("timestamp", "asset", maintain_order=True)
    return prices, a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    args = parser.parse_args()
    prices, a, b = fill_logs(args.fills)
    start = time.perf_counter()
    analysis = analyze(Side(a, name="A"), Side(b, name="B"), prices)
    seconds = time.perf_counter() - start
    s = analysis.summary
    print(f"fills: A {a.height:,}, B {b.height:,}; divergent keys {s['fills']['divergent_keys']:,}")
    print(f"causes: {s['causes']}")
    print(f"analyzed in {seconds:.2f} s ({a.height / seconds:,.0f} fills per second per side); "
          f"target: under 10 s")


if __name__ == "__main__":
    main()
