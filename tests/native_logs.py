"""Fill logs written by the real tools (vectorbt, backtrader, zipline) on small markets.

Each writer runs the engine itself and exports its log the way its users do (the export
line docs/explain.md gives); zipline runs in its side environment (`engine.peers.zipline`)
through `python -m tests.native_logs zipline DIR`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.data.loading import load_prices
from engine.data.market import Market
from engine.data.synthetic import generate_market

REPO = Path(__file__).resolve().parents[1]


def small_market(n_assets: int = 6, n_days: int = 20, seed: int = 3
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bars on 20 NYSE sessions without holidays (2024-01-16 on, so zipline's calendar
    keeps our dates) and equal weights on the top 3 of a random score every 5 bars."""
    prices = generate_market(n_assets=n_assets, n_days=n_days, seed=seed,
                             start="2024-01-16", gaps=False)
    rng = np.random.default_rng(seed)
    stamps = prices["timestamp"].unique().sort()
    assets = prices["asset"].unique().sort().to_list()
    rows = []
    for t in range(0, n_days - 2, 5):
        for j in sorted(np.argsort(-rng.normal(size=n_assets))[:3]):
            rows.append((stamps[t], assets[j], 1 / 3))
    weights = pl.DataFrame(rows, schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                                         "weight": pl.Float64}, orient="row")
    return prices, weights


def vectorbt_log(prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig,
                 path: Path) -> Path:
    """`pf.orders.records_readable` as the user saves it (CSV or Parquet by suffix)."""
    import vectorbt as vbt

    from engine.peers.vectorbt import vectorbt_inputs

    market = Market.from_bars(load_prices(prices))
    portfolio = vbt.Portfolio.from_orders(**vectorbt_inputs(market, weights, config))
    readable = portfolio.orders.records_readable
    if path.suffix == ".parquet":
        readable.to_parquet(path)
    else:
        readable.to_csv(path, index=False)
    return path


def backtrader_logs(prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig,
                    folder: Path) -> tuple[Path, Path]:
    """The Transactions analyzer flattened to CSV, and the PyFolio analyzer's transactions
    frame as `to_csv` writes it."""
    import backtrader as bt
    import pandas as pd

    from engine.peers.backtrader import rebalancing_cerebro

    cerebro, _ = rebalancing_cerebro(prices, weights, config)
    cerebro.addanalyzer(bt.analyzers.Transactions, _name="tx")
    cerebro.addanalyzer(bt.analyzers.PyFolio, _name="pf")
    (strategy,) = cerebro.run()
    analysis = strategy.analyzers.tx.get_analysis()
    flat = pd.DataFrame([(when, *row) for when, rows in analysis.items() for row in rows],
                        columns=["date", "amount", "price", "sid", "symbol", "value"])
    transactions = folder / "bt_transactions.csv"
    flat.to_csv(transactions, index=False)
    pyfolio = folder / "bt_pyfolio.csv"
    strategy.analyzers.pf.get_pf_items()[2].to_csv(pyfolio)
    return transactions, pyfolio


def zipline_log(prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig,
                folder: Path) -> Path:
    """zipline's `perf['transactions']` flattened to CSV, run in the side environment."""
    from engine.peers.zipline import side_python

    prices.write_parquet(folder / "prices.parquet")
    weights.write_parquet(folder / "weights.parquet")
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(side_python()), "-m", "tests.native_logs", "zipline",
                           str(folder)], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"zipline failed:\n{done.stderr[-3000:]}")
    return folder / "zipline_transactions.csv"


def _zipline_here(folder: Path) -> None:
    """In the side environment: run the adapter, keep zipline's own performance frame."""
    import pandas as pd

    import engine.peers.zipline as adapter

    kept = {}
    normalize = adapter._normalize

    def keep(performance, market, ids=None):
        kept["performance"] = performance
        return normalize(performance, market, ids)

    adapter._normalize = keep
    config = BacktestConfig.from_dict(json.loads((folder / "config.json").read_text()))
    adapter._run_here(pl.read_parquet(folder / "prices.parquet"),
                      pl.read_parquet(folder / "weights.parquet"), config, False)
    rows = [txn for day in kept["performance"]["transactions"] for txn in day]
    pd.DataFrame(rows).to_csv(folder / "zipline_transactions.csv", index=False)


