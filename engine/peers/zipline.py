"""Run zipline-reloaded (3.2.1) on our prices and weights; normalize its records.

The bars go to zipline in memory (no bundle, no network): an SQLite asset database in a
temporary directory, and a daily bar reader over our float prices, so fills see the exact
prices (a bcolz bundle would round them to 0.001). zipline needs a trading calendar: the
bars are laid on consecutive XNYS sessions from the first timestamp on, by position, and
mapped back; zipline's timing is per bar, so the relabeling changes no number.

At the close of every decision bar (`handle_data`) the algorithm calls
`order_target_percent` for every asset with a weight, and with 0 for every held asset not
in the weights, sells first as our `rebalance` does. zipline sizes each target as
`portfolio value × weight ÷ close − position`, whole shares truncated toward zero, never
checks cash (it can go negative) and fills at the next bar's close. Only `fill =
'next_close'` is therefore accepted. Costs come from the config (`fees` → `PerDollar`,
`per_share`/`min_fee` → `PerShare`, `fixed_fee` → `PerTrade`, one of them at most;
`slippage` → `FixedBasisPointsSlippage` with `volume_limit=0.1`) unless `zipline_costs=True`
keeps zipline's defaults (5 bp slippage capped at 10% of the bar's volume, $0.001 a
share), under which large orders fill over several bars.

zipline-reloaded 3.2.1 requires pandas < 3 and vectorbt 1.2.0 pandas >= 3.0.3, so they do
not share an environment (pip then picks zipline-reloaded 3.0.4, whose compiled modules
fail to import under numpy 2). Where `zipline` cannot be imported, `run_zipline` runs this
module in a side environment (`python -m engine.peers.zipline DIR`): the interpreter given,
or `$TRADEGAP_ZIPLINE_PYTHON`, or `.venv/zipline` beside the repo, which
`python -m engine.peers.zipline --setup` creates.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from engine.core.config import BacktestConfig
from engine.core.strategy import decision_weights
from engine.data.loading import load_prices, load_weights
from engine.data.market import Market
from engine.peers import side_env
from engine.peers.result import PeerResult

REQUIREMENTS = (
    "zipline-reloaded==3.2.1", "numpy==2.4.6", "polars==2.1.0", "pandera[polars]==0.35.0",
    "numba==0.68.1",
)
REPO = side_env.REPO
SIDE_ENV = REPO / ".venv" / "zipline"
PYTHON_VARIABLE = "TRADEGAP_ZIPLINE_PYTHON"
CALENDAR = "XNYS"
UNSUPPORTED = {"allow_short": "the adapter runs long-only books"}


def run_zipline(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig | None = None,
    zipline_costs: bool = False, python: str | Path | None = None,
) -> PeerResult:
    """Run zipline on the same inputs as `engine.run_backtest` and normalize the result.

    Runs in this interpreter when it has zipline and no `python` is given, else in the
    side environment (see the module docstring).
    """
    config = config or BacktestConfig(fill="next_close")
    if config.fill != "next_close":
        raise ValueError(f"zipline fills at the next bar's close; got fill={config.fill!r}")
    for name, why in UNSUPPORTED.items():
        if getattr(config, name):
            raise ValueError(f"cannot run zipline with {name}: {why}")
    _cost_models(config, zipline_costs, check_only=True)
    if python is None and importlib.util.find_spec("zipline") is not None:
        return _run_here(prices, weights, config, zipline_costs)
    return _run_elsewhere(prices, weights, config, zipline_costs, side_python(python))


def run_zipline_orders(
    prices: pl.DataFrame, orders: pl.DataFrame, config: BacktestConfig | None = None,
    zipline_costs: bool = False, python: str | Path | None = None,
) -> PeerResult:
    """Run an order table's `market`, `limit`, `stop` and `stop_limit` rows in zipline.

    Each row is placed at the close of its timestamp with `order(asset, quantity,
    style=...)` (whole shares; zipline has no trailing stops, OCO, brackets or expiry, so
    those columns must be empty). zipline checks limits and stops against each later bar's
    close only and fills at that close (plus slippage), as the `zipline` profile's `close`
    path does. Fills' `order_id` is the row.
    """
    config = config or BacktestConfig.for_profile("zipline")
    for name in ("trail", "valid_until", "group", "parent"):
        if name in orders.columns and orders[name].drop_nulls().len():
            raise ValueError(f"zipline orders have no {name}")
    _cost_models(config, zipline_costs, check_only=True)
    if python is None and importlib.util.find_spec("zipline") is not None:
        return _run_orders_here(prices, orders, config, zipline_costs)
    return _run_elsewhere(prices, orders, config, zipline_costs, side_python(python),
                          mode="orders")


def side_python(python: str | Path | None = None) -> Path:
    """The side interpreter: `python`, else `$TRADEGAP_ZIPLINE_PYTHON`, else `.venv/zipline`."""
    return side_env.interpreter(python, PYTHON_VARIABLE, SIDE_ENV, "engine.peers.zipline")


def setup_side_env(path: Path = SIDE_ENV) -> Path:
    """Create (once per set of requirements) a virtual environment with zipline and the
    engine's needs; its python."""
    return side_env.setup(path, REQUIREMENTS)


