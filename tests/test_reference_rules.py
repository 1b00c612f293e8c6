"""The reference's switches beyond the engine's own semantics, each on a hand-made market.

These are the rules the gap analysis replays other engines with; every expected number is
worked out here.
"""

from __future__ import annotations

import numpy as np

from engine.reference import (
    Bars,
    Rules,
    Simulation,
    Unrecorded,
    decisions_from_weights,
    run_reference,
)
from engine.reference.rules import BOOKINGS, COUNTS, combined_booking
from tests import builders

CASH = 1000.0


def run(open_, close, decisions, **rules):
    prices = builders.bars(open_, close, ["A", "B"])
    weights = builders.weights(decisions)
    return run_reference(prices, weights, {"initial_cash": CASH}, rules=Rules(**rules))


def fills(result):
    days = {t: i for i, t in enumerate(builders.calendar(40))}
    return [(days[t], a, q, p) for t, a, q, p, _f, _o, _k in result.fills.iter_rows()]


FLAT = [[10.0, 10.0]] * 5


def test_an_engine_that_acts_two_bars_late_fills_the_decision_two_bars_on():
    result = run(FLAT, FLAT, {0: {"A": 0.5}}, delay=2)
    assert fills(result) == [(2, "A", 50.0, 10.0)]


def test_delay_zero_at_the_open_fills_before_the_decision_was_made():
    opens = [[10.0, 10.0], [20.0, 20.0], [20.0, 20.0]]
    result = run(opens, FLAT[:3], {1: {"A": 0.5}}, delay=0, point="open")
    assert fills(result) == [(1, "A", 25.0, 20.0)]


def test_a_batch_booked_twice_is_logged_once_and_sold_down_by_the_next_decision():
    result = run(FLAT, FLAT, {0: {"A": 0.5}, 1: {"A": 0.5}}, booking="twice_hidden")
    # Day 1 logs +50 but books +100 (and 1000 of cash): the engine holds 100, worth 1000,
    # cash 0; target 0.5 × 1000 = 50 shares, so day 2 sells 50.
    assert fills(result) == [(1, "A", 50.0, 10.0), (2, "A", -50.0, 10.0)]


def test_a_fill_booked_twice_as_it_executes_leaves_the_batchs_later_buys_less_cash():
    result = run(FLAT, FLAT, {0: {"A": 0.4, "B": 0.4}}, booking="twice_executing")
    # Day 1: A buys 40 shares (400) and books them twice: 200 of cash left, so B, bought
    # after A (ascending value, column order on ties), is shrunk to 20 shares.
    assert fills(result) == [(1, "A", 40.0, 10.0), (1, "B", 20.0, 10.0)]


def test_a_row_logged_twice_is_booked_once():
    result = run(FLAT, FLAT, {0: {"A": 0.5}, 1: {"A": 0.5}}, booking="logged_twice")
    # Each fill is two rows of 50; the book holds 50, so day 2 has nothing to trade.
    assert fills(result) == [(1, "A", 50.0, 10.0), (1, "A", 50.0, 10.0)]


def test_fees_left_out_of_cash_let_a_buy_spend_what_the_fees_took():
    result = run(FLAT, FLAT, {0: {"A": 0.5}, 1: {"A": 1.0}}, fees=0.01, fee_charged=0.0)
    # Day 1: 50 shares, fee 5 never leaves cash (500 left). Day 2: book 500 + 500 = 1000,
    # target 100 shares, buy 50 for 500 plus a 5 fee: 505 > 500, shrunk to 500 / 1.01 / 10.
    (_, _, first, _), (_, _, second, _) = fills(result)
    assert first == 50.0
    assert second == (500.0 / 1.01) / 10.0


def test_fees_logged_at_twice_what_was_charged_size_and_pay_at_the_charged_rate():
    result = run(FLAT, FLAT, {0: {"A": 0.5}, 1: {"A": 1.0}}, fees=0.02, fee_logged=2.0)
    # The log's model is 2%, the engine charges 1%. Day 1: 50 shares, a fee of 5 paid and
    # 10 logged (495 left). Day 2: book 495 + 500 = 995, target 99.5 shares, buy 49.5 for 495
    # plus 4.95: shrunk to what 495 pays at 1%, 495 / 1.01 / 10 shares, logged at 2% of it.
    rows = [(q, p, f) for _t, _a, q, p, f, _o, _k in result.fills.iter_rows()]
    assert rows[0] == (50.0, 10.0, 10.0)
    second = (495.0 / 1.01) / 10.0
    assert rows[1][0] == second
    assert abs(rows[1][2] - 2 * (495.0 - second * 10.0)) < 1e-9


