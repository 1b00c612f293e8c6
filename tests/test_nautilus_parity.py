"""nautilus_trader 1.221.0 (its side environment) against the engine and the reference under
the `nautilus` profile, fill for fill.

Market orders come from target weights; resting orders from random order tables on random
OHLC bars with gapped opens (tests/resting_cases.py), one order, OCO pair or bracket per
asset (nautilus moves its market to a limit it fills, which holds back the asset's other
limits on that side at that price: a difference tested below). Pass: the same fills
(timestamp, asset, quantity, and for orders the row) with price and fee equal to 1e-9
relative, and final equity to 1e-9 (ours, and nautilus's own account's). Differences we
keep are tested as differences (docs/peers.md, "nautilus_trader").
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine import BacktestConfig, run_backtest, run_orders
from engine.data.synthetic import generate_market, momentum_scores
from engine.peers.nautilus import run_nautilus, run_nautilus_orders, setup_side_env
from engine.reference import run_reference
from engine.research.weights import top_k_weights
from schemas.backtest import Fills
from tests.builders import random_universe
from tests.builders import top_k_weights as random_top_k
from tests.parity import REL, assert_same_fills, relative_gap
from tests.resting_cases import Orders, gappy_bars, table

pytestmark = [pytest.mark.peers, pytest.mark.slow]

KEY = ["timestamp", "asset"]
ORDER_KEY = ["timestamp", "asset", "order_id"]


@pytest.fixture(scope="module", autouse=True)
def side_environment():
    setup_side_env()


def weights_parity(prices: pl.DataFrame, weights: pl.DataFrame, **settings):
    config = BacktestConfig.for_profile("nautilus", initial_cash=100_000.0, **settings)
    engine = run_backtest(prices, weights, config)
    reference = run_reference(prices, weights, config)
    theirs = run_nautilus(prices, weights, config)
    for ours in (engine, reference):
        assert_same_fills(ours.fills.sort(KEY), theirs.fills.sort(KEY))
        assert ours.final_equity == pytest.approx(theirs.final_equity, rel=REL)
        # nautilus's own account: balance plus unrealized PnL at the last closes
        assert ours.final_equity == pytest.approx(theirs.account["equity"][0], rel=REL)
    return engine, theirs


@pytest.mark.parametrize("every", [1, 21], ids=["daily", "every21"])
@pytest.mark.parametrize("fees", [0.0, 0.001])
def test_market_orders_fill_at_the_bar_close_like_nautilus(every, fees):
    prices, _, _ = random_universe(12, 120, seed=3)
    engine, theirs = weights_parity(prices, random_top_k(12, 120, k=4, every=every, seed=every),
                                    fees=fees)
    assert engine.fills.height > 20
    at = theirs.fills.join(prices, on=KEY)
    assert ((at["price"] - at["close"]).abs() <= REL * at["close"]).all()


def test_nautilus_fills_fit_our_schema_and_every_market_order_fills_once():
    prices, _, _ = random_universe(8, 60, seed=6)
    config = BacktestConfig.for_profile("nautilus", initial_cash=100_000.0, fees=0.001)
    theirs = run_nautilus(prices, random_top_k(8, 60, k=3, every=5, seed=6), config)
    Fills.validate(theirs.fills)
    assert theirs.fills["order_id"].is_unique().all()
    assert theirs.orders["status"].unique().to_list() == ["FILLED"]
    assert theirs.orders.height == theirs.fills.height


def test_market_orders_match_with_listings_delistings_and_missing_bars():
    gappy = generate_market(n_assets=20, n_days=200, seed=11)
    weights = top_k_weights(momentum_scores(gappy), k=6, every=10)
    engine, _ = weights_parity(gappy, weights, fees=0.001)
    assert engine.orders.filter(pl.col("reason") == "no_price").height > 0


def test_cash_goes_negative_in_the_margin_account_as_the_profile_allows():
    prices, _, _ = random_universe(12, 120, seed=5)
    engine, theirs = weights_parity(prices, random_top_k(12, 120, k=4, every=5, seed=5),
                                    fees=0.002)
    assert engine.equity["cash"].min() < 0
    assert theirs.equity["cash"].min() == pytest.approx(engine.equity["cash"].min(), rel=REL)


class OnePerAsset(Orders):
    """Random orders, one structure (an order, an OCO pair or a bracket) per asset."""

    asset = ""

    def pick(self, last_margin: int = 2) -> tuple[int, str, float]:
        while True:
            t = int(self.rng.integers(1, max(len(self.days) - last_margin, 2)))
            if (self.days[t], self.asset) in self.close:
                return t, self.asset, self.close[(self.days[t], self.asset)]

    def near_stop_limit(self, sell: bool) -> None:
        """A stop-limit whose limit is on the near side of its stop (a buy: below it)."""
        t, asset, close = self.pick()
        stop = self.away(close, up=not sell)
        self.add(t, asset, "stop_limit", 5.0 * (-1 if sell else 1), stop_price=stop,
                 limit_price=self.away(stop, up=sell, low=0.0, high=0.01),
                 valid_until=self.valid())


def one_per_asset(prices: pl.DataFrame, kind: str, seed: int) -> pl.DataFrame:
    orders = OnePerAsset(prices, seed)
    orders.base(2000)
    for i, asset in enumerate(orders.assets):
        orders.asset = asset
        sell = bool(i % 2)
        if kind == "oco":
            orders.oco(f"g{i}", sell=sell)
        elif kind == "bracket":
            orders.bracket(1000 + i, "market", float(orders.rng.integers(1, 30)) * (
                -1 if sell else 1))
        elif kind == "near_stop_limit":
            orders.near_stop_limit(sell)
        else:
            orders.single(kind, sell=sell)
    return orders.frame()


def same_order_fills(ours: pl.DataFrame, theirs: pl.DataFrame) -> None:
    """The same fills keyed by (timestamp, asset, row), prices and fees to 1e-9."""
    ours, theirs = ours.sort(ORDER_KEY), theirs.sort(ORDER_KEY)
    assert ours.height == theirs.height, f"{ours.height} fills against {theirs.height}"
    for key in ("timestamp", "asset", "order_id", "quantity"):
        differs = (ours[key] != theirs[key]).arg_true()
        assert differs.len() == 0, (key, ours.row(int(differs[0])), theirs.row(int(differs[0])))
    for column in ("price", "fee"):
        gap = relative_gap(ours[column].to_numpy(), theirs[column].to_numpy())
        assert gap <= REL, (column, gap)


def orders_parity(prices: pl.DataFrame, rows: pl.DataFrame, adaptive: bool = False,
                  **settings):
    config = BacktestConfig.for_profile("nautilus", initial_cash=1e7, fees=0.001, **settings)
    theirs = run_nautilus_orders(prices, rows, config, adaptive=adaptive).fills
    engine = run_orders(prices, rows, config).fills
    reference = run_reference(prices, config=config, resting=rows).fills
    same_order_fills(engine, theirs)
    same_order_fills(reference, theirs)
    return theirs


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", ["limit", "stop", "stop_limit", "near_stop_limit",
                                  "trailing_stop", "oco", "bracket"])
def test_resting_orders_fill_like_nautilus(kind, seed):
    prices = gappy_bars(40, 80, seed=seed)
    rows = one_per_asset(prices, kind, seed)
    theirs = orders_parity(prices, rows)
    resting = theirs.filter(pl.col("order_id") >= 40)  # the first 40 rows: the base buys
    assert resting.height >= (40 if kind == "bracket" else 15), resting.height
    if kind in ("stop", "trailing_stop"):  # a gap fills at the level, never at the open
        at = resting.join(prices, on=KEY)
        assert (at["price"] != at["open"]).all()


@pytest.mark.parametrize("kind", ["stop_limit", "trailing_stop", "oco"])
def test_adaptive_high_low_ordering_is_the_nearest_path(kind):
    """`bar_adaptive_high_low_ordering=True` takes the extreme nearer the open first, as the
    `nearest` path does (ties aside: below)."""
    prices = gappy_bars(40, 80, seed=4)
    orders_parity(prices, one_per_asset(prices, kind, 4), adaptive=True,
                  intrabar_path="nearest")


def one_asset(bars: list[tuple[float, float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(dt.datetime(2024, 1, 1 + i), "A", *bar, 1e6) for i, bar in enumerate(bars)],
        orient="row", schema={"timestamp": pl.Datetime("us"), "asset": pl.String,
                              "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                              "close": pl.Float64, "volume": pl.Float64})


def both_sides(prices: pl.DataFrame, rows: pl.DataFrame, adaptive: bool = False, **settings):
    config = BacktestConfig.for_profile("nautilus", initial_cash=1e6, **settings)
    theirs = run_nautilus_orders(prices, rows, config, adaptive=adaptive).fills
    ours = run_orders(prices, rows, config).fills
    return ([(t.day, o, q, p) for t, o, q, p in
             theirs.select("timestamp", "order_id", "quantity", "price").rows()],
            [(t.day, o, q, p) for t, o, q, p in
             ours.select("timestamp", "order_id", "quantity", "price").rows()])


def test_worked_example_gaps_fill_at_the_level_and_trails_move_inside_the_bar():
    """docs/peers.md: a sell stop at 97 the open gaps past (95) fills at 97; a trailing
    stop (5 below) moves at each price from the one before: O 104 → 95, H 112 → 99, L 103.5
    checked against 99 then trailed from 112 to 107, the close 106 fills it at 107."""
    day = dt.datetime(2024, 1, 1)
    gap, _ = both_sides(one_asset([(100, 100, 100, 100), (95, 96, 94, 95.5)]), table([
        {"timestamp": day, "asset": "A", "type": "market", "quantity": 10.0},
        {"timestamp": day, "asset": "A", "type": "stop", "quantity": -10.0,
         "stop_price": 97.0}]))
    assert gap == [(1, 0, 10.0, 100.0), (2, 1, -10.0, 97.0)]
    trail, ours = both_sides(one_asset([(100, 100, 100, 100), (104, 112, 103.5, 106)]), table([
        {"timestamp": day, "asset": "A", "type": "market", "quantity": 10.0},
        {"timestamp": day, "asset": "A", "type": "trailing_stop", "quantity": -10.0,
         "trail": 5.0, "trail_mode": "absolute"}]))
    assert trail == ours == [(1, 0, 10.0, 100.0), (2, 1, -10.0, 107.0)]


def test_nautilus_holds_back_a_second_limit_reached_at_the_same_price():
    """Two buy limits (99 and 98) that the low (97) reaches: nautilus fills the higher at 99
    and moves its market there for the rest of that price's matching, so the lower waits
    for a later price at or below 98 (the close, 97.5); ours fill both at the low."""
    day = dt.datetime(2024, 1, 1)
    prices = one_asset([(100, 100, 100, 100), (99.5, 100.5, 97, 97.5)])
    rows = table([{"timestamp": day, "asset": "A", "type": "limit", "quantity": 1.0,
                   "limit_price": 98.0},
                  {"timestamp": day, "asset": "A", "type": "limit", "quantity": 1.0,
                   "limit_price": 99.0}])
    theirs, ours = both_sides(prices, rows)
    assert sorted(theirs) == sorted(ours) == [(2, 0, 1.0, 98.0), (2, 1, 1.0, 99.0)]
    no_close = one_asset([(100, 100, 100, 100), (99.5, 100.5, 97, 99.5), (99.5, 99.6, 99.4,
                                                                          99.5)])
    theirs, ours = both_sides(no_close, rows)
    assert theirs == [(2, 1, 1.0, 99.0)]
    assert sorted(ours) == [(2, 0, 1.0, 98.0), (2, 1, 1.0, 99.0)]


def test_nautilus_activates_a_limit_entrys_children_at_its_fill():
    """A bracket: buy limit entry at 99, stop-loss 98.5, take-profit 101. nautilus releases
    the children at the price that filled the entry. With a low of 98.8 they are live for
    the rest of the entry's bar and the close (101.5) fills the take-profit there; with a
    low of 98 the stop-loss is already passed when released and rejected, and its OCO
    sibling with it: the position is left without exits. Ours try the children from the
    next bar, where the stop-loss fills at its level on the gap down."""
    day = dt.datetime(2024, 1, 1)
    rows = table([
        {"timestamp": day, "asset": "A", "type": "limit", "quantity": 10.0,
         "limit_price": 99.0, "id": 1},
        {"timestamp": day, "asset": "A", "type": "stop", "quantity": -10.0,
         "stop_price": 98.5, "parent": 1},
        {"timestamp": day, "asset": "A", "type": "limit", "quantity": -10.0,
         "limit_price": 101.0, "parent": 1}])
    for low, fills in ((98.8, [(2, 0, 10.0, 99.0), (2, 2, -10.0, 101.0)]),
                       (98.0, [(2, 0, 10.0, 99.0)])):
        prices = one_asset([(100, 100, 100, 100), (99.5, 102, low, 101.5), (97, 97.5, 96, 97)])
        theirs, ours = both_sides(prices, rows)
        assert theirs == fills
        assert ours == [(2, 0, 10.0, 99.0), (3, 1, -10.0, 98.5)]
    config = BacktestConfig.for_profile("nautilus", initial_cash=1e6)
    orders = run_nautilus_orders(prices, rows, config).orders
    assert orders["status"].to_list() == ["FILLED", "REJECTED", "REJECTED"]
    assert "was in the market" in orders["reason"][1]
    assert "already closed" in orders["reason"][2]


def test_nautilus_fills_a_limit_marketable_at_placement_at_once():
    """A buy limit at 101 placed at a close of 100: nautilus fills it at once, at the
    placement close, as a taker; ours place it for the next bar, whose open (100.5) is
    below the limit, so it fills at the limit there (a level the open gapped past)."""
    day = dt.datetime(2024, 1, 1)
    prices = one_asset([(100, 100, 100, 100), (100.5, 102, 100, 101)])
    rows = table([{"timestamp": day, "asset": "A", "type": "limit", "quantity": 1.0,
                   "limit_price": 101.0}])
    theirs, ours = both_sides(prices, rows)
    assert theirs == [(1, 0, 1.0, 100.0)]
    assert ours == [(2, 0, 1.0, 101.0)]


def test_adaptive_ordering_takes_the_low_first_on_a_tie_where_nearest_takes_the_high():
    """O 100, H 102, L 98: the extremes are equally far. nautilus's adaptive ordering then
    goes to the low first (high first only when strictly nearer), `nearest` to the high:
    an OCO sell limit at 102 and sell stop at 98 fill differently."""
    day = dt.datetime(2024, 1, 1)
    prices = one_asset([(100, 100, 100, 100), (100, 102, 98, 100)])
    rows = table([
        {"timestamp": day, "asset": "A", "type": "market", "quantity": 10.0},
        {"timestamp": day, "asset": "A", "type": "limit", "quantity": -10.0,
         "limit_price": 102.0, "group": "x"},
        {"timestamp": day, "asset": "A", "type": "stop", "quantity": -10.0,
         "stop_price": 98.0, "group": "x"}])
    theirs, ours = both_sides(prices, rows, adaptive=True, intrabar_path="nearest")
    assert theirs == [(1, 0, 10.0, 100.0), (2, 2, -10.0, 98.0)]
    assert ours == [(1, 0, 10.0, 100.0), (2, 1, -10.0, 102.0)]