def _run_elsewhere(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig, zipline_costs: bool,
    python: Path, mode: str = "weights",
) -> PeerResult:
    """Run this module in the side environment over Parquet files in a temporary directory
    (`mode` "orders": `weights` is an order table)."""
    with tempfile.TemporaryDirectory(prefix="tradegap-zipline-") as folder:
        work = Path(folder)
        prices.write_parquet(work / "prices.parquet")
        weights.write_parquet(work / "weights.parquet")
        settings = {"config": config.to_dict(), "zipline_costs": zipline_costs, "mode": mode}
        (work / "settings.json").write_text(json.dumps(settings))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([str(python), "-m", "engine.peers.zipline", str(work)],
                              cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"zipline run failed in {python}:\n{done.stderr[-4000:]}")
        return PeerResult(pl.read_parquet(work / "fills.parquet"),
                          pl.read_parquet(work / "equity.parquet"))


def _run_from_folder(work: Path) -> None:
    """The side environment's entry: read the inputs from `work`, write fills and equity."""
    settings = json.loads((work / "settings.json").read_text())
    run = _run_orders_here if settings.get("mode") == "orders" else _run_here
    result = run(pl.read_parquet(work / "prices.parquet"),
                 pl.read_parquet(work / "weights.parquet"),
                 BacktestConfig.from_dict(settings["config"]), settings["zipline_costs"])
    result.fills.write_parquet(work / "fills.parquet")
    result.equity.write_parquet(work / "equity.parquet")


def _cost_models(config: BacktestConfig, zipline_costs: bool, check_only: bool = False):
    """(slippage, commission) zipline models for `config`; None, None keeps zipline's."""
    if zipline_costs:
        return None, None
    commissions = [name for name in ("fees", "fixed_fee") if getattr(config, name)]
    if config.per_share or config.min_fee:
        commissions.append("per_share/min_fee")
    if len(commissions) > 1:
        raise ValueError(f"zipline takes one commission model; got {', '.join(commissions)}")
    if check_only:
        return None, None
    from zipline.finance import commission, slippage

    if config.fees:
        fee_model = commission.PerDollar(cost=config.fees)
    elif config.fixed_fee:
        fee_model = commission.PerTrade(cost=config.fixed_fee)
    else:
        fee_model = commission.PerShare(cost=config.per_share, min_trade_cost=config.min_fee)
    slip_model = slippage.FixedBasisPointsSlippage(basis_points=config.slippage * 1e4,
                                                   volume_limit=0.1)
    return slip_model, fee_model


def _run_here(
    prices: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig, zipline_costs: bool
) -> PeerResult:
    """Run zipline in this interpreter on in-memory bars."""
    from zipline.api import order_target_percent

    bars = load_prices(prices)
    targets = load_weights(weights, bars)
    market = Market.from_bars(bars)
    decisions = decision_weights(market, targets)

    def place(context, bar: int) -> None:
        target = decisions[bar]
        if np.isnan(target).all():
            return
        positions = context.portfolio.positions
        held = np.array([positions[e].amount if e in positions else 0.0
                         for e in context.equities])
        closes = market.last_close[bar]
        chosen = ((target != 0) | (held != 0)).nonzero()[0]
        value = context.portfolio.portfolio_value
        estimate = target[chosen] * value - held[chosen] * closes[chosen]
        for j in chosen[np.argsort(estimate, kind="stable")]:
            order_target_percent(context.equities[j], float(target[j]))

    performance = _simulate(market, config, zipline_costs, place)
    return _normalize(performance, market)


