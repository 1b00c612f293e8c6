"""Run nautilus_trader (1.221.0) on our prices and weights or orders; normalize its fills.

One `BacktestEngine`, one venue (`XNAS`, netting, a margin account so that the book may
borrow as the `allow_negative` cash policy does; nautilus's risk engine does not check
margin accounts), one `Equity` per asset and one daily LAST bar per asset and timestamp
(`ts_init` = our timestamp, which nautilus takes as the bar's close). Bars execute
(`bar_execution=True`): each becomes trade ticks open → high → low → close (or the extreme
nearer the open first with `bar_adaptive_high_low_ordering`), docs/peers.md "nautilus".

Exactness: prices and the booking currency carry 16 decimals (nautilus's high-precision
build, `FIXED_PRECISION = 16`), so nautilus rounds nothing that matters at 1e-9; USD
(cents) would round every commission. Quantities are whole shares (an `Equity` has size
precision 0). Fees: `fees` as the instrument's maker and taker fee (nautilus's
`MakerTakerFeeModel`: notional × rate); the other cost settings are refused.

The strategy acts once every bar of a timestamp has been seen (nautilus runs the commands
of a bar's `on_bar` after that bar's ticks), so its market orders fill at the bars' closes,
stamped with them: the `same_close` timing. nautilus has no target-percent order: with
weights, the strategy sizes each asset with a bar as the engine's `same_close` rebalance
does (whole shares of `weight × book value ÷ close − position`, toward zero, the book
valued at the last closes), sells first; an asset without a bar is not traded.

nautilus_trader 1.221.0 requires pandas < 3 (vectorbt 1.2.0 requires pandas >= 3), so it
runs in a side environment (`python -m engine.peers.nautilus DIR`) where it cannot be
imported: `$TRADEGAP_NAUTILUS_PYTHON`, or `.venv/nautilus` beside the repo, which
`python -m engine.peers.nautilus --setup` creates.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.core.strategy import decision_weights
from engine.data.loading import load_prices, load_weights
from engine.data.market import Market
from engine.peers import side_env
from engine.peers.result import PeerResult
from engine.results.derive import equity_from_fills

REQUIREMENTS = (
    "nautilus_trader==1.221.0", "numpy==2.4.6", "polars==2.1.0", "pandera[polars]==0.35.0",
    "numba==0.68.1",
)
SIDE_ENV = side_env.REPO / ".venv" / "nautilus"
PYTHON_VARIABLE = "TRADEGAP_NAUTILUS_PYTHON"
MODULE = "engine.peers.nautilus"
VENUE = "XNAS"
PRECISION = 16
UNSUPPORTED = {
    "per_share": "nautilus's fee model charges a share of the notional",
    "min_fee": "nautilus's fee model has no minimum",
    "fixed_fee": "nautilus's fee model has no fixed fee",
    "slippage": "nautilus slips only through its probabilistic FillModel",
    "allow_short": "the adapter runs long-only books",
}


@dataclass(frozen=True)
class NautilusResult(PeerResult):
    """A nautilus run: fills and equity (our ledger of nautilus's fills), `orders`: each
    order's row, final nautilus status and the reason of a rejection or denial, and
    `account`: nautilus's own account at the end (`balance`, `unrealized` at the last
    closes, `equity` their sum)."""

    orders: pl.DataFrame = field(default_factory=pl.DataFrame)
    account: pl.DataFrame = field(default_factory=pl.DataFrame)


def run_nautilus(prices: pl.DataFrame, weights: pl.DataFrame,
                 config: BacktestConfig | None = None, python: str | Path | None = None,
                 adaptive: bool = False) -> NautilusResult:
    """Run nautilus on the same inputs as `engine.run_backtest` and normalize the result."""
    config = config or BacktestConfig.for_profile("nautilus")
    _check(config, weights_mode=True)
    return _dispatch(prices, weights, config, python, "weights", adaptive)


def run_nautilus_orders(prices: pl.DataFrame, orders: pl.DataFrame,
                        config: BacktestConfig | None = None,
                        python: str | Path | None = None, adaptive: bool = False
                        ) -> NautilusResult:
    """Submit an order table's rows in nautilus at the close of their timestamps.

    Fills' `order_id` is the row. `adaptive` sets `bar_adaptive_high_low_ordering`.
    """
    config = config or BacktestConfig.for_profile("nautilus")
    _check(config, weights_mode=False)
    return _dispatch(prices, orders, config, python, "orders", adaptive)


def side_python(python: str | Path | None = None) -> Path:
    """The side interpreter: `python`, else `$TRADEGAP_NAUTILUS_PYTHON`, else `.venv/nautilus`."""
    return side_env.interpreter(python, PYTHON_VARIABLE, SIDE_ENV, MODULE)


def setup_side_env(path: Path = SIDE_ENV) -> Path:
    """Create (once per set of requirements) the environment with nautilus; its python."""
    return side_env.setup(path, REQUIREMENTS)


def _check(config: BacktestConfig, weights_mode: bool) -> None:
    for name, why in UNSUPPORTED.items():
        if getattr(config, name):
            raise ValueError(f"cannot run nautilus with {name}: {why}")
    if config.fill != "same_close":
        raise ValueError("nautilus fills a bar's market orders at that bar's close; "
                         f"got fill={config.fill!r}")
    if config.shares != "integer":
        raise ValueError("nautilus equities trade whole shares: shares='integer'")
    if weights_mode and config.cash_policy != "allow_negative":
        raise ValueError("the adapter's margin account lets cash go negative: "
                         "cash_policy='allow_negative'")


def _dispatch(prices, inputs, config, python, mode, adaptive) -> NautilusResult:
    if python is None and importlib.util.find_spec("nautilus_trader") is not None:
        return _run_here(prices, inputs, config, mode, adaptive)
    tables = side_env.run_module(
        MODULE, side_python(python), prices, inputs,
        {"config": config.to_dict(), "mode": mode, "adaptive": adaptive})
    return NautilusResult(tables["fills"], tables["equity"], tables["orders"],
                          tables["account"])


def _run_from_folder(work: Path) -> None:
    """The side environment's entry: read the inputs from `work`, write fills and equity."""
    settings = json.loads((work / "settings.json").read_text())
    result = _run_here(pl.read_parquet(work / "prices.parquet"),
                       pl.read_parquet(work / "inputs.parquet"),
                       BacktestConfig.from_dict(settings["config"]), settings["mode"],
                       settings["adaptive"])
    result.fills.write_parquet(work / "fills.parquet")
    result.equity.write_parquet(work / "equity.parquet")
    result.orders.write_parquet(work / "orders.parquet")
    result.account.write_parquet(work / "account.parquet")


