"""Exits armed for one bar of a replay (`Simulation.arm_exits(..., at=t)`).

A replay from another engine's book arms the position rules' exits afresh before each bar.
Armed for bar t only, the stops and limits that cannot fill there are left out where no
order of their asset is open; whatever the rules, the path, the book (longs, shorts,
believed-short longs, open orders) and the bar, that bar's fills and the book after it are
exactly those of arming every exit.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.reference import Bars, Book, Rules, Simulation, Unrecorded
from engine.reference.orders import Order
from tests.resting_cases import gappy_bars

RULES = [{"stop_loss": 0.02}, {"take_profit": 0.03}, {"stop_loss": 0.01, "take_profit": 0.01},
         {"trailing_stop": 0.02, "take_profit": 0.04}, {"max_bars": 2, "stop_loss": 0.015}]

cases = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "n_assets": st.integers(1, 6),
    "rules": st.sampled_from(RULES),
    "intrabar_path": st.sampled_from(["nearest", "ohlc", "olhc", "close"]),
    "point": st.sampled_from(["open", "close"]),
    "stop_base": st.sampled_from(["fill", "close"]),
    "gap_fill": st.sampled_from(["open", "level"]),
    "stop_first": st.booleans(),
    "bar_ticks": st.booleans(),
    "reversal_rearms": st.booleans(),
})


def replay(case: dict, narrowed: bool) -> tuple[list, Book]:
    """One bar replayed from a random book with exits armed from random entries."""
    prices = gappy_bars(case["n_assets"], 12, seed=case["seed"], jump=0.3, missing=0.1)
    bars = Bars.from_frame(prices)
    rng = np.random.default_rng(case["seed"])
    t = len(bars.timestamps) - 1  # (a bar every asset misses is no timestamp)
    rules = Rules(**case["rules"], intrabar_path=case["intrabar_path"], point=case["point"],
                  stop_base=case["stop_base"], gap_fill=case["gap_fill"],
                  stop_first=case["stop_first"], bar_ticks=case["bar_ticks"],
                  reversal_rearms=case["reversal_rearms"], allow_short=True)
    positions, entries, pending = {}, [], {}
    for asset in sorted({a for row in bars.rows for a in row}):
        bar = int(rng.integers(0, t))
        if asset not in bars.rows[bar]:
            continue
        positions[asset] = float(rng.choice([-1, 1]) * rng.integers(1, 50))
        price = bars.rows[bar][asset][0] * float(rng.uniform(0.97, 1.03))
        entries.append((asset, bar, price))
        if rng.random() < 0.3:  # an open order that may move the position before the exits
            pending[asset] = Order.new(-1, asset, t - 1, t, "shares",
                                       float(rng.integers(-60, 60)))
    as_long = frozenset(a for a, q in positions.items() if q < 0 and rng.random() < 0.5)
    sim = Simulation(bars, {}, rules, 1e6, Unrecorded())
    sim.reset(Book(1e6, positions, pending), rules)
    sim.arm_exits(rules, entries, -10**9, as_long=as_long, at=t if narrowed else None)
    for order in sim.resting:  # trailing references as a replay moves them before t
        if order.type == "trailing_stop":
            for bar in range(order.live_from, t):
                row = bars.rows[bar].get(order.asset)
                if row is not None:
                    order.follow(row, positions[order.asset] < 0, rules.trail_source)
    fills = sim.step(t)
    return [(a, q, p, f) for _, a, q, p, f, _ in fills], sim.book


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_exits_armed_for_one_bar_fill_as_every_exit_armed(case):
    narrowed_fills, narrowed_book = replay(case, narrowed=True)
    every_fills, every_book = replay(case, narrowed=False)
    assert narrowed_fills == every_fills
    assert narrowed_book.positions == every_book.positions
    assert narrowed_book.cash == every_book.cash


def test_the_case_generator_makes_exits_fire():
    """The property above is only worth something if exits fire in its cases."""
    fired = sum(bool(replay({"seed": seed, "n_assets": 6, "rules": {"stop_loss": 0.01},
                             "intrabar_path": "nearest", "point": "open",
                             "stop_base": "fill", "gap_fill": "open", "stop_first": False,
                             "bar_ticks": False, "reversal_rearms": False},
                            narrowed=True)[0]) for seed in range(20))
    assert fired >= 10