def test_position_read_as_zero_buys_a_held_target_again_and_never_exits():
    result = run(FLAT, FLAT, {0: {"A": 0.3}, 1: {"A": 0.3}, 2: {"B": 0.3}},
                 position_basis="zero")
    assert fills(result) == [(1, "A", 30.0, 10.0), (2, "A", 30.0, 10.0), (3, "B", 30.0, 10.0)]


def test_exits_lost_keep_what_the_decision_dropped():
    result = run(FLAT, FLAT, {0: {"A": 0.3}, 1: {"B": 0.3}}, exits_lost=True)
    assert fills(result) == [(1, "A", 30.0, 10.0), (2, "B", 30.0, 10.0)]


def test_without_netting_a_waiting_order_and_the_next_one_both_fill():
    opens = [[10.0, 10.0], [np.nan, 10.0], [10.0, 10.0], [10.0, 10.0]]
    rules = {"sizing": "decision_floor", "rounding": "truncate", "netting": False,
             "sequence": "submission"}
    result = run(opens, opens, {0: {"A": 0.5}, 1: {"A": 0.2}}, **rules)
    # Day 0 orders 50 shares of A; A has no bar on day 1, so it waits. Day 1 (nothing held
    # yet) orders 20 more. Both fill on day 2, as two fills.
    assert fills(result) == [(2, "A", 50.0, 10.0), (2, "A", 20.0, 10.0)]


def test_leverage_lets_buys_borrow_up_to_its_limit():
    result = run(FLAT, FLAT, {0: {"A": 0.75, "B": 0.75}}, max_leverage=2.0)
    assert fills(result) == [(1, "A", 75.0, 10.0), (1, "B", 75.0, 10.0)]
    shrunk = run(FLAT, FLAT, {0: {"A": 0.75, "B": 0.75}})
    assert fills(shrunk) == [(1, "A", 75.0, 10.0), (1, "B", 25.0, 10.0)]


def test_a_forced_bar_books_the_given_fills_and_keeps_waiting_orders():
    opens = [[10.0, 10.0], [10.0, np.nan], [10.0, 10.0]]
    prices = builders.bars(opens, opens, ["A", "B"])
    bars = Bars.from_frame(prices)
    sim = Simulation(bars, decisions_from_weights(bars, builders.weights(
        {0: {"A": 0.3, "B": 0.3}})), Rules(), CASH, Unrecorded())
    sim.step(0)
    sim.force(1, [("A", 7.0, 10.0, 0.0)])
    assert sim.book.positions == {"A": 7.0}
    assert list(sim.book.pending) == ["B"]  # B had no bar on day 1: its order still waits
    sim.step(2)
    assert [(a, q) for _, a, q, *_ in sim.fills] == [("A", 7.0), ("B", 30.0)]


def test_a_replay_that_keeps_no_journal_fills_as_a_journaled_run_does():
    opens = [[10.0, 20.0], [11.0, 19.0], [12.0, 18.0], [11.0, 21.0]]
    prices = builders.bars(opens, opens, ["A", "B"])
    bars = Bars.from_frame(prices)
    decisions = decisions_from_weights(bars, builders.weights(
        {0: {"A": 0.5, "B": 0.3}, 1: {"A": 0.2, "B": 0.6}, 2: {"A": 0.0, "B": 0.9}}))
    rules = Rules(booking="twice_executing", position_basis="stale", fees=0.01)
    journaled = Simulation(bars, decisions, rules, CASH).run()
    replay = Simulation(bars, decisions, rules, CASH, Unrecorded()).run()
    assert replay.fills == journaled.fills
    assert replay.book == journaled.book
    assert replay.orders == [] and replay.equity == []
    # The journal names each order's fate: the first decision's two orders both filled.
    assert {(o.asset, o.status) for o in journaled.orders if o.created == 0} == {
        ("A", "filled"), ("B", "filled")}
    assert len(journaled.equity) == len(opens)


def test_a_booking_combined_with_another_logs_and_books_as_often_as_either():
    """A duplicated row and a double dispatch together: each fill logged as often as the one
    that logs more, booked as often as the one that books more, the extra booking when that
    one does it; `once` changes nothing."""
    for a in BOOKINGS:
        assert combined_booking("once", a) == combined_booking(a, "once") == a
        for b in BOOKINGS:
            (n1, m1, e1), (n2, m2, e2) = COUNTS[a], COUNTS[b]
            n, m, executing = COUNTS[combined_booking(a, b)]
            assert (n, m) == (max(n1, n2), max(m1, m2))
            if m2 > m1:
                assert executing == e2
            elif m1 > m2 or a == b:
                assert executing == e1
    assert combined_booking("logged_twice", "twice_hidden") == "twice_logged"
    assert combined_booking("twice_executing", "logged_twice") == "twice_logged_executing"
