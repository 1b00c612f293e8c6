"""Diagnose one side bar by bar: which rules, from its own book, reproduce its fills.

Before every bar the side's own book is rebuilt from its fills (with position rules, its
open exits too, armed from its own entries: `Oracle.arm`). The oracle (the reference
`Simulation`) then replays that bar from that book under the trusted rules with the
side's visible fields (price point, slippage, fees, rounding: `observe`). If that
reproduces the side's fills, the side did what the trusted rules say from the book it had
(any difference from the other side was propagated from earlier bars). If not, the
hypotheses still alive from earlier bars are tried, then single switches of the
vocabulary, switches on top of the current ones, pairs, and hidden-state changes (a batch
booked twice, fees left out of cash): the first level that reproduces the bar exactly
wins, the simplest first. A bar nothing reproduces is `unexplained` at the assets that
still differ. Faults are piecewise: a hypothesis stays while it keeps reproducing the
side's bars, ends when a later bar refutes it, and may come back as a new event. The
search is in `search.py`, the records it fills in `verdicts.py`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import replace

from engine.gap.belief import Beliefs
from engine.gap.exits import (
    HELD,
    Entries,
    armed_since,
    fires_at_open,
    rule_exits,
    undecided_rule,
)
from engine.gap.fork import both, workers
from engine.gap.logs import FillLog, Key, OwnBook, aggregate
from engine.gap.observe import Observed
from engine.gap.oracle import Entry, Oracle
from engine.gap.search import GIVE_UP, MAX_ALIVE, PERSIST, WARM_UP, WEAK, Search, combine
from engine.gap.verdicts import (
    BarVerdict,
    Diagnosis,
    Hypothesis,
    consequences,
    departures,
    verdicts_of,
)
from engine.gap.vocabulary import (
    ONE_BAR,
    SPANS,
    Switch,
    booked_over_logged,
    charged_share,
    in_order,
    one_sided,
    rule_switches,
)
from engine.progress import progress
from engine.reference import Bars, Book, Rules
from engine.reference.bars import CLOSE, OPEN
from engine.reference.execution import add
from engine.reference.faults import Faults as Hooks
from engine.reference.orders import Order
from engine.reference.rules import COUNTS
from engine.results.compare import Tolerance

SPANS_KEPT = 64  # books a span's moves are kept for (`_rescale`)
BOOKING = Rules()  # a fill booked again, fees as charged, either side
SETTLED = 30  # fills set apart that one rule fits: enough to name it (`settle`)
MIN_FORKED = 16  # bars with several departures worth a forked child (`record_all_needed`)


class Diagnoser(Search):
    """Runs the per-bar diagnosis of one side against the trusted rules."""

    def __init__(self, log: FillLog, bars: Bars, decisions: dict[int, list], trusted: Rules,
                 observed: Observed, tolerance: Tolerance | None = None,
                 label_bars: set[int] | None = None,
                 excused: dict[int, set[str]] | None = None, same_until: int = 0,
                 settle: bool = False) -> None:
        self.log = log
        self.settle = settle  # stop once the fills that answer no decision follow a rule
        self.bars = bars
        self.trusted = trusted
        self.observed = observed
        self.tolerance = tolerance or Tolerance()
        self.label_bars = label_bars or set()
        self.same_until = same_until  # bars before it are the other side's, fill for fill
        self.excused = excused or {}  # bar → assets whose decision is not known there
        self._excused_now: set[str] = set()
        self._last_unexplained = -PERSIST - 1  # the last bar no hypothesis reproduced
        self._rules: dict[tuple, Rules] = {}
        self._failures = 0  # searches in a row that found nothing
        self._start_state: tuple = ({}, (), (), -1)  # the state the start is fitted from
        self.diagnosis_unsized: set[int] = set()  # bars whose one-off prices were not sized
        self._last_guess: tuple[dict, dict] = ({}, {})  # the trusted rules' guess, the fills
        self._set_apart = False  # whether the bar being diagnosed has fills set apart
        self._split: tuple[int, set[str]] = (-1, set())  # a bar's assets with fills set apart
        self._first: tuple[int, tuple] = (-1, ())  # a bar's exits booked before its batch
        self._within: tuple[int, frozenset[str]] = (-1, frozenset())  # or in it, replacing
        # the decision's order of their assets (a risk manager with the last word)
        self.dropped: set[int] = set()  # bars nothing explains that dropped a buy that fit
        self.in_part: dict[int, frozenset[Switch]] = {}  # bars explained but a few fills
        self._closest = 0.0  # how far the closest set of the last failed search was off
        self._failed_far: deque[float] = deque(maxlen=GIVE_UP)  # the trusted rules', there
        self.oracle = Oracle(bars, decisions, log.initial_cash,
                             long_exits=not trusted.position_rules)
        # each side's exits are rebuilt from its entries (an exit rule of its own arms
        # the entries from its first one on)
        self.exits = trusted.position_rules or bool(observed.exit_fields)
        self.armed_from = 0 if trusted.position_rules else observed.exit_since
        visible = trusted.with_(**observed.rules_at(-1))
        self.vocabulary = rule_switches(trusted, visible, observed.rounds)
        self.fill_bars = log.fill_bars
        self.books = list(log.books())
        self.beliefs = Beliefs(log, bars, decisions, self.books, trusted,
                               lambda t: observed.rules_at(t)["point"])
        self._beliefs: dict[frozenset[Switch], tuple[Entries, list[int]]] = {}
        self._warm_starts: dict[tuple, tuple] = {}  # a search's warm-ups (`warmed`)
        self._own_entries: tuple = (None, None)  # the last own book's entries (`entries_at`)
        self._next_settle_check = 0  # fills set apart at which `_settled` next looks
        self._one_sided: dict[Switch, tuple] = {}  # a one-sided booking's sums so far
        self._spans: dict[tuple, tuple] = {}  # a span's moves to a book, booked again
        self._rescaled: dict[tuple, tuple] = {}  # an own book's positions, spans applied

    # Rules and books

    def rules_at(self, t: int, switches: frozenset[Switch]) -> Rules:
        """The trusted rules with the side's visible fields at bar t and `switches`."""
        observed = self.observed
        here = frozenset(s for s in switches if s.state in ONE_BAR and s.since == t)
        key = (observed.price_at(t), observed.fee_at(t), observed.rounding_at(t), switches, here,
               bool(observed.exit_fields) and t >= observed.exit_since)
        rules = self._rules.get(key)
        if rules is None:
            rules = self.trusted.with_(**observed.rules_at(t))
            for switch in sorted(switches, key=lambda s: s.words):
                rules = switch.apply(rules, t)
            self._rules[key] = rules
        return rules

    def book_for(self, own: OwnBook, hypothesis: Hypothesis) -> Book:
        """The book the engine believes it has: its own book plus hidden-state changes (a
        belief's positions are passed as the last batch's, read one batch late)."""
        cash, positions = own.cash, dict(own.positions)
        history = hypothesis.history
        own_positions = True  # the positions are still the own book's
        for switch in in_order(hypothesis.switches):
            if switch.state in ("booked_twice", "booked_twice_executing") \
                    and own.bar > switch.since:
                cash = _booked_again(cash, positions, self.log.rows.get(switch.since, ()))
                own_positions = False
            elif switch.state in ("fees_charged", "fees_logged") and own.bar > switch.since:
                cash += (1.0 - charged_share(switch)) * self._fees(
                    switch.since, own.bar, hypothesis.switches)
            elif switch.state == "fees_once" and own.bar > switch.since:
                cash += self._fees(switch.since, switch.since + 1, hypothesis.switches)
            elif switch.state == "belief":
                history = (*history, dict(self.beliefs.positions(switch, own)))
        spans = sorted((s.since, booked_over_logged(s)) for s in hypothesis.switches
                       if s.state in SPANS and own.bar > s.since and not one_sided(s))
        if spans:
            cash, positions = self._rescale(own, spans, cash, positions, own_positions)
        for switch in hypothesis.switches:
            if switch.state in SPANS and own.bar > switch.since and one_sided(switch):
                cash = self._one_side_again(switch, own.bar, cash, positions)
        return Book(cash, positions, dict(hypothesis.pending), history,
                    hypothesis.unnetted, hypothesis.seen)

    def _fees(self, since: int, until: int, switches: frozenset[Switch]) -> float:
        """The fees of the fills of bars `since` to `until` (excluded) as charged: the
        logged ones, each fill counted once where a switch logs it n times (a span's from
        its first bar, a rule's wherever it is in force)."""
        fees = self.log.fees_before
        total = fees[until] - fees[since]
        for s in switches:
            booking = dict(s.changes).get("booking")
            logged = COUNTS[booking][0] if booking and (s.state in SPANS or not s.state) \
                else 1
            start = s.since if s.state in SPANS else since
            if logged > 1 and start < until:
                total -= (1 - 1 / logged) * (fees[until] - fees[max(start, since)])
        return total

    def _one_side_again(self, switch: Switch, until: int, cash: float,
                        positions: dict[str, float]) -> float:
        """The cash, and `positions` in place, with every sell (or buy) of the bars from
        the switch's onset to `until` (excluded) booked once more, fees as charged."""
        end = bisect_left(self.fill_bars, until)
        found = self._one_sided.get(switch)
        if found is None or found[0] > end:  # the sums so far: fill bars walked, cash, moves
            found = (bisect_left(self.fill_bars, switch.since), 0.0, {})
        walked, spent, moved = found[0], found[1], dict(found[2])
        sells = one_sided(switch) == "sells"
        for t in self.fill_bars[walked:end]:
            spent = _booked_again(spent, moved,
                                  [row for row in self.log.rows[t] if (row[1] < 0) == sells])
        self._one_sided[switch] = (end, spent, moved)
        for asset in sorted(moved):
            after = add(positions.get(asset, 0.0), moved[asset])
            if after:
                positions[asset] = after
            else:
                positions.pop(asset, None)
        return add(cash, spent)

    def _rescale(self, own: OwnBook, spans: list[tuple[int, float]], cash: float,
                 positions: dict[str, float], own_positions: bool = False
                 ) -> tuple[float, dict[str, float]]:
        """The cash and positions with every fill since each span's first bar booked m/n
        times its logged amount (spans that overlap multiply: a row logged twice and
        booked twice counts once). Positions that were the own book's are rescaled once
        per book and spans (the hypotheses of a bar share them)."""
        bounds = [since for since, _ in spans] + [own.bar]
        factor = 1.0
        moves = []
        for (since, f), end in zip(spans, bounds[1:], strict=True):
            factor *= f
            if end == since or factor == 1.0:
                continue
            to = own if end == own.bar else self.books[end]
            extra = factor - 1.0
            key = (since, extra, id(to))
            found = self._spans.get(key)
            if found is None or found[0] is not to:  # (the hypotheses of a bar share it)
                if len(self._spans) > SPANS_KEPT:
                    self._spans.clear()
                then = self.books[since]
                found = self._spans[key] = (
                    to, extra * (to.cash - then.cash),
                    [(asset, extra * (to.positions.get(asset, 0.0)
                                      - then.positions.get(asset, 0.0)))
                     for asset in sorted({*to.positions, *then.positions})])
            cash = add(cash, found[1])
            moves.append(found[2])
        if not moves:
            return cash, positions
        key = (own.bar, tuple(spans))
        if own_positions:
            done = self._rescaled.get(key)
            if done is not None and done[0] is own:
                return cash, dict(done[1])
        for span in moves:
            for asset, moved in span:
                after = add(positions.get(asset, 0.0), moved)
                if after:
                    positions[asset] = after
                else:
                    positions.pop(asset, None)
        if own_positions:
            if len(self._rescaled) > SPANS_KEPT:
                self._rescaled.clear()
            self._rescaled[key] = (own, dict(positions))
        return cash, positions

    def predict(self, own: OwnBook, hypothesis: Hypothesis, switches: frozenset[Switch] | None
                = None, rules: Rules | None = None, first: tuple = ()
                ) -> tuple[dict[str, Key], Book]:
        """Bar `own.bar` replayed under a hypothesis: its fills per asset and the book after
        (`first`: fills (asset, quantity, price, fee) booked before the bar's batch, as the
        engine books any fill)."""
        t = own.bar
        self._excused_now = self.excused.get(t, set())
        rules = rules or self.rules_at(t, hypothesis.switches if switches is None
                                       else switches)
        book = self.book_for(own, hypothesis)
        if not first and self._first[0] == t:
            first = self._first[1]
        for asset, q, p, f in first:
            charged = Hooks.charged_fee(f, rules)
            book.cash = Hooks.cash_after_fee(add(book.cash, -(q * p + charged)), charged, rules)
            book.move(asset, q)
            Hooks.executed(book, (t, asset, q, p, f, -1), rules)
        within = self._within[1] if self._within[0] == t else frozenset()
        for asset in sorted(within & book.pending.keys()):
            order = book.pending[asset]
            book.pending[asset] = Order(order.id, asset, order.created, order.due,
                                        "target_percent", 0.0)
        entries = self.entries_at(own, book, hypothesis.switches)
        if not (hypothesis.pending or hypothesis.unnetted or self._decided(t, rules)
                or entries):
            return {}, Book(own.cash, own.positions, {}, hypothesis.history, (),
                            hypothesis.seen)
        fills, after = self.oracle.step(t, rules, book, self.overrides_at(t), entries)
        if within:  # their exits are set apart, as the bar's other exits are
            fills = {a: key for a, key in fills.items() if a not in within}
        return fills, after

    def entries_at(self, own: OwnBook, book: Book | None = None,
                   switches: frozenset[Switch] = frozenset()) -> list[Entry] | None:
        """The entries of the positions held before bar `own.bar` (None without position
        rules): their exits are armed from the side's own fills. Under `switches` that
        change what the side believes it holds, from the positions in `book` it believes
        and their believed entries (an exit rule of its own acts on its belief)."""
        if not self.exits:
            return None
        believed = self.believed(switches, own.bar) if book is not None else None
        # a long that a booking after its batch turned short keeps its exits where an order
        # of the bar may make it long again
        after_batch = any(s.state in SPANS and not COUNTS[dict(s.changes)["booking"]][2]
                          and booked_over_logged(s) > 1 for s in switches)
        ordered = book.pending if book is not None and after_batch else {}
        if believed is None and not ordered:  # the side's own: one for the whole bar
            if self._own_entries[0] is not own:
                self._own_entries = (own, self._entries(own, own.positions, None, {}))
            return self._own_entries[1]
        positions = book.positions if believed is not None else own.positions
        return self._entries(own, positions, believed, ordered)

    def _entries(self, own: OwnBook, positions: dict[str, float], believed: Entries | None,
                 ordered: dict) -> list[Entry] | None:
        if not positions:
            return None
        out = []
        longs_only = not self.trusted.position_rules  # an exit rule of the side's own
        # closes the longs it exited (and those an order of the bar may make long again)
        for asset in sorted(positions):
            found = believed.entry(asset, own.bar) if believed is not None else \
                self.log.entry(asset, own.bar)
            if found is not None and found[0] >= self.armed_from and (
                    positions[asset] > 0 or not longs_only or asset in ordered):
                out.append((asset, *found))
        return sorted(out, key=lambda e: (e[1], e[0])) or None

    def believed(self, switches: frozenset[Switch], until: int | None = None
                 ) -> Entries | None:
        """The entries of the positions the side believes it holds under `switches`,
        walked over its fills up to bar `until` (None when they leave its positions as
        booked: its own entries are those)."""
        states = frozenset(s for s in switches if s.state in POSITION_STATES)
        if not states:
            return None
        if states not in self._beliefs:  # before its first switch, the belief is the book
            since = min(s.since for s in states)
            self._beliefs[states] = (self._walk(frozenset(), since).before(since), [since])
        return self._walk(states, until)

    def _walk(self, states: frozenset[Switch], until: int | None) -> Entries:
        entries, walked = self._beliefs.setdefault(states, (Entries(), [0]))
        hypothesis = Hypothesis(states)
        last = self.log.n_bars if until is None else until
        for t in self.fill_bars[bisect_left(self.fill_bars, walked[0]):
                                bisect_left(self.fill_bars, last)]:
            start = self.books[t]
            believed = self.book_for(start, hypothesis).positions
            factor, batched = _factor(states, t), _factor(states, t, after_batch=True)
            for (_, asset, before, after, price) in self.log.moves[t]:
                moved = before - start.positions.get(asset, 0.0)
                held = believed.get(asset, 0.0) + factor * moved
                entries.fill(t, asset, held, after - before, price)
                if batched != factor and entries.entry(asset, t + 1) is not None:
                    # a fill after the bar's batch (an exit) sees the batch booked again
                    entries.fill(t, asset, believed.get(asset, 0.0) + batched * moved,
                                 after - before, price, closes_only=True)
            if t + 1 < len(self.books):
                then = self.book_for(self.books[t + 1], hypothesis).positions
                for asset in dict.fromkeys(a for _, a, *_ in self.log.moves[t]):
                    entries.after(t, asset, then.get(asset, 0.0))
        walked[0] = max(walked[0], last)
        return entries

    def overrides_at(self, t: int) -> dict | None:
        """The side's one-off prices and fees at bar t, as the oracle takes them."""
        found = self.observed.overrides.get(t)
        if found and self._split[0] == t:
            found = {a: v for a, v in found.items() if a not in self._split[1]}
        if not found:
            return None
        sized = t not in self.diagnosis_unsized
        return {asset: (price, fee, sized) for asset, (price, fee) in found.items()}

    def _decided(self, t: int, rules: Rules) -> bool:
        """Whether bar t acts on a decision under `rules` (else it has nothing to fill)."""
        decisions = self.oracle.decisions
        return (t - rules.delay + 1 if rules.delay > 1 else t) in decisions

    def distance(self, predicted: dict[str, Key], actual: dict[str, Key],
                 wrong: set[str]) -> float:
        """How far a prediction is from the fills, over the assets it gets wrong: a
        missing or extra fill counts 1, a quantity its relative error (at most 1), the
        number of rows, the price and the fee a quarter each."""
        total = 0.0
        for asset in sorted(wrong):
            p, a = predicted.get(asset), actual.get(asset)
            if p is None or a is None:
                total += 1.0
                continue
            total += min(1.0, abs(p[0] - a[0]) / max(abs(p[0]), abs(a[0]), 1e-12))
            total += 0.25 * ((p[3] != a[3]) + (not self.tolerance.same(p[1], a[1]))
                             + (not self.tolerance.same(p[2], a[2])))
        return total

    def mismatches(self, predicted: dict[str, Key], actual: dict[str, Key]) -> set[str]:
        """Assets whose fill differs (of the bar last predicted; excused assets left out)."""
        same = self.tolerance.same
        out = set()
        for asset in predicted.keys() | actual.keys():
            p, a = predicted.get(asset), actual.get(asset)
            if p is not None and a is not None and p[3] == a[3] and p[0] - a[0] == 0.0 \
                    and p[1] - a[1] == 0.0 and p[2] - a[2] == 0.0:
                continue  # no difference at all: the same (NaN or ∞ fall through)
            if p is None or a is None or p[3] != a[3] or not (
                    same(p[0], a[0]) and same(p[1], a[1]) and same(p[2], a[2])):
                out.add(asset)
        return out - self._excused_now

    # The run

    def run(self) -> Diagnosis:
        """Every bar's verdict. Where several hypotheses explain the same bars, the one
        that keeps explaining the longest is the verdict for all of them."""
        diagnosis = Diagnosis(self.trusted)
        base = Hypothesis(frozenset())
        recent: deque[tuple[OwnBook, tuple]] = deque(maxlen=WARM_UP)
        states: dict[int, tuple[list[Hypothesis], bool, frozenset[str]]] = {}
        labels: dict[int, tuple[OwnBook, dict, tuple]] = {}
        beliefs: dict[tuple[int, str], Entries | None] = {}  # an exit's belief
        earliers: dict[int, tuple] = {}  # bar → its book and the bars before (replays)
        for own in self.books[: self.same_until]:  # as the other side did: nothing to tell
            recent.append((own, base.state()))
            self.advance_actual(base, own)
            states[own.bar] = ([], False, frozenset())
        alive = [Hypothesis(start, *base.state()) for start in self.fit_start(base.state())]
        remaining = self.books[self.same_until:]
        for own in progress(remaining, total=len(remaining), what="bars diagnosed",
                            unit="bar"):
            t = own.bar
            actual = self.log.by_bar.get(t, {})
            base_state = base.state()
            predicted, after = self.predict(own, base)
            missed = self.mismatches(predicted, actual)
            if missed and any(p is not None for p, _ in self.observed.overrides.get(t, {}
                                                                               ).values()):
                predicted, after, missed = self.size_at_model_price(own, base_state, actual,
                                                                    (predicted, after, missed))
            undecided = self.undecided(own, base, predicted, actual, alive) if missed else {}
            if missed and not undecided and self.observed.exits_at_open:
                first, undecided = self.exits_first(own, base, actual, alive)
                if undecided:
                    self._first = (t, first)  # every replay of the bar books them first
                    predicted, after = self.predict(own, base)
            if undecided:  # set apart before sizing is checked: no hypothesis answers them
                diagnosis.undecided[t] = {a: key for a, (key, *_) in undecided.items()}
                diagnosis.exit_entries.update({(t, a): entry for a, (_, entry, _, _)
                                               in undecided.items()})
                beliefs.update({(t, a): belief for a, (_, _, _, belief)
                                in undecided.items()})
                actual = {a: k for a, k in actual.items() if a not in undecided}
                actual.update({a: rest for a, (_, _, rest, _) in undecided.items() if rest})
                self._split = (t, set(undecided))  # a one-off price there was an exit's
                if any(a in self.observed.overrides.get(t, {}) for a in undecided):
                    predicted, after = self.predict(own, base)
                missed = self.mismatches(predicted, actual)
                if self.settle and self._settled(diagnosis, beliefs):
                    break
            self._last_guess = (predicted, actual)
            self._set_apart = bool(undecided)
            if missed or undecided:
                self.advance_actual(base, own)
            else:
                base.advance(after)
            survivors = []
            carried: tuple | None = None  # the closest of the ones this bar refuted
            for hypothesis in alive:
                guess, book = self.predict(own, hypothesis)
                wrong = self.mismatches(guess, actual)
                if wrong:
                    hypothesis.died = t
                    far = self.distance(guess, actual, wrong)
                    if carried is None or far < carried[0]:
                        carried = (far, hypothesis, wrong)
                else:
                    self.advance(hypothesis, own, book)
                    survivors.append(hypothesis)
            if not missed and not survivors and not undecided \
                    and any(h.switches for h in alive):
                survivors = self.going_on(own, actual, alive, base)
            unexplained: frozenset[str] = frozenset()
            if (not missed or survivors) and (actual or predicted):  # a bar with fills
                self._failures = 0  # explained (a bar with none tells nothing)
            if missed and not survivors:
                found, best_missed, best = self.search(own, actual, alive, recent, missed)
                if found:
                    survivors = found[:MAX_ALIVE]
                else:
                    if self.dropped_buys(own, base_state, self._last_guess[0], actual,
                                         missed):
                        self.dropped.add(t)
                    unexplained = frozenset(best_missed)
                    if best is not None:
                        survivors = [best]
                    if carried is not None and (best is None or carried[0] <= self._closest):
                        self.advance_actual(carried[1], own)  # it goes on from the side's book
                        survivors, unexplained = [carried[1]], frozenset(carried[2])
                    self.credit_in_part(t, survivors, self._last_guess, missed,
                                        carried[0] if survivors and carried is not None
                                        and survivors[0] is carried[1] else self._closest,
                                        unexplained, actual)
            alive = survivors
            states[t] = (list(alive), bool(missed), unexplained)
            if t in self.label_bars:
                self.record_trusted(diagnosis, own, base_state, predicted)
                labels[t] = (own, {id(h): h.before for h in alive}, tuple(recent))
            elif any(h.switches for h in alive) and self._decided(t, self.trusted):
                # a decision's bar the trusted rules reproduce too (by chance: one fault
                # undoes another's change there) may still need a switch the others do not
                labels[t] = (own, {id(h): h.before for h in alive}, tuple(recent))
            earliers[t] = (own, tuple(recent))
            recent.append((own, base_state))
        diagnosis.verdicts, chosen = verdicts_of(states)
        for t, switches in self.in_part.items():
            verdict = diagnosis.verdicts[t]
            if verdict.switches == switches and verdict.unexplained:
                diagnosis.verdicts[t] = replace(verdict, partial=True)
        diagnosis.verdicts = self.backdated(diagnosis.verdicts, earliers)
        diagnosis.consequences = consequences(diagnosis.verdicts, self.trusted)
        if diagnosis.undecided:
            diagnosis.exit_rule = undecided_rule(diagnosis.undecided, diagnosis.exit_entries,
                                                 self.bars, self.long_of(beliefs),
                                                 self.log.cost_basis)
            entry_of = self.entries_of(chosen)
            diagnosis.exit_rule = armed_since(diagnosis.exit_rule, self.log, self.bars,
                                              entry_of)
            diagnosis.rule_exits = rule_exits(diagnosis.exit_rule, self.log, self.bars,
                                              entry_of)
        diagnosis.unsized = set(self.diagnosis_unsized)
        self.record_all_needed(diagnosis, [
            (own, diagnosis.verdicts[t].switches, earlier)
            for t, (own, before, earlier) in labels.items()
            if chosen.get(t) is not None and id(chosen[t]) in before
            and (t in self.label_bars or not diagnosis.verdicts[t].evidenced)])
        while True:  # a bar made unexplained may leave another switch weak
            verdicts = self.without_weak(diagnosis)
            if verdicts is diagnosis.verdicts:
                break
            diagnosis.verdicts = verdicts
        return diagnosis

    def going_on(self, own: OwnBook, actual: dict[str, Key], refuted: list[Hypothesis],
                 base: Hypothesis) -> list[Hypothesis]:
        """At a bar the trusted rules reproduce but that refuted the hypotheses alive: those
        plus one switch that reproduce it and go on to reproduce more of the bars after it
        than the trusted rules do (a fault that undoes another's change at one bar, the
        other going on, beats the other ending there and beginning again)."""
        t = own.bar
        bar_after = Hypothesis(frozenset(), *base.state())
        floor = self.persistence(bar_after, t)
        singles = self.vocabulary + self.state_switches(t)
        out = []
        for hypothesis in refuted:
            if not hypothesis.switches:
                continue
            for switch in singles:
                switches = combine(hypothesis.switches, switch)
                if switches == hypothesis.switches:
                    continue
                probe = Hypothesis(switches, *hypothesis.state())
                guess, book = self.predict(own, probe)
                if self.mismatches(guess, actual):
                    continue
                self.advance(probe, own, book)
                probe.lasted = self.persistence(probe, t)
                if probe.lasted > floor:
                    out.append(probe)
        return sorted(out, key=lambda h: (-h.lasted, h.size))[:MAX_ALIVE]

    def _settled(self, diagnosis: Diagnosis, beliefs: dict) -> bool:
        """Whether the fills set apart so far are enough to name the rule they follow: at
        least `SETTLED` of them, every one fitted by one replayable rule. A first pass that
        only has to find that rule (the pass after it replays it) can stop there."""
        count = sum(len(by_asset) for by_asset in diagnosis.undecided.values())
        if count < SETTLED or count < self._next_settle_check:
            return False
        self._next_settle_check = count + SETTLED
        rule = undecided_rule(diagnosis.undecided, diagnosis.exit_entries, self.bars,
                              self.long_of(beliefs), self.log.cost_basis)
        return bool(rule.fields)

    def undecided(self, own: OwnBook, base: Hypothesis, predicted: dict[str, Key],
                  actual: dict[str, Key], alive: list[Hypothesis]
                  ) -> dict[str, tuple[Key, tuple[int, float] | None, Key | None,
                                       Entries | None]]:
        """The bar's fills that answer no decision, each with the entry of the position it
        closes, the asset's other fills at the bar (the decision's) and the belief it was
        read against (None: the side's own book). At a bar where none
        acts and no order is open: fills that only reduce positions the side holds, or
        believes it holds under a hypothesis alive (a rule A does not have exits what the
        engine believes, at the entries it believes), all or none. At a decision's bar
        with no order open: fills that each close a whole believed position, all or none.
        At any other bar: such fills at a price no market order fills at in the bar (a
        level), after the decision's own fills of the asset (unless a rule fitted to them
        replays them). A fill of the whole of one belief is read against that belief."""
        t = own.bar
        if self.trusted.position_rules:
            return {}
        quiet = not (predicted or any(h.pending or h.unnetted for h in (base, *alive)))
        decided = self._decided(t, self.rules_at(t, frozenset()))
        beliefs = [(own.positions, None), *((self.book_for(own, h).positions, h)
                                             for h in alive)]
        out = {}
        for asset, key in actual.items():
            rest: Key | None = None
            if not quiet and self.observed.exit_fields:
                continue  # the rule fitted to them replays them
            if not quiet:  # its rows at a level, after the decision's own (the rest)
                rows = [r for r in self.log.rows.get(t, ()) if r[0] == asset]
                level = [r[1] < 0 and not self._at_market(t, asset, r[1:]) for r in rows]
                if not any(level):
                    continue
                key = aggregate([r for r, x in zip(rows, level, strict=True) if x])[asset]
                rest = aggregate([r for r, x in zip(rows, level, strict=True) if not x]
                                 ).get(asset)
            q, before = key[0], rest[0] if rest else 0.0
            fits = [(held.get(asset, 0.0) + before, h) for held, h in beliefs
                    if q * (held.get(asset, 0.0) + before) < 0
                    and abs(q) <= abs(held.get(asset, 0.0) + before) * (1 + HELD)]
            whole = [(held, h) for held, h in fits if abs(abs(q) - abs(held)) <= HELD * abs(q)]
            if quiet and not (whole if decided else fits):
                return {}
            if not fits:
                continue
            _, h = (whole or fits)[0]
            believed = self.believed(h.switches, t) if h is not None else None
            out[asset] = (key, believed.entry(asset, t) if believed is not None
                          else self.log.entry(asset, t), rest, believed)
        if quiet and decided and out and self.answered_early(own, base, alive, actual):
            return {}
        return out

    def answered_early(self, own: OwnBook, base: Hypothesis, alive: list[Hypothesis],
                       actual: dict[str, Key]) -> bool:
        """Whether a decision's bar's fills are all that decision's, filled before the
        trusted rules fill them (an earlier timing on top of the side's book or a
        hypothesis alive reproduces the bar): closes that answer a decision early."""
        early = [s for s in self.vocabulary if s.cause in ("look_ahead", "timing")
                 and dict(s.changes).get("delay", self.trusted.delay) < self.trusted.delay]
        for hypothesis in (base, *alive):
            for switch in early:
                guess, _ = self.predict(own, hypothesis, combine(hypothesis.switches, switch))
                if not self.mismatches(guess, actual):
                    return True
        return False

    def exits_first(self, own: OwnBook, base: Hypothesis, actual: dict[str, Key],
                    alive: list[Hypothesis]) -> tuple[tuple, dict]:
        """At a bar with orders due, of a side whose exits fill at the next open once a close
        passed their level: the whole positions sold at the open that the rule exits there,
        before the batch, which is then sized from the book they left (a risk manager's
        market orders handled before the rebalance's), unless a hypothesis alive
        reproduces the bar as it is. Returns them as fills booked first and as
        `undecided` returns them (none when the rule exits nothing here)."""
        t = own.bar
        if self.trusted.position_rules or not any(h.pending for h in (base, *alive)):
            return (), {}
        rows = self.log.rows.get(t, ())
        row = self.bars.rows[t]
        exits = tuple(r for r in rows if r[1] < 0 and r[0] in row
                      and own.positions.get(r[0], 0.0) > 0
                      and abs(r[1] + own.positions[r[0]]) <= HELD * abs(r[1])
                      and abs(r[2] - row[r[0]][OPEN]) <= 1e-9 * abs(r[2])
                      and fires_at_open(self.observed.exits_at_open, self.bars, t, r[0],
                                        self.log.entry(r[0], t), self.log.cost_basis))
        if not exits or any(not self.mismatches(self.predict(own, h)[0], actual)
                            for h in alive):
            return (), {}
        rest = {r[0]: aggregate([x for x in rows if x[0] == r[0] and x is not r]).get(r[0])
                for r in exits}
        sold = {r[0] for r in exits if rest[r[0]] is None}
        if sold == {r[0] for r in exits} and not self._reproduced(own, base, actual, alive,
                                                                  exits, sold):
            self._within = (t, frozenset(sold))
            if self._reproduced(own, base, actual, alive, (), sold):
                return (), {r[0]: (aggregate([r])[r[0]], self.log.entry(r[0], t), None, None)
                            for r in exits}
            self._within = (-1, frozenset())
        return exits, {r[0]: (aggregate([r])[r[0]], self.log.entry(r[0], t), rest[r[0]], None)
                       for r in exits}

    def _reproduced(self, own: OwnBook, base: Hypothesis, actual: dict[str, Key],
                    alive: list[Hypothesis], first: tuple, exited: set[str]) -> bool:
        """Whether the bar's fills other than the exits of `exited` come out of the trusted
        rules or a hypothesis alive, the exits booked `first` (before the batch)."""
        rest = {a: k for a, k in actual.items() if a not in exited}
        for hypothesis in (base, *alive):
            predicted = self.predict(own, hypothesis, first=first)[0]
            if not self.mismatches(predicted, rest):
                return True
        return False

    def _at_market(self, t: int, asset: str, key: Key) -> bool:
        """Whether a fill is at a price market orders fill at in bar t: its open or close,
        as they are or moved by the side's slippage."""
        row = self.bars.rows[t].get(asset)
        if row is None:
            return True
        slip = self.observed.price.slippage * (1.0 if key[0] > 0 else -1.0)
        return any(abs(key[1] - p * m) <= 1e-9 * abs(p) for p in (row[OPEN], row[CLOSE])
                   for m in (1.0, 1.0 + slip))

    def long_of(self, beliefs: dict[tuple[int, str], Entries | None]):
        """Whether the position an exit at bar t closed was believed long before and after
        bar k, in the belief the exit was read against."""
        def long(t: int, asset: str, k: int) -> bool:
            belief = beliefs.get((t, asset))
            if belief is None:
                held = (self.books[k].positions, self.books[min(k + 1, len(self.books) - 1)]
                        .positions)
                return all(p.get(asset, 0.0) > 0 for p in held)
            return belief.position(asset, k) > 0 and belief.position(asset, k + 1) > 0
        return long

    def entries_of(self, chosen: dict[int, Hypothesis]):
        """The entries a fill at bar t may close: the side's own, and the believed ones
        under the hypothesis chosen at t."""
        def entry_of(asset: str, t: int) -> list[tuple[int, float]]:
            found = [self.log.entry(asset, t)]
            hypothesis = chosen.get(t)
            believed = self.believed(hypothesis.switches, t) if hypothesis else None
            if believed is not None:
                found.append(believed.entry(asset, t))
            return [e for e in found if e is not None]
        return entry_of

    def backdated(self, verdicts: dict[int, BarVerdict], earliers: dict[int, tuple]
                  ) -> dict[int, BarVerdict]:
        """One rule from its first bar: where a rule switch replaced another that sets the
        same fields (a cash check for another cash check) after bars that could not tell
        them apart, and the replacement reproduces every bar of the one it replaced and
        of the bars between, it was the side's rule from the first one's first bar (one
        fault at its onset, not two)."""
        out = dict(verdicts)
        order = sorted(out)
        first: dict[Switch, int] = {}
        for t in order:
            for switch in out[t].switches:
                if not switch.state and out[t].evidenced and not out[t].unexplained:
                    first.setdefault(switch, t)
        for later, since in sorted(first.items(), key=lambda item: item[1]):
            for replaced, start in sorted(first.items(), key=lambda item: item[1]):
                if start >= since or replaced.cause != later.cause \
                        or not replaced.fields & later.fields \
                        or replaced in out[since].switches:
                    continue
                span = [t for t in order if start <= t < since]
                swapped = {t: frozenset(s for s in out[t].switches if s != replaced
                                        and not s.fields & later.fields) | {later}
                           for t in span}
                if all(out[t].unexplained or self._reproduces(earliers[t], swapped[t])
                       for t in span if t in earliers):
                    for t in span:
                        v = out[t]
                        out[t] = BarVerdict(t, swapped[t], v.evidenced, v.unexplained,
                                            v.refuted - {replaced}, v.partial)
                    first[later] = start
        return out

    def _reproduces(self, earlier: tuple, switches: frozenset[Switch]) -> bool:
        """Whether `switches` reproduce the side's bar from its book (`earlier`: the bar's
        book and the bars before it, whose orders it queues)."""
        own, recent = earlier
        actual = self.log.by_bar.get(own.bar, {})
        probe = Hypothesis(switches, *(recent[0][1] if recent else ({}, (), (), -1)))
        for before, _ in recent:
            self.advance_actual(probe, before)
        guess, _ = self.predict(own, probe)
        return not self.mismatches(guess, actual)

    def without_weak(self, diagnosis: Diagnosis) -> dict[int, BarVerdict]:
        """Rule switches that are coincidences of an engine the vocabulary does not
        describe (a lost order that a stricter cash check, or a batch booked twice, happens
        to fit), once the side has bars nothing explains: their bars are unexplained where
        they were needed. A coincidence is
        - a rule switch or a one-off event (a batch booked twice) that explains at most
          `WEAK` bars, all within `PERSIST` fill bars of a bar nothing explains;
        - a booking twice of one side only (every sell, or every buy): beside bars nothing
          explains it is a fit to the outside fault (a lost buy leaves the cash a second
          booking of the buys would take), not a cause of its own;
        - a cash check within `PERSIST` fill bars of a bar where the side dropped a buy
          that fit its own cash (a buy the trusted rules fill in full from its book): the
          side drops buys for another reason, which the check fits only where the buy
          dropped happened not to fit;
        - a rule switch credited only at bars explained in part, and needed at fewer than
          half of the bars it is in force at: it fits the rest of a few bars an outside
          fault acts on, not the side's rule."""
        verdicts = diagnosis.verdicts
        lost = sorted(t for t, v in verdicts.items() if v.unexplained)
        if not lost:
            return verdicts
        spans: dict[Switch, list[int]] = {}
        for t, verdict in sorted(verdicts.items()):
            for switch in verdict.switches:
                if (not switch.state or switch.state in ONE_OFF or one_sided(switch)) \
                        and diagnosis.touched(switch, t):
                    spans.setdefault(switch, []).append(t)

        def near(t: int, bars: list[int]) -> bool:
            rank = bisect_left(self.fill_bars, t)
            return any(abs(bisect_left(self.fill_bars, u) - rank) <= PERSIST for u in bars)

        weak = {switch for switch, bars in spans.items() if len(bars) <= WEAK
                and all(near(t, lost) for t in bars)}
        weak |= {switch for switch, bars in spans.items() if not switch.state
                 and all(verdicts[t].partial for t in bars) and self._seldom_needed(
                     diagnosis, switch)}
        weak |= {switch for switch in spans if one_sided(switch)}
        dropped = sorted(self.dropped)
        weak |= {switch for switch, bars in spans.items() if switch.cause == "cash_limit"
                 and not switch.state and any(near(t, dropped) for t in bars)}
        if not weak:
            return verdicts
        out = dict(verdicts)
        for switch in weak:
            for t in spans[switch]:
                out[t] = self._taken_out(diagnosis, out[t], switch)
        return out

    @staticmethod
    def _seldom_needed(diagnosis: Diagnosis, switch: Switch) -> bool:
        """Whether `switch` changes a fill at fewer than half of the bars the trusted rules
        miss where it is in the verdict (and its need was worked out)."""
        bars = [t for t, v in diagnosis.verdicts.items() if v.evidenced
                and switch in v.switches and t in diagnosis.needed]
        return 2 * sum(1 for t in bars if switch in diagnosis.needed[t]) < len(bars)

    def _taken_out(self, diagnosis: Diagnosis, verdict: BarVerdict, switch: Switch
                   ) -> BarVerdict:
        """Bar `verdict.bar`'s verdict with a coincidence taken out: unexplained at the fills
        that differ without it (the other switches still reproduce the rest), or at every
        fill when that was not worked out."""
        t = verdict.bar
        everything = frozenset(self.log.by_bar.get(t) or self.bars.rows[t])
        without = diagnosis.left_out(t).get(switch)
        kept = verdict.switches - {switch}
        if without is None or not kept:
            return BarVerdict(t, kept, verdict.evidenced, everything, verdict.refuted)
        self._excused_now = self.excused.get(t, set())
        wrong = frozenset(self.mismatches(without, self.log.by_bar.get(t, {})))
        return BarVerdict(t, kept, verdict.evidenced, (wrong | verdict.unexplained)
                          or everything, verdict.refuted, partial=bool(wrong))

    def credit_in_part(self, t: int, survivors: list[Hypothesis], last_guess: tuple,
                       missed: set[str], far: float, wrong: frozenset[str],
                       actual: dict[str, Key]) -> None:
        """A bar nothing reproduces, whose closest set is off by less than half of what
        the trusted rules miss and by at least a whole fill less, and only at fills the
        side never made (orders it lost, not fills of another size): that set
        explains the bar but those fills (a fault outside the vocabulary touching a few
        fills beside one in it: the bar's verdict is unexplained there, the set's switches
        still count where they reproduce)."""
        if not survivors or not survivors[0].switches or not wrong \
                or any(asset in actual for asset in wrong):
            return
        trusted = self.distance(*last_guess, missed)
        if trusted - far >= 1.0 and far <= trusted / 2:
            if survivors[0].switches not in self.in_part.values():
                self._failures = 0  # a new explanation: the search goes on in full
            self.in_part[t] = survivors[0].switches

    def dropped_buys(self, own: OwnBook, base_state: tuple, predicted: dict[str, Key],
                     actual: dict[str, Key], missed: set[str]) -> set[str]:
        """The buys the side's log lacks at a bar nothing explains that the trusted rules
        fill in full from its book (the same without any cash check): buys that fit."""
        buys = {a for a in missed if a not in actual and predicted.get(a, (0.0,))[0] > 0}
        if not buys:
            return set()
        t = own.bar
        loose = self.rules_at(t, frozenset()).with_(cash_policy="allow_negative")
        free, _ = self.predict(own, Hypothesis(frozenset(), *base_state), rules=loose)
        return {a for a in buys if a in free
                and self.tolerance.same(free[a][0], predicted[a][0])}

    def size_at_model_price(self, own: OwnBook, base_state: tuple, actual: dict[str, Key],
                            sized: tuple) -> tuple:
        """Whether the bar's one-off prices were only where the orders filled (sized at the
        price model): kept if that reproduces more of the bar."""
        t = own.bar
        self.diagnosis_unsized.add(t)
        predicted, after = self.predict(own, Hypothesis(frozenset(), *base_state))
        missed = self.mismatches(predicted, actual)
        if len(missed) < len(sized[2]):
            return predicted, after, missed
        self.diagnosis_unsized.discard(t)
        return sized

    def advance(self, hypothesis: Hypothesis, own: OwnBook, book: Book) -> None:
        """Move a hypothesis that reproduced bar `own.bar` past it: to the book it predicted,
        or, where fills were set apart as answering no decision, with the side's fills
        booked (the orders it queues there are decided after those exits)."""
        if self._set_apart:
            self.advance_actual(hypothesis, own)
        else:
            hypothesis.advance(book)

    def advance_actual(self, hypothesis: Hypothesis, own: OwnBook,
                       rules: Rules | None = None) -> None:
        """Move a hypothesis past bar `own.bar` with the side's actual fills booked, so
        that the orders it queues there are decided from the book the side really had."""
        t = own.bar
        rules = rules or self.rules_at(t, hypothesis.switches)
        hypothesis.advance(self.oracle.force(t, rules, self.book_for(own, hypothesis),
                                             self.log.rows.get(t, [])))

    def record_trusted(self, diagnosis: Diagnosis, own: OwnBook,
                       base_state: tuple, predicted: dict[str, Key]
                       ) -> None:
        """What the pure trusted rules would have filled at this bar from the side's book.

        `predicted` is the trusted rules' guess with the side's visible fields: the same
        as the pure trusted rules' when nothing visible departs at this bar.
        """
        t = own.bar
        if self.rules_at(t, frozenset()) == self.trusted and t not in self.observed.overrides:
            diagnosis.trusted_fills[t] = predicted
        else:
            plain = Hypothesis(frozenset(), *base_state)
            book = self.book_for(own, plain)
            guess, _ = self.oracle.step(t, self.trusted, book, None,
                                        self.entries_at(own, book))
            diagnosis.trusted_fills[t] = guess

    def record_all_needed(self, diagnosis: Diagnosis,
                          bars: list[tuple[OwnBook, frozenset[Switch], tuple]]) -> None:
        """`record_needed` at each of `bars` (own book, the verdict's switches, the bars
        before). The bars are independent: on a second core, half of those with several
        departures (each replayed without one) are worked out in a forked child."""
        several = [b for b in bars if len(self.elements(b[0].bar, b[1])) > 1]
        if len(several) < 2 * MIN_FORKED or workers() < 2:
            for own, switches, earlier in bars:
                self.record_needed(diagnosis, own, switches, earlier)
            return

        def part(chosen: list) -> dict[int, tuple]:
            for own, switches, earlier in chosen:
                self.record_needed(diagnosis, own, switches, earlier)
            return {own.bar: (diagnosis.without.get(own.bar), diagnosis.needed.get(own.bar),
                              own.bar in diagnosis.by_chance) for own, _, _ in chosen}

        forked, _ = both(lambda: part(several[::2]), lambda: part(several[1::2]))
        for t, (without, needed, by_chance) in forked.items():  # the child's, here too
            if without is not None:
                diagnosis.without[t] = without
            if needed is not None:
                diagnosis.needed[t] = needed
            if by_chance:
                diagnosis.by_chance.add(t)
        done = {own.bar for own, _, _ in several}
        for own, switches, earlier in bars:
            if own.bar not in done:
                self.record_needed(diagnosis, own, switches, earlier)

    def record_needed(self, diagnosis: Diagnosis, own: OwnBook, switches: frozenset[Switch],
                      earlier: tuple) -> None:
        """The departures of the bar's verdict that change some fill there: each one left
        out in turn (when there are several), and the fills without it. Leaving a switch
        out replays the bars before too (`earlier`), since orders sized at a decision were
        queued there."""
        t = own.bar
        self._excused_now = self.excused.get(t, set())
        elements = self.elements(t, switches)
        actual = self.log.by_bar.get(t, {})
        evidenced = diagnosis.verdicts[t].evidenced
        if not evidenced and t not in self.label_bars:
            diagnosis.by_chance.add(t)
        elif len(elements) < 2:
            if elements and evidenced:  # the one departure from the trusted rules
                diagnosis.needed[t] = set(elements)
            return
        if not elements:
            return
        out = {}
        for element in elements:
            kept = frozenset(s for s in switches if s != element)
            probe = Hypothesis(kept, *(earlier[0][1] if earlier else ({}, (), (), -1)))
            for before, _ in earlier:
                self.advance_actual(probe, before,
                                    self.rules_without(before.bar, switches, element))
            self._excused_now = self.excused.get(t, set())
            book = self.book_for(own, probe)
            out[element], _ = self.oracle.step(t, self.rules_without(t, switches, element),
                                               book, self.overrides_at(t),
                                               self.entries_at(own, book, kept))
        diagnosis.without[t] = out
        self._excused_now |= diagnosis.verdicts[t].unexplained  # a bar explained in part
        diagnosis.needed[t] = {e for e, fills in out.items()
                               if self.mismatches(fills, actual)}

    def elements(self, t: int, switches: frozenset[Switch]) -> list[Switch | str]:
        return departures(t, switches, self.observed, self.trusted)

    def rules_without(self, t: int, switches: frozenset[Switch], element: Switch | str
                      ) -> Rules:
        kept = frozenset(s for s in switches if s != element)
        rules = self.rules_at(t, kept)
        if element == "exit_rule":
            return rules.with_(**{name: getattr(self.trusted, name)
                                  for name, _ in self.observed.exit_fields})
        if element == "fees":
            return rules.with_(fees=self.trusted.fees, per_share=self.trusted.per_share,
                               min_fee=self.trusted.min_fee, fixed_fee=self.trusted.fixed_fee)
        if isinstance(element, str):
            return rules.with_(**{element: getattr(self.trusted, element)})
        return rules



