"""Resting orders: the reference under a peer's profile against the real peer, fill for fill.

backtrader 1.9.78 and vectorbt 1.2.0 run for real (dev dependencies; a missing one fails),
zipline-reloaded 3.2.1 in its side environment (`python -m engine.peers.zipline --setup`).
Bars are random OHLC with gapped opens (tests/resting_cases.py). Pass: the same fills
(timestamp, asset, quantity, order) with price and fee equal to 1e-9 relative, the same
final status for every order, and both sides filling enough of each kind to mean it.

Differences we keep on purpose are tested as differences (docs/semantics.md, "Where peers
differ").
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine import BacktestConfig, run_orders
from engine.peers.backtrader_orders import run_backtrader_orders
from engine.peers.vectorbt_signals import run_vectorbt_signals
from engine.peers.zipline import run_zipline_orders
from engine.reference import run_reference
from tests.parity import REL, relative_gap
from tests.resting_cases import Orders, entries, gappy_bars, table, target_calls

pytestmark = [pytest.mark.peers, pytest.mark.slow]

KEY = ["timestamp", "asset", "order_id"]
TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")


def assert_same_fills(ours: pl.DataFrame, theirs: pl.DataFrame) -> None:
    """The same fills, keyed by (timestamp, asset, order), numbers to 1e-9."""
    ours, theirs = ours.sort(KEY), theirs.sort(KEY)
    assert ours.height == theirs.height, f"{ours.height} fills against {theirs.height}"
    for key in KEY:
        differs = (ours[key] != theirs[key]).arg_true()
        assert differs.len() == 0, (key, ours[int(differs[0])], theirs[int(differs[0])])
    assert (ours["quantity"] == theirs["quantity"]).all()
    for column in ("price", "fee"):
        gap = relative_gap(ours[column].to_numpy(), theirs[column].to_numpy())
        assert gap <= REL, (column, gap)


def backtrader_config(**settings) -> BacktestConfig:
    return BacktestConfig.for_profile("backtrader", initial_cash=1e9, fees=0.001, **settings)


def one_market_order_per_decision(orders: pl.DataFrame) -> pl.DataFrame:
    """The table with one market row per asset and timestamp (a bracket entry, else the
    first): ours merge a second one into it (one open order per asset), backtrader keeps
    two orders."""
    market = pl.col("type") == "market"
    entry = market & pl.col("id").is_not_null() if "id" in orders.columns else pl.lit(False)
    over = ("timestamp", "asset")
    first = market.cast(pl.Int32).cum_sum().over(over) == 1
    keep = ~market | entry | (first & ~entry.any().over(over))
    return orders.filter(keep)


def backtrader_parity(prices: pl.DataFrame, orders: pl.DataFrame, **settings):
    config = backtrader_config(**settings)
    orders = one_market_order_per_decision(orders)
    ours = run_reference(prices, config=config, resting=orders)
    theirs = run_backtrader_orders(prices, orders, config)
    assert_same_fills(ours.fills, theirs.fills)
    # backtrader's expiry of one OCO member (or bracket child) cancels the others, which
    # would expire on the same bar.
    grouped = orders.with_row_index("order_id").filter(
        pl.col("group").is_not_null() | pl.col("parent").is_not_null())
    statuses = ours.orders.select("order_id", "status").join(
        theirs.orders, on="order_id", suffix="_peer").with_columns(
        pl.col("order_id").is_in(grouped["order_id"].cast(pl.Int64).implode()).alias("oco"))
    differ = statuses.filter((pl.col("status") != pl.col("status_peer")) & ~(
        pl.col("oco") & (pl.col("status") == "expired") & (pl.col("status_peer") == "cancelled")))
    assert statuses.height == orders.height and differ.is_empty(), differ
    return ours, theirs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_order_type_fills_like_backtrader(seed):
    """Buys and sells of every type, some good till cancelled, some valid for 1–7 bars."""
    prices = gappy_bars(6 + 2 * seed, 100 + 40 * seed, seed=seed)
    orders = Orders(prices, seed=seed + 10)
    orders.base(10_000)
    for kind in TYPES:
        for _ in range(12):
            orders.single(kind, sell=False)
            orders.single(kind, sell=True)
    ours, _ = backtrader_parity(prices, orders.frame())
    filled = ours.fills.group_by("trigger").len()
    for kind in TYPES:
        assert filled.filter(pl.col("trigger") == kind)["len"].sum() >= 5, kind
    at_open = ours.fills.join(prices, on=["timestamp", "asset"]).filter(
        (pl.col("trigger") != "market") & (pl.col("price") == pl.col("open")))
    assert at_open.height >= 3, "some resting orders fill at a gapped open"
    assert (ours.orders["status"] == "expired").sum() >= 5


@pytest.mark.parametrize("seed", [4, 5])
def test_brackets_fill_like_backtrader(seed):
    """Market and limit entries with a stop-loss and a take-profit child each."""
    prices = gappy_bars(8, 150, seed=seed)
    orders = Orders(prices, seed=seed)
    for i in range(40):
        orders.bracket(1000 + i, "limit" if i % 2 else "market", float(5 + i % 7))
    ours, _ = backtrader_parity(prices, orders.frame())
    assert (ours.fills["trigger"] == "stop").sum() >= 5
    assert (ours.fills["trigger"] == "limit").sum() >= 10
    assert (ours.orders["reason"] == "oco").sum() >= 10


def test_sell_brackets_fill_like_backtrader():
    """Short entries (`sell_bracket`) with a buy stop above and a buy limit below."""
    prices = gappy_bars(8, 150, seed=8)
    orders = Orders(prices, seed=8)
    for i in range(40):
        orders.bracket(1000 + i, "limit" if i % 2 else "market", -float(5 + i % 7))
    ours, _ = backtrader_parity(prices, orders.frame(), allow_short=True)
    assert (ours.fills.filter(pl.col("quantity") > 0)["trigger"] == "stop").sum() >= 5
    assert (ours.fills.filter(pl.col("quantity") > 0)["trigger"] == "limit").sum() >= 5


@pytest.mark.parametrize("seed", [6, 7])
def test_oco_groups_fill_like_backtrader(seed):
    """Breakout-or-pullback entries and stop-or-target exits, each pair one OCO group."""
    prices = gappy_bars(8, 150, seed=seed)
    orders = Orders(prices, seed=seed)
    orders.base(10_000)
    for i in range(40):
        orders.oco(f"g{i}", sell=bool(i % 2))
    ours, _ = backtrader_parity(prices, orders.frame())
    assert (ours.orders["reason"] == "oco").sum() >= 10
    assert ours.fills.filter(pl.col("trigger") != "market").height >= 10


# vectorbt `from_signals` with sl_stop, tp_stop, sl_trail


def vectorbt_run(seed: int, rules: dict, ours: dict | None = None, missing: float = 0.0,
                 **peer):
    prices = gappy_bars(10, 250, seed=seed, missing=missing)
    wanted = entries(prices, seed=seed + 100)
    config = BacktestConfig.for_profile("vectorbt", initial_cash=1e9, fees=0.001).to_dict()
    reference = run_reference(prices, orders=target_calls(wanted),
                              config={**config, **rules, **(ours or {})})
    theirs = run_vectorbt_signals(prices, wanted, {**config, **rules}, **peer)
    order = ["timestamp", "asset", "quantity"]
    return reference.fills.sort(order), theirs.fills.sort(order), prices


def assert_same_exits(ours: pl.DataFrame, theirs: pl.DataFrame) -> None:
    """The same fills in (timestamp, asset, quantity) order, price and fee to 1e-9."""
    assert ours.height == theirs.height, f"{ours.height} fills against {theirs.height}"
    for key in ("timestamp", "asset", "quantity"):
        differs = (ours[key] != theirs[key]).arg_true()
        assert differs.len() == 0, (key, ours[int(differs[0])], theirs[int(differs[0])])
    for column in ("price", "fee"):
        gap = relative_gap(ours[column].to_numpy(), theirs[column].to_numpy())
        assert gap <= REL, (column, gap)


RULES = {
    "stop_loss": {"stop_loss": 0.03},
    "take_profit": {"take_profit": 0.04},
    "both": {"stop_loss": 0.03, "take_profit": 0.04},
    "trailing": {"trailing_stop": 0.03},
    "trailing+take_profit": {"trailing_stop": 0.03, "take_profit": 0.05},
}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", list(RULES))
def test_position_rules_exit_like_vectorbt_from_signals(seed, name):
    """Defaults on both sides: the stop base is the entry bar's close (`stop_entry_price=
    'Close'`), exits at the level or the gapped open without slippage."""
    ours, theirs, prices = vectorbt_run(seed, RULES[name])
    assert_same_exits(ours, theirs)
    for rule in RULES[name]:
        assert (ours["trigger"] == rule).sum() >= 5, rule
    at_open = ours.join(prices, on=["timestamp", "asset"]).filter(
        (pl.col("trigger") != "market") & (pl.col("price") == pl.col("open")))
    assert at_open.height >= 1, "some exits fill at a gapped open"


@pytest.mark.parametrize("engine", ["numba", "rust"])
def test_position_rules_exit_like_both_vectorbt_engines(engine):
    ours, theirs, _ = vectorbt_run(5, RULES["trailing+take_profit"], engine=engine)
    assert_same_exits(ours, theirs)
    assert (ours["trigger"] == "trailing_stop").sum() >= 5


@pytest.mark.parametrize("name", ["both", "trailing+take_profit"])
def test_position_rules_exit_like_vectorbt_with_missing_bars(name):
    """5% of the bars missing: an entry due on a missing bar is dropped on both sides, and
    stops wait for the asset's next bar."""
    ours, theirs, _ = vectorbt_run(4, RULES[name], missing=0.05)
    assert_same_exits(ours, theirs)
    assert (ours["trigger"] != "market").sum() >= 50


@pytest.mark.parametrize("name", ["both", "trailing+take_profit"])
def test_stop_base_fill_matches_vectorbt_fill_price(name):
    """`stop_base='fill'` is vectorbt's `stop_entry_price='FillPrice'`."""
    ours, theirs, _ = vectorbt_run(3, RULES[name], {"stop_base": "fill"},
                                   stop_entry_price="FillPrice")
    assert_same_exits(ours, theirs)
    assert (ours["trigger"] != "market").sum() >= 10


def test_vectorbt_stop_exits_ignore_slippage_as_the_profile_does():
    """vectorbt's default `stop_exit_price='StopLimit'` fills a stop exit at its level
    with slippage forced to 0, and so does the `vectorbt` profile (`stop_slippage` off);
    with stop slippage on, our stop-loss is a stop-market order and pays slippage."""
    rules = {"stop_loss": 0.03, "slippage": 0.001}
    ours, theirs, _ = vectorbt_run(1, rules)
    assert (ours["trigger"] == "stop_loss").sum() >= 5
    assert_same_exits(ours, theirs)
    ours, theirs, _ = vectorbt_run(1, rules, {"stop_slippage": True})
    assert (ours["timestamp"] == theirs["timestamp"]).all()
    stops = ours["trigger"] == "stop_loss"
    assert stops.sum() >= 5
    ratio = theirs.filter(stops)["price"] / ours.filter(stops)["price"]
    assert ((ratio - 1 / 0.999).abs() < 1e-9).sum() >= 5  # ours = theirs × (1 − 0.001)


def test_vectorbt_stop_market_slippage_can_leave_the_bar_where_ours_stops_at_the_low():
    """With `stop_exit_price='StopMarket'` vectorbt slips a stop exit below the bar's low;
    ours floor it at the low (every fill lies inside its bar)."""
    ours, theirs, prices = vectorbt_run(1, {"stop_loss": 0.03, "slippage": 0.001},
                                        {"stop_slippage": True}, stop_exit_price="StopMarket")
    assert (ours["timestamp"] == theirs["timestamp"]).all()
    joined = theirs.join(prices, on=["timestamp", "asset"], maintain_order="left")
    below = joined["price"] < joined["low"] * (1 - 1e-12)
    assert below.sum() >= 1
    assert (ours.filter(below)["price"] == joined.filter(below)["low"]).all()
    assert_same_exits(ours.filter(~below), theirs.filter(~below))


# Where backtrader differs on purpose


def _one_asset(bars: list[tuple[float, float, float, float]]) -> pl.DataFrame:
    days = [dt.datetime(2024, 1, 1) + dt.timedelta(days=i) for i in range(len(bars))]
    return pl.DataFrame([(d, "A", *b, 1e9) for d, b in zip(days, bars, strict=True)],
                        orient="row", schema={
        "timestamp": pl.Datetime("us"), "asset": pl.String, "open": pl.Float64,
        "high": pl.Float64, "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64})


def test_backtrader_day_orders_expire_unfilled_on_daily_bars():
    """`valid=Order.DAY` ends at the end of the decision day, before the next daily bar
    can fill it (backtrader#220); our `valid_until=1` is the next bar."""
    import backtrader as bt

    prices = _one_asset([(100, 101, 99, 100), (100, 101, 95, 96), (96, 97, 94, 95)])

    class Day(bt.Strategy):
        def __init__(self):
            self.done = []

        def notify_order(self, order):
            if order.status in (order.Completed, order.Expired):
                self.done.append(order.getstatusname())

        def next(self):
            if len(self) == 1:
                self.buy(size=1, exectype=bt.Order.Limit, price=98.0, valid=bt.Order.DAY)

    cerebro = bt.Cerebro(stdstats=False)
    frame = prices.drop("timestamp", "asset").to_pandas()
    frame.index = prices["timestamp"].to_pandas()
    cerebro.adddata(bt.feeds.PandasData(dataname=frame, name="A"))
    cerebro.addstrategy(Day)
    (run,) = cerebro.run()
    assert run.done == ["Expired"]
    ours = run_reference(prices, config=backtrader_config(), resting=table([{
        "timestamp": prices["timestamp"][0], "asset": "A", "type": "limit", "quantity": 1.0,
        "limit_price": 98.0, "valid_until": 1}]))
    assert ours.fills["price"].to_list() == [98.0]


def test_backtrader_cancels_an_oco_group_when_one_member_expires():
    """backtrader cancels every member of an OCO group when one expires; ours cancel each
    other only on a fill, so the longer-lived member still fills."""
    prices = _one_asset([(100, 101, 99, 100)] * 4 + [(100, 101, 90, 91)])
    day = prices["timestamp"][0]
    orders = table([
        {"timestamp": day, "asset": "A", "type": "limit", "quantity": 1.0,
         "limit_price": 95.0, "group": "g", "valid_until": 4},
        {"timestamp": day, "asset": "A", "type": "stop", "quantity": 1.0,
         "stop_price": 110.0, "group": "g", "valid_until": 1},
    ])
    theirs = run_backtrader_orders(prices, orders, backtrader_config())
    ours = run_reference(prices, config=backtrader_config(), resting=orders)
    assert theirs.fills.is_empty()
    assert theirs.orders["status"].to_list() == ["cancelled", "expired"]
    assert ours.fills["price"].to_list() == [95.0]
    assert ours.orders["status"].to_list() == ["filled", "expired"]


def test_backtrader_oco_takes_submission_order_where_we_take_the_stop_first():
    """A bar that reaches both members of an OCO group: backtrader fills the one submitted
    first; under `stop_first` (the backtrader profile) the stop fills."""
    prices = _one_asset([(100, 101, 99, 100), (100, 106, 94, 100)])
    day = prices["timestamp"][0]
    orders = table([
        {"timestamp": day, "asset": "A", "type": "limit", "quantity": 1.0,
         "limit_price": 95.0, "group": "g"},
        {"timestamp": day, "asset": "A", "type": "stop", "quantity": 1.0,
         "stop_price": 105.0, "group": "g"},
    ])
    theirs = run_backtrader_orders(prices, orders, backtrader_config())
    ours = run_reference(prices, config=backtrader_config(), resting=orders)
    assert theirs.fills["price"].to_list() == [95.0]
    assert ours.fills["price"].to_list() == [105.0]


def test_backtrader_reads_a_stop_limit_by_bar_colour_where_we_follow_the_path():
    """A buy stop-limit whose limit is below its stop, triggered inside an up bar whose
    high is nearer the open: our `nearest` path (open → high → low → close) comes back down
    to the limit and fills it in that bar; backtrader reads every up bar as open → low →
    high → close and leaves it resting until the next bar reaches the limit."""
    prices = _one_asset([(100, 101, 99, 100), (100, 103.5, 96, 101), (99, 99.5, 97.5, 99)])
    orders = table([{"timestamp": prices["timestamp"][0], "asset": "A", "type": "stop_limit",
                     "quantity": 1.0, "stop_price": 103.0, "limit_price": 98.0}])
    theirs = run_backtrader_orders(prices, orders, backtrader_config())
    ours = run_reference(prices, config=backtrader_config(), resting=orders)
    assert theirs.fills["timestamp"].to_list() == [prices["timestamp"][2]]
    assert ours.fills["timestamp"].to_list() == [prices["timestamp"][1]]
    assert ours.fills["price"].to_list() == theirs.fills["price"].to_list() == [98.0]


def test_backtrader_sells_past_the_position_where_ours_stop_at_it():
    """A sell limit for more shares than held: backtrader goes short by the rest; a
    long-only book sells what it holds."""
    prices = _one_asset([(100, 101, 99, 100), (100, 101, 99, 100), (100, 104, 99, 103)])
    day = prices["timestamp"]
    orders = table([
        {"timestamp": day[0], "asset": "A", "type": "market", "quantity": 30.0},
        {"timestamp": day[1], "asset": "A", "type": "limit", "quantity": -100.0,
         "limit_price": 102.0},
    ])
    theirs = run_backtrader_orders(prices, orders, backtrader_config())
    ours = run_reference(prices, config=backtrader_config(), resting=orders)
    assert theirs.fills["quantity"].to_list() == [30.0, -100.0]
    assert ours.fills["quantity"].to_list() == [30.0, -30.0]


# zipline: limits and stops checked on the close (the `zipline` profile's `close` path)


def zipline_run(prices: pl.DataFrame, rows: pl.DataFrame, **settings):
    """(engine fills, reference fills, zipline's fills with each row's type and levels)
    under the `zipline` profile (5 bp slippage, $0.001 a share, 10% volume cap)."""
    config = BacktestConfig.for_profile("zipline", initial_cash=1e7, **settings)
    engine = run_orders(prices, rows, config)
    reference = run_reference(prices, config=config, resting=rows)
    theirs = run_zipline_orders(prices, rows, config)
    kinds = rows.with_row_index("order_id").select(
        pl.col("order_id").cast(pl.Int64), "type", "limit_price", "stop_price")
    return engine.fills, reference.fills, theirs.fills.join(kinds, on="order_id")


def one_market_row_per_bar(rows: pl.DataFrame) -> pl.DataFrame:
    """One market row per bar and asset: we net two into one order, zipline fills each."""
    return rows.filter((pl.col("type") != "market")
                       | ~pl.struct("timestamp", "asset", "type").is_duplicated())


@pytest.fixture(scope="module")
def zipline_case():
    """Market, limit, stop and stop-limit rows on random gapped bars with ample volume."""
    prices = gappy_bars(5, 80, seed=3)
    orders = Orders(prices, seed=4)
    orders.base(1000)
    for kind in ("market", "limit", "stop", "stop_limit"):
        for _ in range(10):
            orders.single(kind, sell=False)
            orders.single(kind, sell=True)
    rows = one_market_row_per_bar(
        orders.frame().with_columns(pl.lit(None, dtype=pl.Int64).alias("valid_until")))
    return prices, rows, *zipline_run(prices, rows)


def test_zipline_fills_limits_stops_and_stop_limits_like_the_engine_and_the_reference(
        zipline_case):
    _, _, engine, reference, theirs = zipline_case
    for kind in ("market", "limit", "stop", "stop_limit"):
        assert theirs.filter(pl.col("type") == kind).height >= 5, kind
    assert_same_fills(engine, theirs)
    assert_same_fills(reference, theirs)


def test_zipline_resting_fills_are_the_close_with_slippage(zipline_case):
    """Every resting fill is its bar's close ± 5 bp, at a close that meets the
    cent-rounded level (or, for a stop-limit, its limit)."""
    prices, _, _, _, theirs = zipline_case
    resting = theirs.filter(pl.col("type") != "market").join(prices,
                                                             on=["timestamp", "asset"])
    side = pl.when(pl.col("quantity") > 0).then(1.0).otherwise(-1.0)
    slipped = pl.col("close") * (1 + side * 0.0005)
    assert ((resting["price"] / resting.select(slipped).to_series() - 1).abs() < 1e-9).all()
    buys, sells = pl.col("quantity") > 0, pl.col("quantity") < 0
    cent = 0.01
    limits = resting.filter(pl.col("type") != "stop")
    assert limits.filter(buys & (pl.col("close") > pl.col("limit_price") + cent)).is_empty()
    assert limits.filter(sells & (pl.col("close") < pl.col("limit_price") - cent)).is_empty()
    stops = resting.filter(pl.col("type") == "stop")
    assert stops.filter(buys & (pl.col("close") < pl.col("stop_price") - cent)).is_empty()
    assert stops.filter(sells & (pl.col("close") > pl.col("stop_price") + cent)).is_empty()


def test_zipline_differs_from_a_path_where_the_range_reaches_the_level(zipline_case):
    """With `intrabar_path` other than `close`, ours fill at the level (or the gapped
    open) as soon as the bar's range reaches it; zipline only ever sees the close."""
    prices, rows, _, _, theirs = zipline_case
    config = BacktestConfig.for_profile("zipline", initial_cash=1e7, intrabar_path="nearest")
    ours = run_reference(prices, config=config, resting=rows).fills
    ours_resting = ours.filter(pl.col("trigger") != "market")
    both = ours_resting.join(theirs, on="order_id", suffix="_zipline")
    moved = both.filter((pl.col("timestamp") != pl.col("timestamp_zipline"))
                        | (pl.col("price") != pl.col("price_zipline")))
    assert moved.height == both.height >= 10
    assert ours_resting.height > theirs.filter(pl.col("type") != "market").height


@pytest.fixture(scope="module")
def zipline_thin_case():
    """Thin bars (10% of volume is 3 to 30 shares) after an ample first fill: resting
    orders and the market order of an asset share the cap, partial fills carry over, and
    half the levels sit within a hair of a cent boundary."""
    prices = gappy_bars(3, 70, seed=11)
    rng = np.random.default_rng(12)
    volume = rng.integers(30, 300, prices.height).astype(float)
    volume[prices["timestamp"] <= prices["timestamp"].unique().sort()[1]] = 1e9
    prices = prices.with_columns(volume=pl.Series(volume))
    orders = Orders(prices, seed=13)
    orders.base(2000)
    for kind in ("limit", "stop", "stop_limit"):
        for _ in range(12):
            orders.single(kind, sell=False)["quantity"] *= 3
            orders.single(kind, sell=True)["quantity"] *= 3
    for t in range(2, 68, 6):  # one market order per asset every six bars
        for asset in orders.assets:
            orders.add(t, asset, "market", float(rng.integers(-25, 25)) or 5.0)
    hair = pl.Series(rng.choice([0.0004, 0.0006, 0.0094, 0.0096, 0.0049, 0.0051],
                                len(orders.rows)))
    near = pl.Series(rng.random(len(orders.rows)) < 0.5)
    frame = table(orders.rows).with_columns(hair=hair, near=near).sort(
        "timestamp", maintain_order=True)
    frame = frame.with_columns([
        pl.when(pl.col("near")).then((pl.col(c) * 100).floor() / 100 + pl.col("hair"))
        .otherwise(pl.col(c)).alias(c) for c in ("limit_price", "stop_price")])
    rows = without_merges(prices, one_market_row_per_bar(frame.drop("hair", "near").with_columns(
        pl.lit(None, dtype=pl.Int64).alias("valid_until"))))
    return prices, rows, *zipline_run(prices, rows)


def without_merges(prices: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """The rows without each market row placed while the asset's last market order was
    still open (ours would merge the two, zipline keeps both: tested on its own below)."""
    config = BacktestConfig.for_profile("zipline", initial_cash=1e7)
    while True:
        orders = run_orders(prices, rows, config).orders
        merged = orders.filter(pl.col("status") == "merged")
        if merged.is_empty():
            return rows
        absorbing = int(merged["reason"][0].rsplit(" ", 1)[1])
        rows = rows.with_row_index("row").filter(pl.col("row") != absorbing).drop("row")


def test_zipline_shares_the_volume_cap_and_rounds_levels_like_ours(zipline_thin_case):
    prices, _, engine, reference, theirs = zipline_thin_case
    partial = theirs.group_by("order_id").len().filter(pl.col("len") > 1)
    kinds = theirs.join(partial, on="order_id").group_by("type").len()
    assert set(kinds["type"]) >= {"market", "limit", "stop", "stop_limit"}, kinds
    volume = theirs.join(prices, on=["timestamp", "asset"]).group_by(
        "timestamp", "asset").agg(pl.col("quantity").abs().sum(), pl.col("volume").first())
    assert (volume["quantity"] <= (volume["volume"] * 0.1).floor()).all()
    assert volume.filter(pl.col("quantity") == (pl.col("volume") * 0.1).floor()).height >= 20
    assert_same_fills(engine, theirs)
    assert_same_fills(reference, theirs)


def test_zipline_keeps_two_market_orders_where_ours_merge_them():
    """A market order the cap cut short, then another on the same asset: zipline fills
    the first's rest, then the second; ours merged them into the second (one open market
    order per asset), which takes the cap at its own place in line."""
    prices = _one_asset([(100, 100, 100, 100)] * 5).with_columns(volume=pl.lit(100.0))
    day = prices["timestamp"]
    rows = table([{"timestamp": day[0], "asset": "A", "type": "market", "quantity": 15.0},
                  {"timestamp": day[1], "asset": "A", "type": "market", "quantity": 7.0}])
    engine, reference, theirs = zipline_run(prices, rows)
    assert theirs.select("timestamp", "quantity", "order_id").rows() == [
        (day[1], 10.0, 0), (day[2], 5.0, 0), (day[2], 5.0, 1), (day[3], 2.0, 1)]
    for ours in (engine, reference):
        assert ours.select("timestamp", "quantity", "order_id").rows() == [
            (day[1], 10.0, 0), (day[2], 10.0, 1), (day[3], 2.0, 1)]


def test_zipline_worked_example_market_and_limit_share_the_cap():
    """docs/semantics.md, "zipline, cap shared": a market buy of 8 then a buy limit 101
    for 6 on bars of volume 100 (cap 10) and close 100."""
    prices = _one_asset([(100, 100.5, 99.5, 100)] * 4).with_columns(volume=pl.lit(100.0))
    day = prices["timestamp"]
    rows = table([{"timestamp": day[0], "asset": "A", "type": "market", "quantity": 8.0},
                  {"timestamp": day[0], "asset": "A", "type": "limit", "quantity": 6.0,
                   "limit_price": 101.0}])
    engine, reference, theirs = zipline_run(prices, rows)
    expected = [(day[1], 8.0, 0), (day[1], 2.0, 1), (day[2], 4.0, 1)]
    for fills in (theirs, engine, reference):
        assert fills.select("timestamp", "quantity", "order_id").rows() == expected
    assert_same_fills(engine, theirs)


def test_levels_round_to_the_cent_bit_for_bit_as_zipline_rounds_them():
    """`round_level` (engine) and `to_tick` (reference) against zipline's own
    `asymmetric_round_price` on random prices and on the edges of its intervals."""
    import json
    import subprocess

    from engine.core.kernels.placement import round_level
    from engine.peers.zipline import side_python
    from engine.reference.resting import to_tick

    rng = np.random.default_rng(5)
    prices = [*np.round(rng.uniform(1, 500, 1000), 4).tolist(),
              *rng.uniform(1, 500, 1000).tolist(),
              10.0095, 10.0195, 10.0194, 10.0196, 10.0004, 10.0005, 10.0006, 10.0105]
    script = ("import json, sys; from zipline.finance.execution import asymmetric_round_price"
              " as r; p = json.load(sys.stdin); print(json.dumps([[r(x, True, 0.01), "
              "r(x, False, 0.01)] for x in p]))")
    done = subprocess.run([str(side_python()), "-c", script], input=json.dumps(prices),
                          capture_output=True, text=True, check=True)
    theirs = json.loads(done.stdout)
    for price, (down, up) in zip(prices, theirs, strict=True):
        assert round_level(price, True, 0.01) == to_tick(price, True, 0.01) == down, price
        assert round_level(price, False, 0.01) == to_tick(price, False, 0.01) == up, price


def test_zipline_does_not_check_an_order_behind_a_spent_cap():
    """The limit finds bar 1's cap spent and ends the asset's bar (LiquidityExceeded), so
    the stop-limit behind it is not checked on that close, which would have met it for
    good; on bar 2 its stop holds but its limit does not."""
    prices = _one_asset([(100, 100, 100, 100), (100, 102, 100, 102),
                         (103, 104, 103, 104)]).with_columns(volume=pl.lit(100.0))
    day = prices["timestamp"][0]
    rows = table([
        {"timestamp": day, "asset": "A", "type": "market", "quantity": 10.0},
        {"timestamp": day, "asset": "A", "type": "limit", "quantity": 5.0,
         "limit_price": 105.0},
        {"timestamp": day, "asset": "A", "type": "stop_limit", "quantity": 5.0,
         "stop_price": 101.0, "limit_price": 103.0}])
    engine, reference, theirs = zipline_run(prices, rows)
    assert theirs["order_id"].to_list() == [0, 1]
    assert_same_fills(engine, theirs)
    assert_same_fills(reference, theirs)


def test_backtrader_trails_a_bracket_child_from_the_decision_close_not_the_entry_fill():
    """A trailing-stop bracket child: backtrader sets its first stop from the close of
    the bar the bracket was placed at and moves it only once the child is live; ours
    start it at the stop base (the entry's fill price by default)."""
    prices = _one_asset([(100, 101, 99, 100), (90, 91, 89, 90), (90, 90.5, 84, 85)])
    day = prices["timestamp"][0]
    orders = table([
        {"timestamp": day, "asset": "A", "type": "market", "quantity": 10.0, "id": 1},
        {"timestamp": day, "asset": "A", "type": "trailing_stop", "quantity": -10.0,
         "trail": 0.05, "parent": 1},
    ])
    theirs = run_backtrader_orders(prices, orders, backtrader_config())
    ours = run_reference(prices, config=backtrader_config(), resting=orders)
    # backtrader: stop 100 × 0.95 = 95 from the decision close; bar 2 opens at 90 below it.
    assert theirs.fills["price"].to_list() == [90.0, 90.0]
    # ours: the entry filled at 90, stop 90 × 0.95 = 85.5 (after bar 1, the close 90 keeps it).
    assert ours.fills["price"].to_list() == [90.0, pytest.approx(85.5)]


def test_backtrader_tries_resting_orders_on_a_stale_bar_when_the_asset_has_none():
    """Asset A has no bar on day 1 (B has): backtrader still tries A's resting orders on
    that tick against A's last bar, the decision bar itself, and fills a buy limit that
    bar's low reached, dated the decision day. Ours wait for A's next bar."""
    a = _one_asset([(100, 101, 99, 100), (101, 102, 100, 101), (103, 104, 102, 103)])
    prices = pl.concat([a.filter(pl.col("timestamp") != a["timestamp"][1]),
                        a.with_columns(asset=pl.lit("B"))]).sort("timestamp", "asset")
    orders = table([{"timestamp": a["timestamp"][0], "asset": "A", "type": "limit",
                     "quantity": 1.0, "limit_price": 99.5}])
    theirs = run_backtrader_orders(prices, orders, backtrader_config())
    ours = run_reference(prices, config=backtrader_config(), resting=orders)
    assert theirs.fills.select("timestamp", "price").rows() == [(a["timestamp"][0], 99.5)]
    assert ours.fills.is_empty()


def test_backtrader_refuses_a_resting_buy_at_submission_where_ours_check_cash_at_the_fill():
    """A buy limit costing more than the cash: backtrader's submission check refuses it
    at once (`Margin`), even though the limit is never reached; ours check the cash when
    it fills, so it is still open."""
    prices = _one_asset([(100, 101, 99, 100)] * 3)
    orders = table([{"timestamp": prices["timestamp"][0], "asset": "A", "type": "limit",
                     "quantity": 20.0, "limit_price": 98.0}])
    config = BacktestConfig.for_profile("backtrader", initial_cash=1_000.0)
    theirs = run_backtrader_orders(prices, orders, config)
    ours = run_reference(prices, config=config, resting=orders)
    assert theirs.orders["status"].to_list() == ["margin"]
    assert ours.orders["status"].to_list() == ["open"]


def test_valid_until_as_a_timestamp_expires_like_backtrader_valid_as_a_date():
    prices = gappy_bars(6, 120, seed=9)
    orders = Orders(prices, seed=9)
    orders.base(10_000)
    for kind in ("limit", "stop", "stop_limit", "trailing_stop"):
        for _ in range(15):
            orders.single(kind, sell=False)
            orders.single(kind, sell=True)
    days = prices["timestamp"].unique().sort()
    frame = orders.frame()
    # Six hours past the last bar (an expiry on the final bar would show only on our side:
    # backtrader sees no later bar to expire it at).
    ends = [None if v is None else days.search_sorted(t) + v
            for t, v in frame.select("timestamp", "valid_until").rows()]
    last = [None if end is None or end >= days.len() - 1
            else days[end] + dt.timedelta(hours=6) for end in ends]
    frame = frame.with_columns(valid_until=pl.Series(last, dtype=pl.Datetime("us")))
    ours, _ = backtrader_parity(prices, frame)
    assert (ours.orders["status"] == "expired").sum() >= 10
    assert ours.fills.filter(pl.col("trigger") != "market").height >= 20
