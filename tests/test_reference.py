"""The reference loop on hand-computed scenarios: every expected number is derived here."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest

from engine.core.config import BacktestConfig
from engine.reference import ReferenceResult, run_reference

DAYS = [dt.datetime(2024, 1, 1) + dt.timedelta(days=i) for i in range(40)]
CASH = 1000.0


def _prices(bars: dict[str, list[tuple[float, float] | None]]) -> pl.DataFrame:
    """Long prices from {asset: [(open, close) or None for a missing bar, one per day]}."""
    rows = [
        (DAYS[day], asset, bar[0], max(bar), min(bar), bar[1], 1e6)
        for asset, asset_bars in bars.items()
        for day, bar in enumerate(asset_bars)
        if bar is not None
    ]
    return pl.DataFrame(
        rows,
        schema={
            "timestamp": pl.Datetime("us"),
            "asset": pl.String,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
        orient="row",
    ).sort("timestamp", "asset")


def _weights(decisions: dict[int, dict[str, float]]) -> pl.DataFrame:
    """Weights from {day: {asset: weight}}; each day is one decision at its close."""
    rows = [
        (DAYS[day], asset, weight)
        for day, day_weights in sorted(decisions.items())
        for asset, weight in day_weights.items()
    ]
    return pl.DataFrame(
        rows,
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "weight": pl.Float64},
        orient="row",
    )


def _run(
    bars: dict[str, list[tuple[float, float] | None]],
    decisions: dict[int, dict[str, float]],
    **settings: object,
) -> ReferenceResult:
    config = BacktestConfig(**{"initial_cash": CASH, **settings})
    return run_reference(_prices(bars), _weights(decisions), config)


def _fills(result: ReferenceResult) -> list[tuple[int, str, float, float, float]]:
    """Fills as (day, asset, quantity, price, fee) tuples."""
    return [
        (DAYS.index(timestamp), asset, quantity, price, fee)
        for timestamp, asset, quantity, price, fee
        in result.fills.drop("order_id", "trigger").iter_rows()
    ]


def _cash(result: ReferenceResult) -> list[float]:
    return result.equity["cash"].to_list()


def _equity(result: ReferenceResult) -> list[float]:
    return result.equity["equity"].to_list()


def _flat(price: float, days: int) -> list[tuple[float, float] | None]:
    return [(price, price)] * days


# Timing


def test_next_open_fills_at_the_open_of_the_next_bar() -> None:
    result = _run({"A": [(10, 10), (20, 21), (30, 31)]}, {0: {"A": 0.5}})

    # Decided at the close of day 0 with 1000 of book; sized at day 1's open: 500 / 20.
    assert _fills(result) == [(1, "A", 25.0, 20.0, 0.0)]
    assert _cash(result) == [1000.0, 500.0, 500.0]
    assert result.equity["positions_value"].to_list() == [0.0, 25 * 21.0, 25 * 31.0]
    assert _equity(result) == [1000.0, 1025.0, 1275.0]
    assert result.final_equity == 1275.0


def test_next_close_fills_at_the_close_of_the_next_bar() -> None:
    result = _run({"A": [(10, 10), (20, 25), (30, 40)]}, {0: {"A": 0.5}}, fill="next_close")

    assert _fills(result) == [(1, "A", 20.0, 25.0, 0.0)]
    assert _equity(result) == [1000.0, 1000.0, 500.0 + 20 * 40.0]


def test_same_close_fills_at_the_decision_close_and_its_equity_includes_the_fill() -> None:
    result = _run({"A": [(10, 20), (30, 40)]}, {0: {"A": 0.5}}, fill="same_close")

    assert _fills(result) == [(0, "A", 25.0, 20.0, 0.0)]
    assert _cash(result) == [500.0, 500.0]
    assert _equity(result) == [1000.0, 500.0 + 25 * 40.0]


def test_an_order_decided_on_the_last_bar_is_never_filled() -> None:
    result = _run({"A": _flat(10, 2)}, {1: {"A": 1.0}})

    assert result.fills.is_empty()
    assert _equity(result) == [1000.0, 1000.0]


# Sequencing within a batch


def test_sells_execute_before_buys_so_a_rotation_funds_itself() -> None:
    bars = {"AAA": [(10, 10), (10, 10), (20, 20)], "BBB": [(10, 10), (10, 10), (40, 40)]}
    result = _run(bars, {0: {"BBB": 1.0}, 1: {"AAA": 1.0}})

    # Day 2: book = 0 cash + 100 × 40 = 4000. BBB (held, not in the weights) goes to 0 and
    # sells first although AAA comes first by name; AAA then buys 4000 / 20 = 200.
    assert _fills(result) == [
        (1, "BBB", 100.0, 10.0, 0.0),
        (2, "BBB", -100.0, 40.0, 0.0),
        (2, "AAA", 200.0, 20.0, 0.0),
    ]
    assert _cash(result)[-1] == 0.0
    assert _equity(result) == [1000.0, 1000.0, 4000.0]


def test_buys_execute_smallest_first_and_the_last_one_is_shrunk() -> None:
    result = _run({"A": _flat(10, 2), "B": _flat(10, 2)}, {0: {"A": 0.6, "B": 0.5}})

    # B (500) buys before A (600); A then only has 500 left: 50 shares, not 60.
    assert _fills(result) == [(1, "B", 50.0, 10.0, 0.0), (1, "A", 50.0, 10.0, 0.0)]
    assert _cash(result) == [1000.0, 0.0]


def test_equal_order_values_keep_asset_name_order() -> None:
    result = _run({"B": _flat(10, 2), "A": _flat(10, 2)}, {0: {"B": 0.3, "A": 0.3}})

    assert [asset for _, asset, *_ in _fills(result)] == ["A", "B"]


def test_a_held_asset_with_an_explicit_zero_weight_is_sold() -> None:
    result = _run({"A": _flat(10, 3)}, {0: {"A": 0.5}, 1: {"A": 0.0}})

    assert _fills(result) == [(1, "A", 50.0, 10.0, 0.0), (2, "A", -50.0, 10.0, 0.0)]
    assert _cash(result) == [1000.0, 500.0, 1000.0]


# Costs


def test_fees_are_a_fraction_of_traded_value_plus_a_fixed_fee() -> None:
    result = _run({"A": [(10, 10), (20, 20)]}, {0: {"A": 0.5}}, fees=0.01, fixed_fee=2.0)

    # 25 shares × 20 = 500; fee = 500 × 0.01 + 2 = 7.
    assert _fills(result) == [(1, "A", 25.0, 20.0, 7.0)]
    assert _cash(result) == [1000.0, 493.0]
    assert _equity(result) == [1000.0, 993.0]


def test_per_share_commission_has_a_minimum() -> None:
    bars = {"A": [(20, 20), (20, 20)], "B": [(1, 1), (1, 1)]}
    result = _run(bars, {0: {"A": 0.05, "B": 0.5}}, per_share=0.01, min_fee=1.0)

    # A: 2.5 shares × 0.01 = 0.025 → the 1.0 minimum. B: 500 shares × 0.01 = 5.0.
    assert _fills(result) == [(1, "A", 2.5, 20.0, 1.0), (1, "B", 500.0, 1.0, 5.0)]
    assert _cash(result)[-1] == 1000.0 - 50.0 - 1.0 - 500.0 - 5.0


def test_slippage_moves_buys_up_and_sells_down_but_not_the_sizing_price() -> None:
    result = _run({"A": [(10, 10), (20, 20), (20, 20)]}, {0: {"A": 0.5}, 1: {"A": 0.25}},
                  slippage=0.01)

    # Day 1: 500 / 20 = 25 shares bought at 20.2 → cash 1000 − 505 = 495.
    # Day 2: book = 495 + 25 × 20 = 995; target 0.25 × 995 / 20 = 12.4375 shares;
    # sell 12.5625 at 19.8 → cash 495 + 248.7375.
    (day1, buy), (day2, sell) = [(f[0], f[1:]) for f in _fills(result)]
    assert (day1, buy) == (1, ("A", 25.0, 20.2, 0.0))
    assert day2 == 2
    assert sell == ("A", -12.5625, pytest.approx(19.8, rel=1e-15), 0.0)
    assert _cash(result) == [1000.0, 495.0, pytest.approx(743.7375, rel=1e-12)]


# Integer shares


def test_integer_shares_floor_buys_and_sells() -> None:
    result = _run({"A": [(10, 10), (30, 30), (40, 40)]}, {0: {"A": 0.5}, 1: {"A": 0.2}},
                  shares="integer")

    # Day 1: 500 / 30 = 16.67 → 16 shares. Day 2: book = 520 + 16 × 40 = 1160;
    # target 0.2 × 1160 / 40 = 5.8 → sell 10.2 → 10.
    assert _fills(result) == [(1, "A", 16.0, 30.0, 0.0), (2, "A", -10.0, 40.0, 0.0)]
    assert _cash(result) == [1000.0, 520.0, 920.0]


def test_integer_shares_floor_a_shrunk_buy_again() -> None:
    result = _run({"A": _flat(20, 2)}, {0: {"A": 1.0}}, shares="integer", fees=0.01)

    # 50 shares cost 1010 > 1000; shrunk to (1000 / 1.01) / 20 = 49.5 → 49 shares,
    # fee 49 × 20 × 0.01 = 9.8, cash 1000 − 980 − 9.8.
    assert _fills(result) == [(1, "A", 49.0, 20.0, pytest.approx(9.8, rel=1e-12))]
    assert _cash(result)[-1] == pytest.approx(10.2, rel=1e-12)


# Cash policy


def test_shrink_buys_what_the_cash_pays_for_and_leaves_exactly_zero() -> None:
    result = _run({"A": _flat(20, 2)}, {0: {"A": 1.0}}, fees=0.01, fixed_fee=1.0)

    # 50 shares would cost 1000 + 10 + 1; shrunk to spend (1000 − 1) / 1.01 on shares.
    spend = (1000.0 - 1.0) / 1.01
    assert _fills(result) == [(1, "A", spend / 20.0, 20.0, 1000.0 - spend)]
    assert _cash(result) == [1000.0, 0.0]
    assert result.rejections.is_empty()


def test_shrink_with_per_share_commission_solves_for_the_largest_size() -> None:
    result = _run({"A": _flat(20, 2)}, {0: {"A": 1.0}}, per_share=0.1, min_fee=1.0)

    # 50 shares cost 1000 + 5. Above the minimum, n × (20 + 0.1) = 1000.
    [(_, _, quantity, _, fee)] = _fills(result)
    assert quantity == pytest.approx(1000.0 / 20.1, rel=1e-12)
    assert fee == pytest.approx(quantity * 0.1, rel=1e-12)
    assert _cash(result) == [1000.0, 0.0]


def test_shrink_with_a_binding_minimum_fee_pays_the_minimum() -> None:
    result = _run({"A": _flat(20, 2)}, {0: {"A": 1.0}}, per_share=0.01, min_fee=5.0)

    # 50 shares cost 1000 + 5; the minimum binds below 500 shares: n = (1000 − 5) / 20.
    assert _fills(result) == [(1, "A", 49.75, 20.0, 5.0)]
    assert _cash(result) == [1000.0, 0.0]


def test_reject_policy_rejects_a_buy_that_does_not_fit() -> None:
    result = _run({"A": _flat(20, 2)}, {0: {"A": 1.0}}, fees=0.01, cash_policy="reject")

    assert result.fills.is_empty()
    assert result.rejections.rows() == [(DAYS[1], "A", "insufficient_cash")]
    assert _cash(result) == [1000.0, 1000.0]


def test_allow_negative_fills_in_full_and_goes_below_zero() -> None:
    result = _run({"A": _flat(20, 2)}, {0: {"A": 1.0}}, fees=0.01,
                  cash_policy="allow_negative")

    assert _fills(result) == [(1, "A", 50.0, 20.0, 10.0)]
    assert _cash(result) == [1000.0, -10.0]
    assert _equity(result) == [1000.0, 990.0]


def test_a_buy_with_no_cash_left_is_rejected_under_shrink() -> None:
    bars = {"A": _flat(10, 3), "B": _flat(10, 3)}
    result = _run(bars, {0: {"A": 1.0}, 1: {"A": 1.0, "B": 0.5}})

    # Day 2: A is already on target (no-op, not recorded); B finds no cash.
    assert _fills(result) == [(1, "A", 100.0, 10.0, 0.0)]
    assert result.rejections.rows() == [(DAYS[2], "B", "insufficient_cash")]


def test_cash_within_float_noise_of_zero_after_a_fill_is_exactly_zero() -> None:
    bars = {"A": _flat(1.0, 2), "B": _flat(0.9, 2), "C": _flat(1.0, 2)}
    result = _run(bars, {0: {"A": 0.5, "B": 0.5, "C": 0.6}}, initial_cash=1e6)

    # A and B tie at 500000 each (asset order), C comes last. B's 500000 / 0.9 shares
    # cost 499999.99999999994, leaving float dust that would shrink C to a dust-sized buy.
    b_shares = 500000.0 / 0.9
    assert 1e6 - 500000.0 - b_shares * 0.9 > 1e-11
    assert _fills(result) == [(1, "A", 500000.0, 1.0, 0.0), (1, "B", b_shares, 0.9, 0.0)]
    assert _cash(result) == [1e6, 0.0]
    assert result.rejections.rows() == [(DAYS[1], "C", "insufficient_cash")]


def test_a_sell_whose_fee_exceeds_its_proceeds_is_rejected() -> None:
    result = _run({"A": _flat(10, 3)}, {0: {"A": 0.01}, 1: {"A": 0.0}}, fixed_fee=15.0)

    # Day 1: 1 share for 10 + 15. Day 2: selling it brings 10 and costs 15.
    assert _fills(result) == [(1, "A", 1.0, 10.0, 15.0)]
    assert result.rejections.rows() == [(DAYS[2], "A", "fee_exceeds_proceeds")]
    assert result.equity["positions_value"].to_list() == [0.0, 10.0, 10.0]


# Long-only and shorts


def test_long_only_sells_are_capped_at_the_position_held() -> None:
    result = _run({"A": _flat(10, 3)}, {0: {"A": 0.5}, 1: {"A": -0.5}})

    assert _fills(result) == [(1, "A", 50.0, 10.0, 0.0), (2, "A", -50.0, 10.0, 0.0)]
    assert _cash(result) == [1000.0, 500.0, 1000.0]


def test_long_only_sell_without_a_position_is_a_silent_noop() -> None:
    result = _run({"A": _flat(10, 2)}, {0: {"A": -0.5}})

    assert result.fills.is_empty()
    assert result.rejections.is_empty()


def test_allow_short_sells_past_zero() -> None:
    result = _run({"A": _flat(10, 3)}, {0: {"A": 0.5}, 1: {"A": -0.5}}, allow_short=True)

    assert _fills(result) == [(1, "A", 50.0, 10.0, 0.0), (2, "A", -100.0, 10.0, 0.0)]
    assert _cash(result) == [1000.0, 500.0, 1500.0]
    assert result.equity["positions_value"].to_list() == [0.0, 500.0, -500.0]
    assert _equity(result) == [1000.0, 1000.0, 1000.0]


# Missing bars


def test_an_order_for_an_asset_without_a_bar_waits_for_its_next_bar() -> None:
    bars = {"A": _flat(10, 3), "B": [(10, 10), None, (20, 20)]}
    result = _run(bars, {0: {"A": 0.5, "B": 0.5}})

    # Day 1 only A fills. Day 2 B is sized then: book = 500 + 50 × 10, 500 / 20 = 25.
    assert _fills(result) == [(1, "A", 50.0, 10.0, 0.0), (2, "B", 25.0, 20.0, 0.0)]
    assert _cash(result) == [1000.0, 500.0, 0.0]


def test_a_later_decision_replaces_a_waiting_order() -> None:
    bars = {"A": _flat(10, 4), "B": [(10, 10), None, None, (20, 20)]}
    result = _run(bars, {0: {"A": 0.5, "B": 0.5}, 1: {"A": 0.5, "B": 0.25}})

    # Day 3: book = 500 + 50 × 10; B's replacing target is 0.25 × 1000 / 20 = 12.5.
    assert _fills(result) == [(1, "A", 50.0, 10.0, 0.0), (3, "B", 12.5, 20.0, 0.0)]


def test_a_waiting_order_left_out_of_a_later_decision_is_cancelled_to_zero() -> None:
    bars = {"A": _flat(10, 4), "B": [(10, 10), None, None, (20, 20)]}
    result = _run(bars, {0: {"A": 0.5, "B": 0.5}, 1: {"A": 0.5}})

    assert _fills(result) == [(1, "A", 50.0, 10.0, 0.0)]


def test_same_close_order_without_a_bar_waits_for_the_next_close() -> None:
    result = _run({"A": _flat(10, 2), "B": [None, (20, 20)]}, {0: {"B": 0.5}},
                  fill="same_close")

    assert _fills(result) == [(1, "B", 25.0, 20.0, 0.0)]


def test_a_held_asset_without_a_bar_is_marked_at_its_last_close() -> None:
    bars = {"A": _flat(10, 4), "B": [(10, 10), (10, 12), None, (30, 30)]}
    result = _run(bars, {0: {"B": 1.0}})

    assert result.equity["positions_value"].to_list() == [0.0, 1200.0, 1200.0, 3000.0]


def test_a_batch_values_held_assets_without_a_bar_at_their_last_close() -> None:
    bars = {"A": [(10, 10), (10, 10), (10, 10)], "B": [(10, 10), (10, 30), None]}
    result = _run(bars, {0: {"A": 0.5, "B": 0.5}, 1: {"A": 0.1, "B": 0.5}})

    # Day 2: book = 0 + 50 × 10 (A at its open) + 50 × 30 (B at its last close) = 2000;
    # B waits; A targets 0.1 × 2000 / 10 = 20 shares, so it sells 30.
    assert _fills(result) == [
        (1, "A", 50.0, 10.0, 0.0),
        (1, "B", 50.0, 10.0, 0.0),
        (2, "A", -30.0, 10.0, 0.0),
    ]


# Records and invariants


def test_result_frames_have_the_declared_columns() -> None:
    result = _run({"A": _flat(10, 3)}, {0: {"A": 0.5}})

    assert result.fills.schema == pl.Schema({
        "timestamp": pl.Datetime("us"),
        "asset": pl.String,
        "quantity": pl.Float64,
        "price": pl.Float64,
        "fee": pl.Float64,
        "order_id": pl.Int64,
        "trigger": pl.String,
    })
    assert result.equity.schema == pl.Schema({
        "timestamp": pl.Datetime("us"),
        "cash": pl.Float64,
        "positions_value": pl.Float64,
        "equity": pl.Float64,
    })
    assert result.rejections.schema == pl.Schema(
        {"timestamp": pl.Datetime("us"), "asset": pl.String, "reason": pl.String}
    )
    assert result.equity["timestamp"].to_list() == DAYS[:3]


def _random_market(seed: int) -> tuple[dict, dict]:
    """Three assets over 30 days with gaps and weights every few days."""
    rng = random.Random(seed)
    bars: dict[str, list[tuple[float, float] | None]] = {}
    for asset in ("A", "B", "C"):
        price, asset_bars = rng.uniform(5, 200), []
        for _ in range(30):
            open_price = price * rng.uniform(0.97, 1.03)
            price = open_price * rng.uniform(0.97, 1.03)
            asset_bars.append(None if rng.random() < 0.1 else (open_price, price))
        bars[asset] = asset_bars
    decisions = {
        day: {asset: rng.choice([0.0, 0.1, 0.3, 0.5, -0.2]) for asset in ("A", "B", "C")}
        for day in range(0, 30, 3)
    }
    return bars, decisions


CONFIGS = [
    {},
    {"fill": "next_close", "fees": 0.001, "slippage": 0.002},
    {"fill": "same_close", "shares": "integer", "fixed_fee": 1.0},
    {"per_share": 0.01, "min_fee": 1.0, "cash_policy": "reject"},
    {"allow_short": True, "cash_policy": "allow_negative", "fees": 0.002},
]


@pytest.mark.parametrize("settings", CONFIGS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_equity_and_cash_agree_with_the_fills_on_every_row(settings: dict, seed: int) -> None:
    bars, decisions = _random_market(seed)
    result = _run(bars, decisions, **settings)
    assert not result.fills.is_empty()

    fills_by_day: dict[int, list] = {}
    for day, *fill in _fills(result):
        fills_by_day.setdefault(day, []).append(fill)
    cash, positions, last_close = CASH, {"A": 0.0, "B": 0.0, "C": 0.0}, {}
    for day, (_, row_cash, positions_value, equity) in enumerate(result.equity.iter_rows()):
        for asset, quantity, price, fee in fills_by_day.get(day, []):
            cash -= quantity * price + fee
            positions[asset] += quantity
        last_close.update({a: b[day][1] for a, b in bars.items() if b[day] is not None})
        marked = sum(q * last_close[a] for a, q in positions.items() if q != 0.0)
        scale = CASH + abs(marked)
        assert row_cash == pytest.approx(cash, rel=1e-9, abs=1e-9 * scale)
        assert positions_value == pytest.approx(marked, rel=1e-9, abs=1e-9 * scale)
        assert equity == pytest.approx(row_cash + positions_value, rel=1e-12)
    assert result.final_equity == result.equity["equity"][-1]


@pytest.mark.parametrize("seed", [1, 2])
def test_long_only_never_holds_a_negative_position(seed: int) -> None:
    bars, decisions = _random_market(seed)
    result = _run(bars, decisions)

    held = result.fills.group_by("asset").agg(pl.col("quantity").cum_sum().min())
    assert held["quantity"].min() >= 0.0


def test_inputs_are_not_mutated() -> None:
    bars, decisions = _random_market(4)
    prices, weights = _prices(bars), _weights(decisions)
    before = (prices.clone(), weights.clone())

    run_reference(prices, weights, BacktestConfig(initial_cash=CASH))

    assert prices.equals(before[0])
    assert weights.equals(before[1])


def test_every_order_is_recorded_with_its_outcome():
    bars = {"A": [(10.0, 10.0)] * 4, "B": [(20.0, 20.0)] * 4}
    result = _run(bars, {0: {"A": 0.5, "B": 0.6}, 1: {"A": 0.5}}, cash_policy="reject")
    orders = result.orders.select("order_id", "asset", "status", "reason").rows()
    assert orders == [
        (0, "A", "filled", None),
        (1, "B", "rejected", "insufficient_cash"),
        (2, "A", "noop", None),
    ]
    assert result.fills["order_id"].to_list() == [0]