def _booked_again(cash: float, positions: dict[str, float], rows) -> float:
    """The cash, and `positions` in place, with the fills `rows` (asset, quantity, price,
    fee) booked once more, fees as charged (as the reference books a fill again)."""
    book = Book(cash, positions)
    for asset, q, p, f in rows:
        Hooks.book_again(book, (-1, asset, q, p, f, -1), BOOKING)
    return book.cash

ONE_OFF = {"booked_twice", *ONE_BAR}  # hidden-state events of one bar
POSITION_STATES = {"booked_twice", "booked_twice_executing", *SPANS}


def _factor(states: frozenset[Switch], t: int, after_batch: bool = False) -> float:
    """What the side believes a fill of bar t moved a position by, over what it logged:
    2 for a fill booked twice as it executes, ½ for one logged twice (else 1: a fill booked
    twice after its batch moves the belief only once the batch is over; `after_batch`:
    as a fill after the batch, an exit, sees it)."""
    factor = 1.0
    for s in states:
        if s.state in SPANS and t >= s.since and not one_sided(s):
            logged, _, executing = COUNTS[dict(s.changes)["booking"]]
            if executing or logged > 1 or after_batch:
                factor *= booked_over_logged(s)
        elif s.state == "booked_twice_executing" and t == s.since:
            factor *= 2.0
    return factor
