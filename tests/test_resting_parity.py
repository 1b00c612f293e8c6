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

import polars as pl
import pytest

from engine import BacktestConfig
from engine.peers.backtrader_orders import run_backtrader_orders
from engine.peers.vectorbt_signals import run_vectorbt_signals
from engine.peers.zipline import run_zipline_orders
from engine.reference import run_reference
from tests.parity import REL, relative_gap
from tests.resting_cases import Orders, entries, gappy_bars, table, target_calls

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


# zipline: limits and stops triggered on the close


@pytest.fixture(scope="module")
def zipline_case():
    """zipline (side environment) and the reference under the `zipline` profile (5 bp
    slippage, $0.001 a share) on the same market, limit, stop and stop-limit rows."""
    prices = gappy_bars(5, 80, seed=3)
    orders = Orders(prices, seed=4)
    orders.base(1000)
    for kind in ("market", "limit", "stop", "stop_limit"):
        for _ in range(10):
            orders.single(kind, sell=False)
            orders.single(kind, sell=True)
    # One market row per bar and asset: we net two into one order, zipline fills each.
    rows = orders.frame().with_columns(pl.lit(None, dtype=pl.Int64).alias("valid_until"))
    rows = rows.filter((pl.col("type") != "market")
                       | ~pl.struct("timestamp", "asset", "type").is_duplicated())
    config = BacktestConfig.for_profile("zipline", initial_cash=1e7)
    ours = run_reference(prices, config=config, resting=rows)
    theirs = run_zipline_orders(prices, rows, config)
    kinds = rows.with_row_index("order_id").select(
        pl.col("order_id").cast(pl.Int64), "type", "limit_price", "stop_price")
    return prices, ours.fills, theirs.fills.join(kinds, on="order_id")


def test_zipline_market_rows_fill_like_the_reference(zipline_case):
    _, ours, theirs = zipline_case
    market = theirs.filter(pl.col("type") == "market").drop("type", "limit_price",
                                                            "stop_price")
    assert market.height >= 10
    assert_same_fills(ours.filter(pl.col("trigger") == "market"), market)


def test_zipline_fills_limits_and_stops_at_the_close_where_ours_fill_at_the_level(
        zipline_case):
    """zipline checks a resting order against each bar's close only and fills at that
    close plus slippage; ours fill at the level (or the gapped open) when the bar's range
    reaches it."""
    prices, ours, theirs = zipline_case
    resting = theirs.filter(pl.col("type") != "market").join(prices,
                                                             on=["timestamp", "asset"])
    assert resting.height >= 10
    side = pl.when(pl.col("quantity") > 0).then(1.0).otherwise(-1.0)
    slipped = pl.col("close") * (1 + side * 0.0005)
    assert ((resting["price"] / resting.select(slipped).to_series() - 1).abs() < 1e-9).all()
    buys, sells = pl.col("quantity") > 0, pl.col("quantity") < 0
    cent = 0.01  # zipline rounds limit and stop prices to the cent
    limits = resting.filter(pl.col("type") == "limit")
    assert limits.filter(buys & (pl.col("close") > pl.col("limit_price") + cent)).is_empty()
    assert limits.filter(sells & (pl.col("close") < pl.col("limit_price") - cent)).is_empty()
    stops = resting.filter(pl.col("type") == "stop")
    assert stops.filter(buys & (pl.col("close") < pl.col("stop_price") - cent)).is_empty()
    assert stops.filter(sells & (pl.col("close") > pl.col("stop_price") + cent)).is_empty()
    ours_resting = ours.filter(pl.col("trigger") != "market")
    both = ours_resting.join(theirs, on="order_id", suffix="_zipline")
    moved = both.filter((pl.col("timestamp") != pl.col("timestamp_zipline"))
                        | (pl.col("price") != pl.col("price_zipline")))
    assert moved.height == both.height >= 10
    assert ours_resting.height > resting.height  # a range reaches more levels than a close


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
