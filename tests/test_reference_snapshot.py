"""A reference run resumed from a snapshot (`Simulation.snapshot` / `restore`), as the
gap analysis's counterfactual replays resume from one another.

Whatever the case (random order tables with every type of resting order, OCO pairs,
brackets and expiries, position and portfolio rules, every profile), a run stopped at bar
k, snapshot, and resumed from that snapshot in another simulation ends exactly as the run
that never stopped: the same fills, rejections, book, equity and orders. The snapshot is a
value: the run that took it going on, and a first resumption, change nothing a second
resumption sees (what a snapshot shares with its run, such as settled resting orders, must
never change).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.reference import Bars, Simulation, decisions_from_table, rules_for
from tests.resting_cases import gappy_bars, random_orders

PROFILES = [{}, {"profile": "vectorbt"},
            {"profile": "backtrader", "fill": "next_open", "shares": "integer"},
            {"profile": "zipline", "fill": "next_close", "shares": "integer"}]
RULES = [{}, {"stop_loss": 0.03, "take_profit": 0.04}, {"trailing_stop": 0.03},
         {"max_bars": 3, "stop_loss": 0.02}, {"max_positions": 2, "max_weight": 0.3},
         {"max_gross": 0.8, "halt_drawdown": 0.05, "stop_loss": 0.02}]

cases = st.fixed_dictionaries({
    "seed": st.integers(0, 10_000),
    "n_assets": st.integers(1, 5),
    "n_bars": st.integers(10, 40),
    "n_orders": st.integers(5, 40),
    "profile": st.sampled_from(range(len(PROFILES))),
    "rules": st.sampled_from(range(len(RULES))),
    "at": st.floats(0.1, 0.9),
})


def simulation(case: dict) -> tuple[Simulation, int]:
    prices = gappy_bars(case["n_assets"], case["n_bars"], seed=case["seed"], missing=0.05)
    bars = Bars.from_frame(prices)
    decisions = decisions_from_table(bars, random_orders(prices, case["seed"] + 1,
                                                         case["n_orders"]))
    config = {**PROFILES[case["profile"]], **RULES[case["rules"]], "fees": 0.001,
              "initial_cash": 5_000.0}
    sim = Simulation(bars, decisions, rules_for(config), 5_000.0)
    return sim, max(1, int(case["at"] * len(bars.timestamps)))


def outcome(sim: Simulation) -> tuple:
    return (list(sim.fills), list(sim.rejections), sim.book.cash, dict(sim.book.positions),
            list(sim.equity), [(o.id, o.status, o.reason, o.filled_quantity)
                               for o in sim.orders])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_a_run_resumed_from_a_snapshot_ends_as_the_run_that_never_stopped(case):
    whole, _ = simulation(case)
    expected = outcome(whole.run())

    first, k = simulation(case)
    first.run(0, k)
    taken = first.snapshot()
    assert outcome(first.run(k)) == expected  # the run that took it goes on

    for _ in range(2):  # resumed twice from the same snapshot
        resumed, _ = simulation(case)
        resumed.restore(taken)
        assert outcome(resumed.run(k)) == expected


def test_the_cases_settle_resting_orders_before_the_snapshot():
    """The property is only worth something if snapshots hold settled resting orders."""
    settled = 0
    for seed in range(10):
        sim, k = simulation({"seed": seed, "n_assets": 4, "n_bars": 30, "n_orders": 30,
                             "profile": 0, "rules": 1, "at": 0.6})
        sim.run(0, k)
        settled += sum(o.status != "open" for o in sim.resting_orders.values())
    assert settled >= 20
