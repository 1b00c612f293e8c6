"""Split the equity gap by cause, exactly and whatever order the causes are listed in.

Each side's causes are the players of a cooperative game: `v(U)` is the final equity of a
counterfactual replay (the reference oracle over the same bars and decisions) in which only
the causes in `U` act, on the bars where the diagnosis found them; `v(∅)` is the trusted
rules alone, the same run for both sides (A's own run when they reproduce A at every bar:
no replay, and nothing of A unexplained). A cause's amount is its Shapley value, the
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
import polars as pl

from engine.gap.belief import Replayed
from engine.gap.fork import both, workers
from engine.gap.logs import FillLog, OwnBook
from engine.gap.observe import Observed
from engine.gap.verdicts import Diagnosis, departures
from engine.gap.vocabulary import ONE_BAR, in_order
from engine.reference import Bars, Rules, Simulation, Unrecorded
from engine.reference.bars import CLOSE
from engine.results.derive import equity_curve

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
        n = len(fills)
        return self._equity(np.fromiter((f[0] for f in fills), np.int64, n),
                            np.fromiter((self.column[f[1]] for f in fills), np.int64, n),
                            *(np.fromiter((f[i] for f in fills), float, n) for i in (2, 3, 4)),
                            initial_cash)

    def own(self, log: FillLog) -> np.ndarray:
        """`equity` of a side's own fills, read from its log's columns."""
        bar, assets, q, p, fee = log.columns
        col = assets.replace_strict(list(self.column), list(self.column.values()),
                                    return_dtype=pl.Int64).to_numpy()
        return self._equity(bar, col, q, p, fee, log.initial_cash)

    def _equity(self, bar: np.ndarray, col: np.ndarray, q: np.ndarray, p: np.ndarray,
                fee: np.ndarray, initial_cash: float) -> np.ndarray:
        cash, value = equity_curve(bar, col, q, p, fee, self.close, initial_cash)
        return cash + value


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
        self._bars: dict[int, tuple] = {}  # bar → what its rules take from each cause
        # replays resumed from an earlier one (`plan`): acting → (earlier, bar), the bars
        # to snapshot in each, the snapshots taken, and the sets that never part
        self._runs: dict[frozenset[str], _Run] = {}
        self._resume: dict[frozenset[str], tuple[frozenset[str], int]] = {}
        self._snapshots: dict[frozenset[str], set[int]] = {}
        self._taken: dict[tuple[frozenset[str], int], tuple[dict, list]] = {}
        self._same: dict[frozenset[str], frozenset[str]] = {}

    def _causes(self) -> list[str]:
        """This side's causes, in the order of their first bar."""
        found: dict[str, int] = {}
        for t in sorted(self.diagnosis.verdicts):
            verdict = self.diagnosis.verdicts[t]
            for switch in in_order(verdict.switches):  # ties of onset in a fixed order
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

    def _bar(self, t: int) -> tuple[list[tuple[str, str, object]], list[tuple[str, object]]]:
        """What bar t's rules take from the causes, whichever act: the visible fields
        (cause, field, value) and the rule switches of its verdict (cause, switch), in
        the order they apply; the same for every replay, so read once."""
        found = self._bars.get(t)
        if found is None:
            visible = self.observed.rules_at(t)
            fields = [(VISIBLE_CAUSE[name], field, visible[field]) for name in self._visible(t)
                      for field in self._fields(name)]
            verdict = self.diagnosis.verdicts.get(t)
            switches = [(self.diagnosis.cause_of(s), s) for s in sorted(
                verdict.switches if verdict else (), key=lambda s: s.words) if not s.state]
            found = self._bars[t] = (fields, switches)
        return found

    def _fields(self, name: str) -> tuple[str, ...]:
        """The `Rules` fields a visible departure sets."""
        if name == "exit_rule":
            return tuple(field for field, _ in self.observed.exit_fields)
        return FIELDS[name]

    def share_baseline(self, other: Game) -> None:
        """Take `other`'s replay of the trusted rules alone: the same run for both sides."""
        self._cache[frozenset()] = other.value(frozenset())

    def use_own_run_as_baseline(self) -> bool:
        """Take this side's own run, from its fills, as `v(∅)` where it is the trusted
        rules' run (every bar reproduced by them, no cause); whether it is."""
        if self.causes:
            return False
        self._cache[frozenset()] = self.marks.own(self.log)
        return True

    def value(self, acting: frozenset[str]) -> np.ndarray:
        """Equity per bar of the replay where only the causes in `acting` act.

        With every cause acting on a side whose every bar the diagnosis reproduced, the
        replay is the side's own run: its equity is taken from its fills.
        """
        if self._from_log(acting):
            return self.marks.own(self.log)
        if acting not in self._cache:
            same = self._same.get(acting)
            self._cache[acting] = self.value(same) if same is not None else \
                self._replay(acting)
        return self._cache[acting]

    def _from_log(self, acting: frozenset[str]) -> bool:
        return bool(acting) and acting == frozenset(self.causes) and \
            "unexplained" not in acting

    def plan(self, wanted: list[frozenset[str]]) -> None:
        """Before the replays of `wanted` (in the order they will be asked for): each
        resumes from the earlier one that agrees with it longest (the same rules and
        one-off choices bar by bar), at the first bar they part; one that never parts
        from an earlier one takes its equity."""
        n_bars = len(self.bars.timestamps)
        done: list[frozenset[str]] = []
        for acting in wanted:
            if acting in self._cache or acting in self._runs:
                continue
            run = self._runs[acting] = _Run(self, acting)
            best, at = None, 0
            for earlier in done:
                parts = run.parts_from(self._runs[earlier])
                if parts > at:
                    best, at = earlier, parts
            if at == n_bars:
                self._same[acting] = best
                continue
            if best is not None:
                self._resume[acting] = (best, at)
                self._snapshots.setdefault(best, set()).add(at)
            done.append(acting)

    def _replay_all(self, wanted: list[frozenset[str]]) -> None:
        """Plan the replays of `wanted` (in the order they will be asked for); on a second
        core, those where the earliest cause acts run in a forked child beside the others
        here (the two kinds part at its onset, so they would share little)."""
        wanted = [a for a in dict.fromkeys(wanted) if a not in self._cache]
        first = self.causes[0]
        halves = [a for a in wanted if first in a], [a for a in wanted if first not in a]
        if not all(halves) or workers() < 2:
            self.plan(wanted)
            return

        def run(half: list[frozenset[str]]) -> dict[frozenset[str], np.ndarray]:
            self.plan(half)
            return {acting: self.value(acting) for acting in half}

        for done in both(lambda: run(halves[0]), lambda: run(halves[1])):
            self._cache.update(done)

    def _replay(self, acting: frozenset[str]) -> np.ndarray:
        run = self._runs.get(acting) or _Run(self, acting)
        sim = Simulation(self.bars, self.decisions, run.rules_at, self.initial_cash,
                         Unrecorded())
        replayed = Replayed(self.bars, self.decisions)
        start = 0
        resume = self._resume.get(acting)
        taken = self._taken.get(resume) if resume is not None else None
        if taken is not None:
            start = resume[1]
            sim.restore(taken[0])
            replayed.books = list(taken[1])
        bars = sorted(self._snapshots.get(acting, ()))
        for t in range(start, len(self.bars.timestamps)):
            if bars and bars[0] == t:
                self._taken[(acting, bars.pop(0))] = (sim.snapshot(), list(replayed.books))
            run.step(sim, replayed, t)
        return self.marks.equity(sim.fills, self.initial_cash)

    def amounts(self) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Each cause's share of `v(all) − v(∅)`, at the end and bar by bar."""
        causes = self.causes
        n = len(causes)
        per_bar = {c: np.zeros(len(self.bars.timestamps)) for c in causes}
        if n == 0:
            return {}, per_bar
        if n > EXACT_UP_TO:
            steps = [frozenset(causes[:i]) for i in range(n + 1)]
            self._replay_all([a for a in steps if not self._from_log(a)])
            for cause, previous, current in zip(causes, steps, steps[1:], strict=False):
                per_bar[cause] = self.value(current) - self.value(previous)
        else:
            terms = []
            for cause in causes:
                others = [c for c in causes if c != cause]
                for size in range(n):
                    weight = factorial(size) * factorial(n - size - 1) / factorial(n)
                    terms += [(cause, weight, frozenset(subset))
                              for subset in combinations(others, size)]
            self._replay_all([a for cause, _, base in terms for a in (base | {cause}, base)
                              if not self._from_log(a)])
            for cause, weight, base in terms:
                per_bar[cause] += weight * (self.value(base | {cause}) - self.value(base))
        self._taken.clear()
        return {c: float(v[-1]) for c, v in per_bar.items()}, per_bar