def _run_orders_here(
    prices: pl.DataFrame, orders: pl.DataFrame, config: BacktestConfig, zipline_costs: bool
) -> PeerResult:
    """Place an order table's rows (market, limit, stop, stop-limit) in this interpreter."""
    from zipline.api import order
    from zipline.finance.execution import LimitOrder, MarketOrder, StopLimitOrder, StopOrder

    market = Market.from_bars(load_prices(prices))
    index = {t: i for i, t in enumerate(market.timestamps.to_list())}
    column = {a: j for j, a in enumerate(market.assets.to_list())}
    by_bar: dict[int, list[tuple]] = {}
    for row, (t, asset, kind, quantity, limit, stop) in enumerate(orders.select(
            "timestamp", "asset", "type", "quantity", "limit_price", "stop_price").iter_rows()):
        if kind not in ("market", "limit", "stop", "stop_limit"):
            raise ValueError(f"zipline has no {kind} orders")
        by_bar.setdefault(index[t], []).append((row, asset, kind, quantity, limit, stop))
    rows: dict[str, int] = {}

    def place(context, bar: int) -> None:
        for row, asset, kind, quantity, limit, stop in by_bar.get(bar, []):
            if kind == "limit":
                style = LimitOrder(limit)
            elif kind == "stop":
                style = StopOrder(stop)
            elif kind == "stop_limit":
                style = StopLimitOrder(limit, stop)
            else:
                style = MarketOrder()
            oid = order(context.equities[column[asset]], int(quantity), style=style)
            if oid is not None:
                rows[oid] = row

    performance = _simulate(market, config, zipline_costs, place)
    return _normalize(performance, market, rows)


def _simulate(market: Market, config: BacktestConfig, zipline_costs: bool, place):
    """Run a zipline algorithm over the market that calls `place(context, bar)` at every
    bar's close; zipline's daily performance frame."""
    import pandas as pd
    from sqlalchemy import create_engine
    from zipline.algorithm import TradingAlgorithm
    from zipline.api import set_commission, set_slippage
    from zipline.assets import AssetDBWriter, AssetFinder
    from zipline.data.data_portal import DataPortal
    from zipline.finance.trading import SimulationParameters
    from zipline.utils.calendar_utils import get_calendar

    calendar = get_calendar(CALENDAR)
    first = pd.Timestamp(market.timestamps[0]).normalize()
    sessions = calendar.sessions[calendar.sessions >= first][: market.n_bars]
    if len(sessions) < market.n_bars:
        raise ValueError(f"the {CALENDAR} calendar has only {len(sessions)} sessions "
                         f"from {first.date()}; {market.n_bars} bars need more")
    sids = np.arange(market.n_assets)
    slip_model, fee_model = _cost_models(config, zipline_costs)

    def initialize(context) -> None:
        context.bar = -1
        context.equities = [context.sid(int(s)) for s in sids]
        if slip_model is not None:
            set_slippage(us_equities=slip_model)
            set_commission(us_equities=fee_model)

    def handle_data(context, data) -> None:
        context.bar += 1
        place(context, context.bar)

    with tempfile.TemporaryDirectory(prefix="tradegap-zipline-") as folder:
        engine = create_engine(f"sqlite:///{folder}/assets.sqlite")
        with warnings.catch_warnings():  # its groupby.apply warns under pandas 2.3
            warnings.simplefilter("ignore", FutureWarning)
            AssetDBWriter(engine).write(
                equities=_equities(market, sessions, sids),
                exchanges=pd.DataFrame({"exchange": [CALENDAR], "country_code": ["US"]}),
            )
        finder = AssetFinder(engine)
        portal = DataPortal(finder, trading_calendar=calendar, first_trading_day=sessions[0],
                            equity_daily_reader=_bar_reader(market, sessions, sids, calendar),
                            last_available_session=sessions[-1])
        algorithm = TradingAlgorithm(
            sim_params=SimulationParameters(
                start_session=sessions[0], end_session=sessions[-1],
                trading_calendar=calendar, capital_base=config.initial_cash,
                data_frequency="daily",
            ),
            data_portal=portal, trading_calendar=calendar, initialize=initialize,
            handle_data=handle_data,
            benchmark_returns=pd.Series(0.0, index=sessions.tz_localize("UTC")),
        )
        performance = algorithm.run()
        engine.dispose()
    return performance