def _run_here(prices: pl.DataFrame, inputs: pl.DataFrame, config: BacktestConfig,
              mode: str, adaptive: bool) -> NautilusResult:
    market = Market.from_bars(load_prices(prices))
    if mode == "weights":
        plan = _WeightsPlan(market, decision_weights(market, load_weights(inputs, market)))
    else:
        from engine.peers.nautilus_orders import OrdersPlan

        plan = OrdersPlan(market, inputs)
    fills, orders, account = _simulate(market, config, plan, adaptive)
    return NautilusResult(fills, equity_from_fills(fills, market, config.initial_cash), orders,
                          account)


class _WeightsPlan:
    """At each decision bar's close: whole-share targets of the weights, sells first."""

    def __init__(self, market: Market, decisions: np.ndarray) -> None:
        self.market = market
        self.decisions = decisions

    def place(self, desk, bar: int) -> None:
        target = self.decisions[bar]
        if np.isnan(target).all():
            return
        closes = self.market.last_close[bar]
        held = desk.held.copy()
        value = desk.cash + float(np.nansum(held * closes))
        has_bar = self.market.has_bar[bar]
        delta = np.where(has_bar, np.nan_to_num(target) * value / closes - held, 0.0)
        size = np.floor(np.abs(delta))
        size = np.where(delta < 0, np.minimum(size, held), size)
        order = np.argsort(np.sign(delta) * size * closes, kind="stable")
        for j in order:
            if size[j] > 0:
                desk.market(int(j), float(size[j]) * np.sign(delta[j]), row=None)