class _Run:
    """One replay's choices bar by bar: the rules, the one-off prices and fees, the bars
    booked as the side booked them, the exits made as its undecided fills made them."""

    def __init__(self, game: Game, acting: frozenset[str]) -> None:
        self.game, self.acting = game, acting
        diagnosis = game.diagnosis
        self.verdicts = diagnosis.verdicts
        states = {}
        for verdict in self.verdicts.values():
            for switch in in_order(verdict.switches):
                if switch.state and diagnosis.cause_of(switch) in acting:
                    states[switch] = max(states.get(switch, switch.since), verdict.bar)
        self.states = states
        self.forced = "unexplained" in acting
        rule = diagnosis.exit_rule
        self.exits = rule is not None and rule.cause in acting and not game.observed.exit_fields
        self.beliefs = [s for s in states if s.state == "belief"]  # acted out on the book
        self._rules: dict[int, Rules] = {}
        self._signatures: list[tuple] = []

    def rules_at(self, t: int) -> Rules:
        rules = self._rules.get(t)
        if rules is None:
            rules = self._rules[t] = self._make_rules(t)
        return rules

    def _make_rules(self, t: int) -> Rules:
        acting = self.acting
        visible, switches = self.game._bar(t)
        rules = self.game.trusted.with_(**{field: value for cause, field, value in visible
                                           if cause in acting})
        for cause, switch in switches:
            if cause in acting:
                rules = switch.apply(rules, t)
        for switch, last in self.states.items():
            if switch.state in ("fees_charged", "fees_logged", "booked_twice_since",
                                "logged_twice_since") \
                    and switch.since <= t <= last:
                rules = switch.apply(rules)
            elif switch.state == "booked_twice" and t == switch.since:
                rules = rules.with_(booking="twice_hidden")
            elif switch.state in ONE_BAR:
                rules = switch.apply(rules, t)
            elif switch.state == "belief" and switch.since <= t <= last:
                rules = switch.apply(rules)
        return rules

    def _overrides(self, t: int) -> dict:
        sized = t not in self.game.diagnosis.unsized
        price, fee = "fill_price" in self.acting, "fee" in self.acting
        return {a: (p if price else None, f if fee else None, sized)
                for a, (p, f) in self.game.observed.overrides.get(t, {}).items()}

    def _forced_at(self, t: int) -> bool:
        verdict = self.verdicts.get(t)
        return self.forced and verdict is not None and verdict.unexplained

    def _exits_at(self, t: int) -> bool:
        return self.exits and t in self.game.diagnosis.undecided

    def signature(self, t: int) -> tuple:
        """Everything bar t of this replay depends on besides the state it starts from."""
        while len(self._signatures) <= t:
            k = len(self._signatures)
            self._signatures.append((
                self.rules_at(k), self._overrides(k) if k in self.game.observed.overrides
                else None, self._forced_at(k), self._exits_at(k),
                tuple(s for s in self.beliefs if s.since <= k <= self.states[s])))
        return self._signatures[t]

    def parts_from(self, other: _Run) -> int:
        """The first bar at which this replay and `other` may differ (every bar: none)."""
        if set(self.beliefs) != set(other.beliefs):  # a belief reads the books from bar 0
            return 0
        n_bars = len(self.game.bars.timestamps)
        for t in range(n_bars):
            if self.signature(t) != other.signature(t):
                return t
        return n_bars

    def step(self, sim: Simulation, replayed: Replayed, t: int) -> None:
        """Bar t of the replay."""
        states = self.states
        if self.beliefs:
            book = sim.book
            replayed.books.append(OwnBook(t, book.cash, dict(book.positions)))
            for switch in self.beliefs:
                if switch.since <= t <= states[switch]:
                    book.history = (*book.history, dict(switch.belief.positions(replayed, t)))
        if self._forced_at(t):
            sim.force(t, [(a, q, p, f) for a, q, p, f in self.game.log.rows.get(t, ())])
        else:
            sim.step(t, self._overrides(t))
        if self._exits_at(t):
            _exit(sim, t, self.game.diagnosis.undecided[t])


def _exit(sim: Simulation, t: int, fills: dict) -> None:
    """The replay's positions in `fills`' assets closed as the side's undecided fills
    closed its own, at their prices and fee rates."""
    for asset, (q, price, fee, _) in sorted(fills.items()):
        held = sim.book.positions.get(asset, 0.0)
        if held and held * q < 0:
            sim.book_fill(t, asset, -held, price, fee * abs(held / q))
