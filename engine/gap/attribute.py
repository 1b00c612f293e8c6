"""Split the equity gap by cause, exactly and whatever order the causes are listed in.

Each side's causes are the players of a cooperative game: `v(U)` is the final equity of a
counterfactual replay (the reference oracle over the same bars and decisions) in which only
the causes in `U` act, on the bars where the diagnosis found them; `v(∅)` is the trusted
rules alone, the same run for both sides. A cause's amount is its Shapley value, the
average of what it adds over every order of arrival, so the amounts add up exactly to
`v(all) − v(∅)` and do not depend on how causes are listed. What the replay of all causes
still misses of the side's own fills (`E − v(all)`) is `unexplained`. The gap B − A is then
B's amounts minus A's. With more than `EXACT_UP_TO` causes on a side, each cause is added
in the order of its onset instead (a telescoping sum, still exact).
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np

from engine.gap.belief import Replayed
from engine.gap.logs import FillLog, OwnBook
from engine.gap.observe import Observed
from engine.gap.verdicts import Diagnosis, departures
from engine.gap.vocabulary import ONE_BAR
from engine.reference import Bars, Rules, Simulation, Unrecorded
from engine.reference.bars import CLOSE

EXACT_UP_TO = 5
VISIBLE_CAUSE = {"point": "timing", "slippage": "fill_price", "rounding": "rounding",
                 "fees": "fee", "exit_rule": "exit_rule"}
FIELDS = {"point": ("point",), "slippage": ("slippage",), "rounding": ("rounding", "lot"),
          "fees": ("fees", "per_share", "min_fee", "fixed_fee")}


class Marks:
    """Last known closes as a dense (bar × asset) array, to value replays bar by bar."""

    def __init__(self, bars: Bars) -> None:
        self.column = bars.column
        self.close = np.nan_to_num(bars.last_known(CLOSE))

    def equity(self, fills: list[tuple], initial_cash: float) -> np.ndarray:
        """Equity after every bar from fills (bar, asset, quantity, price, fee, ...)."""
        n_bars, n_assets = self.close.shape
        held = np.zeros((n_bars, n_assets))
        flow = np.zeros(n_bars)
        if fills:
            bar = np.fromiter((f[0] for f in fills), np.int64, len(fills))
            col = np.fromiter((self.column[f[1]] for f in fills), np.int64, len(fills))
            q = np.fromiter((f[2] for f in fills), float, len(fills))
            p = np.fromiter((f[3] for f in fills), float, len(fills))
            fee = np.fromiter((f[4] for f in fills), float, len(fills))
            np.add.at(held, (bar, col), q)
            np.add.at(flow, bar, -(q * p) - fee)
        np.cumsum(held, axis=0, out=held)
        return initial_cash + np.cumsum(flow) + (held * self.close).sum(axis=1)


class Game:
    """Counterfactual replays of one side with a chosen set of its causes acting."""

    def __init__(self, bars: Bars, decisions: dict[int, list], trusted: Rules,
                 observed: Observed, diagnosis: Diagnosis, log: FillLog,
                 initial_cash: float, marks: Marks) -> None:
        self.bars, self.decisions, self.trusted = bars, decisions, trusted
        self.observed, self.diagnosis, self.log = observed, diagnosis, log
        self.initial_cash, self.marks = initial_cash, marks
        self.causes = self._causes()
        self._cache: dict[frozenset[str], np.ndarray] = {}

    def _causes(self) -> list[str]:
        """This side's causes, in the order of their first bar."""
        found: dict[str, int] = {}
        for t in sorted(self.diagnosis.verdicts):
            verdict = self.diagnosis.verdicts[t]
            for switch in verdict.switches:
                if self.diagnosis.touched(switch, t):
                    onset = switch.since if switch.state else t
                    cause = self.diagnosis.cause_of(switch)
                    found[cause] = min(found.get(cause, onset), onset)
            if verdict.unexplained:
                found.setdefault("unexplained", t)
        if self.diagnosis.undecided:
            found.setdefault(self.diagnosis.exit_rule.cause, min(self.diagnosis.undecided))
        visible = self.observed
        for t in self.log.fill_bars:
            for name in self._visible(t):
                found.setdefault(VISIBLE_CAUSE[name], t)
            for price, fee in visible.overrides.get(t, {}).values():
                if price is not None:
                    found.setdefault("fill_price", t)
                if fee is not None:
                    found.setdefault("fee", t)
        return sorted(found, key=found.__getitem__)

    def _visible(self, t: int) -> list[str]:
        """The visible fields that depart from the trusted rules at bar t."""
        verdict = self.diagnosis.verdicts.get(t)
        switches = verdict.switches if verdict else frozenset()
        return [d for d in departures(t, switches, self.observed, self.trusted)
                if isinstance(d, str)]

    def _fields(self, name: str) -> tuple[str, ...]:
        """The `Rules` fields a visible departure sets."""
        if name == "exit_rule":
            return tuple(field for field, _ in self.observed.exit_fields)
        return FIELDS[name]

    def share_baseline(self, other: Game) -> None:
        """Take `other`'s replay of the trusted rules alone: the same run for both sides."""
        self._cache[frozenset()] = other.value(frozenset())

    def value(self, acting: frozenset[str]) -> np.ndarray:
        """Equity per bar of the replay where only the causes in `acting` act.

        With every cause acting on a side whose every bar the diagnosis reproduced, the
        replay is the side's own run: its equity is taken from its fills.
        """
        if acting and acting == frozenset(self.causes) and "unexplained" not in acting:
            return self.marks.equity(_fills(self.log), self.initial_cash)
        if acting not in self._cache:
            self._cache[acting] = self._replay(acting)
        return self._cache[acting]

    def _replay(self, acting: frozenset[str]) -> np.ndarray:
        verdicts = self.diagnosis.verdicts
        states = {}
        for verdict in verdicts.values():
            for switch in verdict.switches:
                if switch.state and self.diagnosis.cause_of(switch) in acting:
                    states[switch] = max(states.get(switch, switch.since), verdict.bar)

        def rules_at(t: int) -> Rules:
            visible = self.observed.rules_at(t)
            rules = self.trusted.with_(**{field: visible[field] for name in self._visible(t)
                                          if VISIBLE_CAUSE[name] in acting
                                          for field in self._fields(name)})
            verdict = verdicts.get(t)
            for switch in sorted(verdict.switches if verdict else (), key=lambda s: s.words):
                if self.diagnosis.cause_of(switch) in acting and not switch.state:
                    rules = switch.apply(rules, t)
            for switch, last in states.items():
                if switch.state in ("fees_out_of_cash", "booked_twice_since",
                                    "logged_twice_since", "fees_twice_since") \
                        and switch.since <= t <= last:
                    rules = switch.apply(rules)
                elif switch.state == "booked_twice" and t == switch.since:
                    rules = rules.with_(booking="twice_hidden")
                elif switch.state in ONE_BAR:
                    rules = switch.apply(rules, t)
                elif switch.state == "belief" and switch.since <= t <= last:
                    rules = switch.apply(rules)
            return rules

        sim = Simulation(self.bars, self.decisions, rules_at, self.initial_cash,
                         Unrecorded())
        forced = "unexplained" in acting
        rule = self.diagnosis.exit_rule
        exits = rule is not None and rule.cause in acting and not self.observed.exit_fields
        beliefs = [s for s in states if s.state == "belief"]  # acted out on the replay's book
        replayed = Replayed(self.bars, self.decisions)
        for t in range(len(self.bars.timestamps)):
            if beliefs:
                book = sim.book
                replayed.books.append(OwnBook(t, book.cash, dict(book.positions)))
                for switch in beliefs:
                    if switch.since <= t <= states[switch]:
                        book.history = (*book.history, dict(switch.belief.positions(replayed, t)))
            sized = t not in self.diagnosis.unsized
            overrides = {a: (p if "fill_price" in acting else None,
                             f if "fee" in acting else None, sized)
                         for a, (p, f) in self.observed.overrides.get(t, {}).items()}
            verdict = verdicts.get(t)
            if forced and verdict is not None and verdict.unexplained:
                sim.force(t, [(a, q, p, f) for a, q, p, f in self.log.rows.get(t, ())])
            else:
                sim.step(t, overrides)
            if exits and t in self.diagnosis.undecided:
                _exit(sim, t, self.diagnosis.undecided[t])
        return self.marks.equity(sim.fills, self.initial_cash)

    def amounts(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Each cause's share of `v(all) − v(∅)`, at the end and bar by bar."""
        causes = self.causes
        n = len(causes)
        per_bar = {c: np.zeros(len(self.bars.timestamps)) for c in causes}
        if n == 0:
            return {}, per_bar
        if n > EXACT_UP_TO:
            previous = self.value(frozenset())
            for i, cause in enumerate(causes):
                current = self.value(frozenset(causes[: i + 1]))
                per_bar[cause] = current - previous
                previous = current
        else:
            for cause in causes:
                others = [c for c in causes if c != cause]
                for size in range(n):
                    weight = factorial(size) * factorial(n - size - 1) / factorial(n)
                    for subset in combinations(others, size):
                        base = frozenset(subset)
                        per_bar[cause] += weight * (self.value(base | {cause}) - self.value(base))
        return {c: float(v[-1]) for c, v in per_bar.items()}, per_bar


def _fills(log: FillLog) -> list[tuple]:
    return [(bar, a, q, p, f) for bar in log.fill_bars for a, q, p, f in log.rows[bar]]


def _exit(sim: Simulation, t: int, fills: dict) -> None:
    """The replay's positions in `fills`' assets closed as the side's undecided fills
    closed its own, at their prices and fee rates."""
    for asset, (q, price, fee, _) in sorted(fills.items()):
        held = sim.book.positions.get(asset, 0.0)
        if held and held * q < 0:
            sim.book_fill(t, asset, -held, price, fee * abs(held / q))
