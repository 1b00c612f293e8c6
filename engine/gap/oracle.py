"""The oracle: the reference `Simulation` stepped one bar at a time from a side's own book.

Only the reference's public stepping API is used (`reset`, `arm_exits`, `step`, `force`,
`try_resting`): the analysis never reaches into its state.
"""

from __future__ import annotations

from engine.gap.logs import Key, aggregate
from engine.reference import Bars, Book, Rules, Simulation, Unrecorded

Entry = tuple[str, int, float]  # asset, the bar its position was opened at, the fill price
ARMED_IDS = -10**9  # ids of the exits armed from a side's entries (before any order's)


class Oracle:
    """The reference `Simulation` stepped one bar at a time from a given book.

    The position rules' exits are not carried from bar to bar: before each bar they are
    armed afresh from the side's own entries (`entries`) under the bar's rules, at levels
    from the entry's fill price or its bar's close (`stop_base`), a trailing reference
    moved over the bars since (`trail_source`), so that the replay of one bar from the
    side's own book holds the exits that side's rules would hold.
    """

    def __init__(self, bars: Bars, decisions: dict[int, list], initial_cash: float = 0.0,
                 long_exits: bool = False) -> None:
        self.sim = Simulation(bars, decisions, Rules(), initial_cash, Unrecorded())
        self.bars = bars
        self.decisions = decisions
        # a rule of the side's own, fitted from its closes of longs: an entry's exits are a
        # long's, also where the position believed went short since (a double booking)
        self.long_exits = long_exits

    def step(self, t: int, rules: Rules, book: Book, overrides: dict | None,
             entries: list[Entry] | None = None) -> tuple[dict[str, Key], Book]:
        """Bar t under `rules` from `book`: the fills per asset, and the book after."""
        self.sim.reset(book, rules)
        self.arm(t, rules, entries)
        fills = self.sim.step(t, overrides)
        return aggregate([(a, q, p, f) for _, a, q, p, f, _ in fills]), self.sim.book

    def force(self, t: int, rules: Rules, book: Book, fills: list) -> Book:
        """Bar t with the side's own fills booked; the book (and orders) after it."""
        self.sim.reset(book, rules)
        self.sim.force(t, fills)
        return self.sim.book

    def exits(self, t: int, rules: Rules, book: Book, entries: list[Entry]) -> list:
        """Only the exits of bar t, armed from `entries`, tried from `book`."""
        self.sim.reset(book, rules)
        self.arm(t, rules, entries)
        return self.sim.try_resting(t, rules)

    def arm(self, t: int, rules: Rules, entries: list[Entry] | None) -> None:
        """The open exits before bar t of the positions opened by `entries`."""
        if not entries or not rules.position_rules:
            return
        sim = self.sim
        positions = sim.book.positions
        short = frozenset(a for a, *_ in entries if positions.get(a, 0.0) < 0) \
            if self.long_exits else frozenset()
        sim.arm_exits(rules, entries, ARMED_IDS, as_long=short, at=t)  # as the long opened
        for order in sim.resting:
            if order.type == "trailing_stop":
                self.trail(order, t, rules, positions[order.asset] < 0)

    def trail(self, order, t: int, rules: Rules, buy: bool) -> None:
        """Move a trailing reference over the bars it was tried at before t."""
        first = order.live_from
        if rules.entry_bar_check and rules.point != "open":
            first += 1  # exits of a close fill come after the bar's resting orders
        rows = self.bars.rows
        for bar in range(first, t):
            row = rows[bar].get(order.asset)
            if row is not None:
                order.follow(row, buy, rules.trail_source)
