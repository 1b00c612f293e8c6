"""Resting orders, one hand-computed example per rule of docs/semantics.md ("Resting orders
and risk rules"): where a limit, stop, stop-limit and trailing stop fill inside a bar, the
intra-bar path, `stop_first`, activation, brackets, OCO, expiry and cancellation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine import BacktestConfig, InputError, Strategy, run_orders, run_strategy

T0 = dt.datetime(2024, 1, 1)
FLAT = (100.0, 100.0, 100.0, 100.0)


def ohlc(rows: list[tuple[float, float, float, float]], asset: str = "A0") -> pl.DataFrame:
    """Bars of one asset from (open, high, low, close) rows, one day apart."""
    return pl.DataFrame(
        [(T0 + dt.timedelta(days=i), asset, o, h, low, c, 1e6)
         for i, (o, h, low, c) in enumerate(rows)],
        schema=["timestamp", "asset", "open", "high", "low", "close", "volume"], orient="row",
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us")))


class Script(Strategy):
    """Calls `steps[bar](ctx)` at the close of each bar that has a step."""

    def __init__(self, steps) -> None:
        self.steps = steps
        self.ids: dict[str, int] = {}

    def on_bar(self, ctx) -> None:
        if ctx.bar in self.steps:
            self.steps[ctx.bar](ctx, self.ids)


def run(rows, steps, **settings):
    config = BacktestConfig(**{"initial_cash": 100_000.0, **settings})
    return run_strategy(ohlc(rows), Script(steps), config).validate()


def fills(result) -> list[tuple[int, float, float, str]]:
    """(bar, quantity, price, trigger) of every fill."""
    days = (result.fills["timestamp"] - T0).dt.total_days().to_list()
    return list(zip(days, result.fills["quantity"].to_list(), result.fills["price"].to_list(),
                    result.fills["trigger"].to_list(), strict=True))


def status(result, order_id: int) -> tuple[str, str | None]:
    row = result.orders.row(order_id, named=True)
    return row["status"], row["reason"]


def buy_stop(level: float, **kw):
    return {0: lambda ctx, ids: ids.update(o=int(ctx.order("A0", 10, stop=level, **kw)[0]))}


def test_a_stop_gapped_through_at_the_open_fills_at_the_open():
    result = run([FLAT, (100, 104, 99, 103), (108, 110, 107, 109)], buy_stop(105.0))
    assert fills(result) == [(2, 10.0, 108.0, "stop")]


def test_a_stop_touched_inside_the_bar_fills_at_its_level():
    result = run([FLAT, (100, 106, 99, 103)], buy_stop(105.0))
    assert fills(result) == [(1, 10.0, 105.0, "stop")]


def test_stop_slippage_is_capped_at_the_high():
    result = run([FLAT, (100, 106, 99, 103)], buy_stop(105.0), slippage=0.01)
    assert fills(result) == [(1, 10.0, 106.0, "stop")], "105 × 1.01 = 106.05 is above H"
    inside = run([FLAT, (100, 110, 99, 103)], buy_stop(105.0), slippage=0.01)
    assert fills(inside)[0][2] == pytest.approx(106.05, rel=1e-12)


def test_a_limit_fills_at_its_level_or_the_better_open_without_slippage():
    place = {0: lambda ctx, ids: ctx.order("A0", 10, limit=95.0)}
    touched = run([FLAT, (100, 101, 94, 99)], place, slippage=0.01)
    assert fills(touched) == [(1, 10.0, 95.0, "limit")]
    gapped = run([FLAT, (93, 94, 90, 92)], place, slippage=0.01)
    assert fills(gapped) == [(1, 10.0, 93.0, "limit")]
    missed = run([FLAT, (100, 101, 95.5, 99)], place)
    assert fills(missed) == [] and status(missed, 0) == ("open", None)


def test_a_sell_stop_is_triggered_by_the_low_and_fills_at_its_level():
    steps = {0: lambda ctx, ids: (ctx.order("A0", 10), ctx.order("A0", -10, stop=95.0))}
    result = run([FLAT, (100, 101, 99, 100), (99, 100, 94, 96)], steps)
    assert fills(result) == [(1, 10.0, 100.0, "market"), (2, -10.0, 95.0, "stop")]


@pytest.mark.parametrize(("bar", "limit", "expected"), [
    ((100, 107, 99, 100), 106.0, [(1, 10.0, 105.0, "stop_limit")]),  # trigger meets limit
    ((100, 107, 99, 102), 103.0, [(1, 10.0, 103.0, "stop_limit")]),  # down to the limit after
    ((106, 107, 102, 104), 106.5, [(1, 10.0, 106.0, "stop_limit")]),  # gap: limit from open
    ((106, 107, 102, 104), 103.0, [(1, 10.0, 103.0, "stop_limit")]),  # gap, limit in the bar
], ids=["trigger", "rest_of_path", "gap_open", "gap_limit"])
def test_stop_limit_fills_along_both_paths(bar, limit, expected):
    steps = {0: lambda ctx, ids: ctx.order("A0", 10, stop=105.0, limit=limit)}
    assert fills(run([FLAT, bar], steps)) == expected


def test_a_stop_limit_triggered_but_not_filled_rests_as_a_limit():
    # nearest path: O 100 → L 99 → H 107 (stop 105 reached) → C 104 (> limit 103): no fill
    steps = {0: lambda ctx, ids: ctx.order("A0", 10, stop=105.0, limit=103.0)}
    result = run([FLAT, (100, 107, 99, 104), (102.5, 104, 102, 103)], steps)
    assert fills(result) == [(2, 10.0, 102.5, "stop_limit")], "a limit now: the open is better"
    never_triggered = run([FLAT, (100, 104, 99, 104), (102.5, 104, 102, 103)], steps)
    assert fills(never_triggered) == []


def trailing_steps(**kw):
    return {0: lambda ctx, ids: (ctx.order("A0", 10), ctx.order("A0", -10, trail=0.1, **kw))}


TRAIL_BARS = [FLAT, (100, 120, 99, 115), (112, 113, 107, 110), (104, 105, 100, 101)]


def test_a_trailing_stop_follows_the_high_a_bar_late():
    # placed at bar 0's close 100 (level 90); bar 1 reaches 120 but its low 99 is checked
    # against 90, then the peak moves to 120 (level 108); bar 2's low 107 crosses 108.
    result = run(TRAIL_BARS, trailing_steps())
    assert fills(result)[1:] == [(2, -10.0, 108.0, "trailing_stop")]


def test_a_trailing_stop_following_the_close_lags_behind_it():
    # peak from bar 1's close 115: level 103.5; bar 2 (low 107) misses, peak stays 115
    # (close 110); bar 3 opens at 104, low 100: the level is touched at 103.5.
    result = run(TRAIL_BARS, trailing_steps(), trail_source="close")
    assert fills(result)[1:] == [(3, -10.0, 103.5, "trailing_stop")]


def test_an_absolute_trail_is_a_price_distance():
    steps = {0: lambda ctx, ids: (ctx.order("A0", 10),
                                  ctx.order("A0", -10, trail=5.0, trail_mode="absolute"))}
    result = run(TRAIL_BARS, steps)
    assert fills(result)[1:] == [(2, -10.0, 112.0, "trailing_stop")], "opens below 120 − 5"


def oco_exits(ctx, ids):
    ctx.order("A0", 10)
    ids["tp"] = int(ctx.order("A0", -10, limit=110.0, oco="exit")[0])
    ids["sl"] = int(ctx.order("A0", -10, stop=95.0, oco="exit")[0])


BOTH = [FLAT, (100, 100, 100, 100), (100, 111, 94, 100)]


@pytest.mark.parametrize(("path", "stop_first", "price"), [
    ("nearest", False, 95.0),  # the low (6 away) is nearer the open than the high (11)
    ("ohlc", False, 110.0), ("olhc", False, 95.0), ("ohlc", True, 95.0)])
def test_the_intrabar_path_decides_between_stop_loss_and_take_profit(path, stop_first, price):
    result = run(BOTH, {0: oco_exits}, intrabar_path=path, stop_first=stop_first)
    assert [f[2] for f in fills(result)] == [100.0, price]
    loser = 1 if price == 95.0 else 2
    assert status(result, loser) == ("cancelled", "oco")


def test_stop_first_takes_the_stop_even_when_the_open_gapped_past_the_target():
    gap = [FLAT, FLAT, (112, 113, 94, 100)]
    assert fills(run(gap, {0: oco_exits}))[1][2] == 112.0, "the open fills the limit"
    for config in ({"stop_first": True}, {"profile": "vectorbt"}):
        assert fills(run(gap, {0: oco_exits}, **config))[1][2] == 95.0


def test_a_bracket_s_children_wait_for_the_bar_after_the_entry_fill():
    def place(ctx, ids):
        ids["bracket"] = ctx.bracket("A0", 10, take_profit=110.0, stop_loss=95.0, limit=100.0)

    # bar 1: the entry limit fills at 100 and the bar's low 90 does not touch the stop-loss
    # (not live yet); bar 2 reaches the take-profit, which cancels the stop-loss.
    rows = [(101, 102, 101, 101), (101, 102, 90, 100), (104, 111, 103, 108)]
    result = run(rows, {0: place})
    assert fills(result) == [(1, 10.0, 100.0, "limit"), (2, -10.0, 110.0, "limit")]
    entry, profit, loss = result.orders.select("parent", "group").rows()
    assert entry == (None, None) and profit == loss == (0, 1)
    assert status(result, 2) == ("cancelled", "oco")


def test_a_bracket_whose_entry_expires_cancels_its_children():
    def place(ctx, ids):
        (entry,) = ctx.order("A0", 10, limit=90.0, valid_until=1)
        ctx.order("A0", -10, limit=110.0, parent=entry)

    result = run([FLAT, FLAT, FLAT], {0: place})
    assert [status(result, i) for i in (0, 1)] == [("expired", "expired"),
                                                    ("cancelled", "cancelled")]


@pytest.mark.parametrize("until", [2, T0 + dt.timedelta(days=2, hours=12)],
                         ids=["bars", "timestamp"])
def test_an_order_is_checked_until_valid_until_then_expires(until):
    steps = {0: lambda ctx, ids: ctx.order("A0", 10, limit=90.0, valid_until=until)}
    late = run([FLAT, FLAT, FLAT, (95, 96, 89, 90)], steps)
    assert fills(late) == [] and status(late, 0) == ("expired", "expired")
    assert late.orders["valid_until"][0] == T0 + dt.timedelta(days=2)
    last_day = run([FLAT, FLAT, (95, 96, 89, 90)], steps)
    assert fills(last_day) == [(2, 10.0, 90.0, "limit")]


def test_cancel_withdraws_an_open_order():
    steps = {0: lambda ctx, ids: ids.update(o=int(ctx.order("A0", 10, limit=95.0)[0])),
             1: lambda ctx, ids: ctx.cancel(ids["o"])}
    result = run([FLAT, FLAT, (94, 95, 90, 92)], steps)
    assert fills(result) == [] and status(result, 0) == ("cancelled", "cancelled")


def test_open_orders_lists_market_and_resting_orders_read_only():
    seen = {}

    def look(ctx, ids):
        ctx.order("A0", 5)
        ctx.order("A0", 10, limit=95.0)
        seen["open"] = ctx.open_orders
        with pytest.raises(ValueError):
            seen["open"]["limit_price"][0] = 1.0

    run([FLAT, FLAT], {0: look})
    assert seen["open"]["order_id"].tolist() == [0, 1]
    assert seen["open"]["type"].tolist() == [0, 1]


def test_a_target_to_zero_cancels_the_asset_s_resting_orders():
    steps = {0: lambda ctx, ids: (ctx.order_target_percent("A0", 0.5),
                                  ctx.order("A0", -5, stop=80.0)),
             1: lambda ctx, ids: ctx.order_target_percent("A0", 0.0)}
    result = run([FLAT, FLAT, FLAT, FLAT], steps)
    assert status(result, 1) == ("cancelled", "position_closed")


def test_a_sell_never_exceeds_the_position_long_only():
    steps = {0: lambda ctx, ids: (ctx.order("A0", 4), ctx.order("A0", -10, limit=101.0))}
    result = run([FLAT, FLAT, (100, 102, 99, 101)], steps)
    assert fills(result) == [(1, 4.0, 100.0, "market"), (2, -4.0, 101.0, "limit")]


def test_costs_and_cash_policy_apply_at_a_resting_fill():
    steps = {0: lambda ctx, ids: ctx.order("A0", 2000, limit=95.0)}
    result = run([FLAT, (100, 101, 94, 99)], steps, fees=0.001)
    (_, quantity, price, _), = fills(result)
    assert price == 95.0
    assert quantity == pytest.approx(100_000.0 / 1.001 / 95.0, rel=1e-12), "shrunk to cash"
    assert result.fills["fee"][0] == pytest.approx(100_000.0 - 100_000.0 / 1.001, rel=1e-9)
    assert status(result, 0) == ("filled", "shrunk_to_cash")


def test_order_arguments_are_checked():
    def bad(ctx, ids):
        with pytest.raises(ValueError, match="trailing stop takes trail only"):
            ctx.order("A0", 1, trail=0.1, stop=90.0)
        with pytest.raises(ValueError, match="valid_until and oco apply"):
            ctx.order("A0", 1, valid_until=2)
        with pytest.raises(ValueError, match="positive"):
            ctx.order("A0", 1, limit=-1.0)
        with pytest.raises(ValueError, match="wrong sides"):
            ctx.bracket("A0", 1, take_profit=90.0, stop_loss=110.0)
        ids["checked"] = 1

    script = {0: bad}
    run([FLAT, FLAT], script)


# -- order tables -------------------------------------------------------------------------

def table(**columns) -> pl.DataFrame:
    n = len(columns["type"])
    base = {"timestamp": [T0] * n, "asset": ["A0"] * n}
    return pl.DataFrame(base | columns, strict=False)


def test_a_trailing_bracket_child_starts_at_the_entry_fill_not_the_decision_close():
    # decided at bar 0's close (90); the entry fills at bar 1's open (100): the child's
    # reference is 100 (level 95), reached by bar 2's low
    prices = ohlc([(90, 90, 90, 90), (100, 101, 99, 100), (103, 104, 94, 100), FLAT])
    orders = table(type=["market", "trailing_stop"], quantity=[10.0, -10.0],
                   trail=[None, 0.05], id=["e", None], parent=[None, "e"])
    result = run_orders(prices, orders, BacktestConfig(initial_cash=10_000.0)).validate()
    assert fills(result) == [(1, 10.0, 100.0, "market"), (2, -10.0, 95.0, "trailing_stop")]


def test_an_order_table_places_a_bracket_and_an_expiring_stop():
    prices = ohlc([FLAT, (100, 102, 97, 101), (104, 111, 103, 108), FLAT, FLAT])
    orders = table(type=["limit", "limit", "stop", "stop"], quantity=[10.0, -10.0, -10.0, 5.0],
                   limit_price=[98.0, 110.0, None, None], stop_price=[None, None, 90.0, 150.0],
                   id=["e", None, None, None], parent=[None, "e", "e", None],
                   valid_until=[None, None, None, "2"])
    result = run_orders(prices, orders, BacktestConfig(initial_cash=10_000.0)).validate()
    assert fills(result) == [(1, 10.0, 98.0, "limit"), (2, -10.0, 110.0, "limit")]
    assert result.orders["status"].to_list() == ["filled", "filled", "cancelled", "expired"]


@pytest.mark.parametrize(("change", "message"), [
    ({"type": ["limit", "lmt"]}, "column 'type': unknown order type"),
    ({"limit_price": [None, 110.0]}, "column 'limit_price': limit and stop_limit orders need"),
    ({"quantity": [0.0, 1.0]}, "column 'quantity': quantity must be a non-zero number"),
    ({"asset": ["A0", "ZZ"]}, "column 'asset': asset not in the prices"),
    ({"timestamp": [T0, T0 + dt.timedelta(hours=3)]}, "column 'timestamp': timestamp is not"),
    ({"parent": [None, "nope"]}, "column 'parent': parent names no id"),
    ({"valid_until": ["0", None]}, "column 'valid_until': valid_until in bars must be"),
    ({"valid_until": [None, (T0 + dt.timedelta(hours=3)).isoformat()]},
     "column 'valid_until': valid_until is before the next bar"),
    ({"id": ["e", "e"], "parent": [None, None]}, "column 'id': duplicate id"),
    ({"type": ["market", "limit"], "limit_price": [None, 110.0], "id": [None, None],
      "parent": [None, None], "group": ["g", "g"]},
     "column 'type': valid_until and group apply to resting orders"),
], ids=["type", "limit", "quantity", "asset", "timestamp", "parent", "valid_until",
        "valid_until_same_bar", "duplicate_id", "market_in_group"])
def test_a_bad_order_table_names_the_column_and_the_row(change, message):
    prices = ohlc([FLAT, FLAT])
    orders = table(**({"type": ["limit", "limit"], "quantity": [1.0, -1.0],
                       "limit_price": [99.0, 110.0], "id": ["e", None],
                       "parent": [None, "e"], "valid_until": [None, None]} | change))
    with pytest.raises(InputError) as raised:
        run_orders(prices, orders)
    text = str(raised.value)
    assert text.startswith(f"orders: {message}")
    assert text.endswith(("at rows 1", "at rows 2", "at rows 1, 2"))
    assert np.char.count(text, "\n") == 0


def test_a_bracket_entry_replaced_by_a_target_cancels_its_children():
    def place(ctx, ids):
        ctx.bracket("A0", 10, take_profit=110.0, stop_loss=95.0)
        ctx.order_target("A0", 3)

    result = run([FLAT, FLAT], {0: place})
    assert [status(result, i)[0] for i in range(4)] == ["replaced", "cancelled", "cancelled",
                                                        "filled"]


def test_a_bracket_entry_merged_into_a_later_order_keeps_its_children():
    def place(ctx, ids):
        ctx.bracket("A0", 10, take_profit=110.0, stop_loss=95.0)
        ctx.order("A0", 5)  # absorbs the entry: one order of 15 shares

    # bar 1: the merged order fills 15 at the open; bar 2 reaches the take-profit, which
    # sells the bracket's own 10 and cancels the stop-loss
    result = run([FLAT, FLAT, (104, 111, 103, 108)], {0: place})
    assert fills(result) == [(1, 15.0, 100.0, "market"), (2, -10.0, 110.0, "limit")]
    assert [status(result, i)[0] for i in range(4)] == ["merged", "filled", "cancelled",
                                                        "filled"]


def test_stop_first_moves_only_the_stop_s_own_group():
    def place(ctx, ids):
        ctx.order("A0", 20)
        ctx.order("A0", -10, limit=110.0)  # no group: tried where the path reaches it
        ctx.order("A0", -10, limit=112.0, oco="exit")
        ctx.order("A0", -10, stop=95.0, oco="exit")

    # bar 2, open → high → low: the lone limit at 110 first, then the group at its first
    # phase (the high, where its 112 is reached) with its stop at 95 ahead of the 112
    result = run([FLAT, FLAT, (100, 113, 94, 100)], {0: place}, stop_first=True,
                 intrabar_path="ohlc")
    assert fills(result)[1:] == [(2, -10.0, 110.0, "limit"), (2, -10.0, 95.0, "stop")]
    assert status(result, 2) == ("cancelled", "oco")


def test_a_bracket_entry_refused_by_backtrader_s_margin_check_cancels_its_children():
    def place(ctx, ids):
        ctx.bracket("A0", 5000, take_profit=110.0, stop_loss=95.0)  # 500,000 of 100,000

    config = {"profile": "backtrader", "shares": "integer", "cash_policy": "reject"}
    result = run([FLAT, FLAT, FLAT], {0: place}, **config)
    assert [status(result, i) for i in range(3)] == [
        ("rejected", "margin"), ("cancelled", "cancelled"), ("cancelled", "cancelled")]


def test_with_close_fills_resting_orders_fill_inside_the_bar_before_the_close():
    steps = {0: lambda ctx, ids: (ctx.order("A0", 10), ctx.order("A0", 10, limit=95.0))}
    result = run([FLAT, (100, 101, 94, 99)], steps, fill="next_close")
    assert fills(result) == [(1, 10.0, 95.0, "limit"), (1, 10.0, 99.0, "market")]


@pytest.mark.parametrize(("limit", "expected"), [
    (94.0, 95.0),  # O 100 → H 101 → L 93: triggered at 95, which satisfies the limit 94
    (96.0, 96.0),  # 95 is below the limit 96; the way to the close (96) reaches it
])
def test_a_sell_stop_limit_mirrors_the_buy(limit, expected):
    steps = {0: lambda ctx, ids: (ctx.order("A0", 10), ctx.order("A0", -10, stop=95.0,
                                                                 limit=limit))}
    result = run([FLAT, FLAT, (100, 101, 93, 96)], steps)
    assert fills(result)[1:] == [(2, -10.0, expected, "stop_limit")]


# The `close` path (zipline's): docs/semantics.md, "Price path inside a bar" and the worked
# examples "close path" and "zipline"


def test_on_the_close_path_a_limit_sees_only_the_close_and_fills_there_with_slippage():
    place = {0: lambda ctx, ids: ctx.order("A0", 10, limit=95.0)}
    result = run([FLAT, (100, 101, 94, 99), (98, 99, 93, 94.5)], place,
                 intrabar_path="close", slippage=0.01)
    assert fills(result) == [(2, 10.0, pytest.approx(94.5 * 1.01, rel=1e-12), "limit")]


def test_on_the_close_path_a_stop_triggers_on_the_close_not_the_high():
    result = run([FLAT, (100, 106, 99, 103), (103, 106, 102, 105.5)], buy_stop(105.0),
                 intrabar_path="close")
    assert fills(result) == [(2, 10.0, 105.5, "stop")]


def test_on_the_close_path_a_triggered_stop_limit_waits_as_a_limit():
    place = {0: lambda ctx, ids: ctx.order("A0", 10, stop=105.0, limit=103.0)}
    result = run([FLAT, (100, 107, 99, 106), (104, 105, 101, 102.5)], place,
                 intrabar_path="close")
    assert fills(result) == [(2, 10.0, 102.5, "stop_limit")]


def zipline_run(bars, steps, volume: float = 100.0):
    """`bars` of one asset with `volume` under the `zipline` profile (cap 10% a bar)."""
    prices = ohlc(bars).with_columns(volume=pl.lit(volume))
    config = BacktestConfig.for_profile("zipline", initial_cash=100_000.0)
    return run_strategy(prices, Script(steps), config).validate()


def test_zipline_market_and_resting_orders_share_the_cap_in_placement_order():
    def place(ctx, ids):
        ctx.order("A0", 8)
        ctx.order("A0", 6, limit=101.0)

    result = zipline_run([FLAT] * 4, {0: place})
    assert [(bar, q, trigger) for bar, q, _, trigger in fills(result)] == [
        (1, 8.0, "market"), (1, 2.0, "limit"), (2, 4.0, "limit")]
    assert fills(result)[0][2] == pytest.approx(100 * 1.0005, rel=1e-12)
    assert status(result, 1) == ("filled", None)


def test_zipline_a_limit_met_once_keeps_filling_when_the_close_moves_away():
    place = {0: lambda ctx, ids: ctx.order("A0", 15, limit=100.0)}
    result = zipline_run([FLAT, (100, 100, 98, 99), (101, 103, 101, 102)], place)
    assert [(bar, q) for bar, q, _, _ in fills(result)] == [(1, 10.0), (2, 5.0)]
    assert fills(result)[1][2] == pytest.approx(102 * 1.0005, rel=1e-12), "102 > the limit"


def test_zipline_an_order_behind_a_spent_cap_is_not_even_checked():
    """The limit finds the cap spent on bar 1 and ends the bar: the stop-limit behind it is
    not checked on bar 1's close (102 would have met it for good); on bar 2 its stop holds
    but 104 is above its limit, so it waits as a limit."""
    def place(ctx, ids):
        ctx.order("A0", 10)
        ctx.order("A0", 5, limit=105.0)
        ctx.order("A0", 5, stop=101.0, limit=103.0)

    result = zipline_run([FLAT, (100, 102, 100, 102), (103, 104, 103, 104)], {0: place})
    assert [(bar, q, trigger) for bar, q, _, trigger in fills(result)] == [
        (1, 10.0, "market"), (2, 5.0, "limit")]
    assert status(result, 2) == ("open", None)


def test_zipline_rounds_limit_and_stop_prices_to_the_cent_as_placed():
    def place(ctx, ids):
        ctx.order("A0", 1, limit=99.996)
        ctx.order("A0", -1, limit=99.996)
        ctx.order("A0", 1, stop=100.004)
        ctx.order("A0", -1, stop=100.0096)

    orders = zipline_run([FLAT] * 2, {0: place}).orders
    assert orders["limit_price"].to_list()[:2] == [pytest.approx(99.99), 100.0]
    assert orders["stop_price"].to_list()[2:] == [100.01, 100.01]
    table_orders = run_orders(ohlc([FLAT] * 2), pl.DataFrame({
        "timestamp": [T0], "asset": ["A0"], "type": ["limit"], "quantity": [1.0],
        "limit_price": [99.996]}), BacktestConfig.for_profile("zipline")).orders
    assert table_orders["limit_price"].to_list() == [orders["limit_price"][0]]


def test_on_the_close_path_stop_first_counts_only_group_members_whose_condition_holds():
    """A stop-limit whose stop passes at the close without its limit does not anchor its
    OCO group: the group's stop keeps its own id, behind the ungrouped limit placed first
    (docs/semantics.md, "The `close` path")."""
    from engine.reference import run_reference

    orders = pl.DataFrame({
        "timestamp": [T0] * 3, "asset": ["A0"] * 3, "type": ["stop_limit", "limit", "stop"],
        "quantity": [1.0, 1.0, 1.0], "limit_price": [103.0, 110.0, None],
        "stop_price": [105.0, None, 104.0], "group": ["g", None, "g"]})
    prices = ohlc([FLAT, (100, 107, 99, 106)])
    config = BacktestConfig(intrabar_path="close", stop_first=True)
    engine = run_orders(prices, orders, config).fills
    reference = run_reference(prices, config=config, resting=orders).fills
    assert engine["order_id"].to_list() == reference["order_id"].to_list() == [1, 2]