class Desk:
    """What a plan sees and does inside the nautilus strategy: the cash and shares held
    (from nautilus's fills) and order submission by asset column."""

    def __init__(self, strategy, instruments, cash: float) -> None:
        self.strategy = strategy
        self.instruments = instruments
        self.cash = cash
        self.held = np.zeros(len(instruments))
        self.rows: dict[str, int] = {}
        self.submitted = 0

    def quantity(self, amount: float):
        from nautilus_trader.model.objects import Quantity

        return Quantity(abs(amount), 0)

    def price(self, value: float):
        from nautilus_trader.model.objects import Price

        return Price(value, PRECISION)

    def side(self, amount: float):
        from nautilus_trader.model.enums import OrderSide

        return OrderSide.BUY if amount > 0 else OrderSide.SELL

    def market(self, j: int, amount: float, row: int | None) -> None:
        order = self.strategy.order_factory.market(
            self.instruments[j].id, self.side(amount), self.quantity(amount))
        self.submit(order, row)

    def submit(self, order, row: int | None) -> None:
        """Submit `order`; its fills carry `row` (None: numbered in submission order)."""
        self.rows[order.client_order_id.value] = self.submitted if row is None else row
        self.submitted += 1
        self.strategy.submit_order(order)


def _simulate(market: Market, config: BacktestConfig, plan, adaptive: bool
              ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Run the plan in a nautilus backtest; the fills (one per order and bar), the
    orders' final statuses and the account at the end."""
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import Currency
    from nautilus_trader.model.data import Bar, BarSpecification, BarType
    from nautilus_trader.model.enums import (
        AccountType,
        AggregationSource,
        BarAggregation,
        CurrencyType,
        OmsType,
        PriceType,
    )
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.trading.strategy import Strategy

    currency = Currency("TGX", PRECISION, 0, "tradegap exact dollar", CurrencyType.FIAT)
    venue = Venue(VENUE)
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("TRADEGAP-001"), logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(
        venue=venue, oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
        base_currency=currency, starting_balances=[Money(config.initial_cash, currency)],
        bar_execution=True, bar_adaptive_high_low_ordering=adaptive,
    )
    fee = Decimal(repr(float(config.fees)))
    instruments = []
    for name in market.assets.to_list():
        instrument = Equity(
            instrument_id=InstrumentId(Symbol(name), venue), raw_symbol=Symbol(name),
            currency=currency, price_precision=PRECISION,
            price_increment=Price(10.0 ** -PRECISION, PRECISION),
            lot_size=Quantity.from_int(1), ts_event=0, ts_init=0, maker_fee=fee, taker_fee=fee,
        )
        engine.add_instrument(instrument)
        instruments.append(instrument)
    spec = BarSpecification(1, BarAggregation.DAY, PriceType.LAST)
    bar_types = [BarType(i.id, spec, AggregationSource.EXTERNAL) for i in instruments]
    stamps = market.timestamps.cast(pl.Datetime("ns")).cast(pl.Int64).to_numpy()
    ohlcv = (market.open, market.high, market.low, market.close,
             np.nan_to_num(market.volume))
    bars = []
    for j, bar_type in enumerate(bar_types):
        for t in np.flatnonzero(market.has_bar[:, j]):
            o, h, low, c, volume = (float(a[t, j]) for a in ohlcv)
            bars.append(Bar(
                bar_type, Price(o, PRECISION), Price(h, PRECISION), Price(low, PRECISION),
                Price(c, PRECISION), Quantity(max(np.floor(volume), 1.0), 0),
                int(stamps[t]), int(stamps[t])))
    engine.add_data(bars)
    bar_of = {int(s): t for t, s in enumerate(stamps)}
    per_bar = market.has_bar.sum(axis=1)
    column = {i.id.value: j for j, i in enumerate(instruments)}
    fills: list[tuple] = []
    reasons: dict[str, str] = {}

    class Runner(Strategy):
        def on_start(self) -> None:
            self.desk = Desk(self, instruments, config.initial_cash)
            self.seen = 0
            for bar_type in bar_types:
                self.subscribe_bars(bar_type)

        def on_bar(self, bar) -> None:
            self.seen += 1
            t = bar_of[bar.ts_init]
            if self.seen == per_bar[t]:
                self.seen = 0
                plan.place(self.desk, t)

        def on_order_rejected(self, event) -> None:
            reasons[event.client_order_id.value] = event.reason

        def on_order_denied(self, event) -> None:
            reasons[event.client_order_id.value] = event.reason

        def on_order_filled(self, event) -> None:
            j = column[event.instrument_id.value]
            q = event.last_qty.as_double()
            q = q if event.order_side == self.desk.side(1.0) else -q
            px = event.last_px.as_double()
            paid = event.commission.as_double()
            self.desk.cash -= q * px + paid
            self.desk.held[j] += q
            fills.append((bar_of[event.ts_event], j, q, px, paid,
                          self.desk.rows.get(event.client_order_id.value)))
            if hasattr(plan, "filled"):
                plan.filled(self.desk, event)

    runner = Runner()
    engine.add_strategy(runner)
    engine.run()
    rows = runner.desk.rows
    statuses = {o.client_order_id.value: o.status_string() for o in engine.cache.orders()}
    orders = pl.DataFrame(
        [(rows[c], statuses.get(c), reasons.get(c)) for c in rows], orient="row",
        schema={"order_id": pl.Int64, "status": pl.String, "reason": pl.String})
    balance = engine.cache.account_for_venue(venue).balance_total(currency).as_double()
    last = market.last_close[-1]
    unrealized = sum(
        p.unrealized_pnl(Price(float(last[column[p.instrument_id.value]]), PRECISION)).as_double()
        for p in engine.cache.positions_open())
    account = pl.DataFrame({"balance": [balance], "unrealized": [unrealized],
                            "equity": [balance + unrealized]})
    engine.dispose()
    return _fills_table(market, fills), orders.sort("order_id"), account


def _fills_table(market: Market, fills: list[tuple]) -> pl.DataFrame:
    """Fills as our table: partial fills of one order in one bar (nautilus's L1 book
    fills an order past the tick's size one price increment further) as one, at their
    average price."""
    stamps = market.timestamps
    assets = market.assets.to_list()
    frame = pl.DataFrame(
        fills, orient="row",
        schema={"bar": pl.Int64, "column": pl.Int64, "quantity": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64, "order_id": pl.Int64},
    ).with_row_index("seq")
    merged = frame.group_by("bar", "column", "order_id", maintain_order=True).agg(
        pl.col("seq").first(), (pl.col("quantity") * pl.col("price")).sum().alias("value"),
        pl.col("quantity").sum(), pl.col("fee").sum())
    merged = merged.sort("seq")
    return pl.DataFrame({
        "timestamp": pl.Series([stamps[b] for b in merged["bar"]], dtype=stamps.dtype),
        "asset": pl.Series([assets[c] for c in merged["column"]], dtype=pl.String),
        "quantity": merged["quantity"],
        "price": merged["value"] / merged["quantity"],
        "fee": merged["fee"],
        "order_id": merged["order_id"],
    })


if __name__ == "__main__":
    if sys.argv[1:] == ["--setup"]:
        print(setup_side_env())
    else:
        _run_from_folder(Path(sys.argv[1]))