def nautilus_report(prices: pl.DataFrame, orders: pl.DataFrame, fees: float,
                    folder: Path) -> Path:
    """nautilus_trader's `trader.generate_fills_report()` as `to_csv` writes it (and its
    `generate_order_fills_report()` beside it, `nautilus_orders.csv`), for market
    orders (`timestamp, asset, quantity`) submitted in `on_bar`: each fills at that bar's
    close. Bars are stamped at 21:00 UTC (the session close) and priced in USD cents."""
    prices.write_parquet(folder / "prices.parquet")
    orders.write_parquet(folder / "orders.parquet")
    (folder / "fees.json").write_text(json.dumps(fees))
    python = REPO / ".venv" / "nautilus" / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"no nautilus_trader environment at {python}: `make` creates it "
                           "(the nautilus peer's side environment, nautilus_trader 1.221.0)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(python), "-m", "tests.native_logs", "nautilus", str(folder)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nautilus_trader failed:\n{done.stderr[-3000:]}")
    return folder / "nautilus_fills.csv"


def _nautilus_here(folder: Path) -> None:
    """In the nautilus side environment: one venue, one Equity and daily LAST bars per
    asset, a strategy that submits the orders of each bar in its `on_bar`."""
    from decimal import Decimal

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import Bar, BarSpecification, BarType
    from nautilus_trader.model.enums import (
        AccountType,
        AggregationSource,
        BarAggregation,
        OmsType,
        OrderSide,
        PriceType,
    )
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.trading.strategy import Strategy

    prices = pl.read_parquet(folder / "prices.parquet")
    orders = pl.read_parquet(folder / "orders.parquet")
    fee = Decimal(repr(json.loads((folder / "fees.json").read_text())))
    venue = Venue("XNAS")
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("TESTER-001"), logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(venue=venue, oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
                     base_currency=USD, starting_balances=[Money(1_000_000, USD)])
    spec = BarSpecification(1, BarAggregation.DAY, PriceType.LAST)
    types = {}
    for name in prices["asset"].unique().sort().to_list():
        instrument = Equity(
            instrument_id=InstrumentId(Symbol(name), venue), raw_symbol=Symbol(name),
            currency=USD, price_precision=2, price_increment=Price(0.01, 2),
            lot_size=Quantity.from_int(1), ts_event=0, ts_init=0, maker_fee=fee, taker_fee=fee)
        engine.add_instrument(instrument)
        types[name] = BarType(instrument.id, spec, AggregationSource.EXTERNAL)
    close_ns = (pl.col("timestamp").dt.offset_by("21h").cast(pl.Datetime("ns"))
                .cast(pl.Int64))
    bars = [Bar(types[a], Price(o, 2), Price(h, 2), Price(low, 2), Price(c, 2),
                Quantity(max(v, 1.0), 0), ts, ts)
            for a, o, h, low, c, v, ts in prices.select(
                "asset", "open", "high", "low", "close", pl.col("volume").floor(),
                close_ns.alias("ts")).iter_rows()]
    engine.add_data(bars)
    due: dict[tuple[int, str], list[float]] = {}
    for ts, asset, q in orders.select(close_ns.alias("ts"), "asset", "quantity").iter_rows():
        due.setdefault((ts, asset), []).append(q)

    class Orders(Strategy):
        def on_start(self) -> None:
            for bar_type in types.values():
                self.subscribe_bars(bar_type)

        def on_bar(self, bar) -> None:
            symbol = bar.bar_type.instrument_id.symbol.value
            for q in due.get((bar.ts_init, symbol), ()):
                side = OrderSide.BUY if q > 0 else OrderSide.SELL
                self.submit_order(self.order_factory.market(
                    bar.bar_type.instrument_id, side, Quantity.from_int(int(abs(q)))))

    engine.add_strategy(Orders())
    engine.run()
    engine.trader.generate_fills_report().to_csv(folder / "nautilus_fills.csv")
    engine.trader.generate_order_fills_report().to_csv(folder / "nautilus_orders.csv")
    engine.dispose()


if __name__ == "__main__":
    if sys.argv[1] == "zipline":
        _zipline_here(Path(sys.argv[2]))
    elif sys.argv[1] == "nautilus":
        _nautilus_here(Path(sys.argv[2]))