def _equities(market: Market, sessions, sids: np.ndarray):
    """zipline's equities table: one row per asset, listed over the whole run."""
    import pandas as pd

    return pd.DataFrame(
        {"symbol": market.assets.to_list(), "asset_name": market.assets.to_list(),
         "start_date": sessions[0], "end_date": sessions[-1],
         "first_traded": sessions[0], "auto_close_date": sessions[-1] + pd.Timedelta(days=1),
         "exchange": CALENDAR},
        index=pd.Index(sids, name="sid"),
    )


def _bar_reader(market: Market, sessions, sids: np.ndarray, calendar):
    """A daily bar reader over our (T, N) arrays (missing bars NaN, volume 0)."""
    import pandas as pd
    from zipline.data.in_memory_daily_bars import InMemoryDailyBarReader

    class DailyBars(InMemoryDailyBarReader):
        # zipline 3.2.1's InMemoryDailyBarReader reads `self.frames`, which it never sets
        # (it stores `_frames`), and looks up the Asset it is given as a column label.
        @property
        def frames(self):
            return self._frames

        def get_value(self, sid, dt, field):
            return self._values[field][self._sessions.get_loc(dt), self._sids.get_loc(int(sid))]

    frames = {
        name: pd.DataFrame(getattr(market, name), index=sessions, columns=sids)
        for name in ("open", "high", "low", "close")
    }
    frames["volume"] = pd.DataFrame(np.nan_to_num(market.volume), index=sessions,
                                    columns=sids)
    return DailyBars(frames, calendar, pd.Series("USD", index=sids), verify_indices=False)


def _normalize(performance, market: Market, ids: dict[str, int] | None = None
               ) -> PeerResult:
    """zipline's daily performance frame as our fills and equity tables.

    Transactions carry no commission: a fill's fee is the growth of its order's
    cumulative `commission` in that day's order records. `ids` maps zipline's order ids to
    ours (else they are numbered in order of first fill).
    """
    stamps = market.timestamps
    assets = market.assets.to_list()
    rows = []
    paid: dict[str, float] = {}
    order_ids: dict[str, int] = {}
    for bar, (transactions, orders) in enumerate(
        zip(performance["transactions"], performance["orders"], strict=True)
    ):
        commission = {o["id"]: o["commission"] or 0.0 for o in orders}
        for txn in transactions:
            oid = txn["order_id"]
            fee = commission[oid] - paid.get(oid, 0.0)
            paid[oid] = commission[oid]
            order_ids.setdefault(oid, len(order_ids) if ids is None else ids[oid])
            rows.append((stamps[bar], assets[txn["sid"].sid], float(txn["amount"]),
                         float(txn["price"]), float(fee), order_ids[oid]))
    fills = pl.DataFrame(
        rows, orient="row",
        schema={"timestamp": stamps.dtype, "asset": pl.String, "quantity": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64, "order_id": pl.Int64},
    )
    cash = performance["ending_cash"].to_numpy(dtype=float)
    positions_value = performance["ending_value"].to_numpy(dtype=float)
    equity = pl.DataFrame({
        "timestamp": stamps, "cash": cash, "positions_value": positions_value,
        "equity": performance["portfolio_value"].to_numpy(dtype=float),
    })
    return PeerResult(fills, equity)


if __name__ == "__main__":
    if sys.argv[1:] == ["--setup"]:
        print(setup_side_env())
    else:
        _run_from_folder(Path(sys.argv[1]))
