"""The search for the switches that reproduce a side's bar, part of `Diagnoser`.

Tried in order: the hypotheses alive from earlier bars, single switches, switches on top
of the current ones, pairs of the ones that helped, a beam over larger sets, hidden-state
changes begun at a recent fill bar and the belief shapes (`belief.py`); the first level
that reproduces the bar exactly wins. The side's first fill bars are fitted first
(`fit_start`). Budgets bound the work at a bar nothing explains.
"""

from __future__ import annotations

from collections import deque

from engine.gap.logs import Key, OwnBook
from engine.gap.verdicts import Hypothesis
from engine.gap.vocabulary import (
    FEE_SHARES,
    Switch,
    booked_twice,
    booked_twice_executing,
    booked_twice_since,
    fees_charged_since,
    fees_logged_since,
    fees_out_of_cash_once,
    in_order,
    logged_multiple,
    logged_twice_since,
    peer_rule_sets,
)

RECENT = 8  # earlier fill bars tried as the onset of a hidden-state fault
WARM_UP = 2  # bars replayed under a new hypothesis before its first bar, to queue its orders
MAX_ALIVE = 8  # hypotheses kept alive at once
BEAM_WIDTH, BEAM_DEPTH = 3, 3  # closest sets extended, and how many switches further
PERSIST = 10  # bars with fills a new hypothesis is run over to tell it from its rivals
HELPFUL = 8  # single switches that came closest, paired with every other
SEARCH_BUDGET = 480  # switch sets tried at most for one bar (an eighth soon after a failure)
GIVE_UP = 10  # searches in a row that found nothing: stop until a bar with fills is explained
WEAK = 2  # bars a rule switch must explain beyond a stretch nothing explains
START_WINDOW, MAX_START = 12, 5  # fill bars the side's own rules are fitted on; switches


def _kept(hypotheses: list[Hypothesis]) -> frozenset[Switch]:
    return frozenset().union(*(h.switches for h in hypotheses)) if hypotheses else frozenset()


def _compatible(a: Switch, b: Switch) -> bool:
    return not (a.fields & b.fields)


def combine(current: frozenset[Switch], switch: Switch) -> frozenset[Switch]:
    """`current` with `switch` added, replacing any switch that sets the same fields."""
    return frozenset({s for s in current if _compatible(s, switch)} | {switch})




class _StartReplay:
    """One set's replay over the start window (`Search.reproduced`), which can stop where
    the set can no longer reach a rank and go on from there under a lower one."""

    def __init__(self, search: Search, switches: frozenset[Switch], window: list[OwnBook]
                 ) -> None:
        self.search, self.switches, self.window = search, switches, window
        self.hypothesis = Hypothesis(switches, *search._start_state)
        self.at, self.count, self.far = 0, 0, 0.0
        by_bar = search.log.by_bar
        self.left = sum(1 for own in window if by_bar.get(own.bar))  # fill bars to come

    def run(self, floor: tuple | None = None) -> tuple[int, float]:
        """The score so far once the window is over, or the bound it stopped at."""
        search, hypothesis, by_bar = self.search, self.hypothesis, self.search.log.by_bar
        size = -len(self.switches)
        while self.at < len(self.window):
            if floor is not None and ((self.count + self.left, -self.far), size) < floor:
                return self.count + self.left, -self.far
            own = self.window[self.at]
            self.at += 1
            actual = by_bar.get(own.bar, {})
            self.left -= 1 if actual else 0
            guess, book = search.predict(own, hypothesis)
            wrong = search.mismatches(guess, actual)
            if wrong:
                self.far += search.distance(guess, actual, wrong)
                search.advance_actual(hypothesis, own)
            else:
                hypothesis.advance(book)
                self.count += 1 if actual else 0
        return self.count, -self.far


class Search:
    """The search methods of `Diagnoser` (which holds the state they read)."""

    def search(self, own: OwnBook, actual: dict[str, Key], alive: list[Hypothesis],
               recent: deque, missed: set[str]
               ) -> tuple[list[Hypothesis], set[str], Hypothesis | None]:
        """Hypotheses that reproduce bar `own.bar`, the ones that go on to explain the most
        of the following bars first (then the simplest); else the closest one.

        Levels are tried simplest first: the hypotheses this bar refuted less one switch
        (a fault ended) or plus one (another began), then single switches; beside them
        (unless one lasts `PERSIST` bars) the shapes of what the side believed it held,
        read from its orders (`belief_sets`); then pairs of the switches that helped
        alone. The search stops at the first level that reproduces the bar, except that
        pairs are tried where no set found reproduces a bar after this one. Several sets
        may reproduce a bar and part ways later, so each is run over the next bars
        (`PERSIST` of them); if none lasts that long, a beam extends the closest ones one
        switch at a time (an engine that differs in several ways at once, such as a peer's
        own rules, shows each difference on another bar). At most `budget` sets are tried.
        """
        t = own.bar
        currents = [h.switches for h in alive if h.switches]
        # a set made from a hypothesis alive before t starts from that hypothesis' own
        # open orders (its rules queued them; the trusted rules' would not)
        singles = self.vocabulary + self.state_switches(t)
        origins = {combine(h.switches, s): h for h in alive if h.switches for s in singles}
        # a set the bar refuted less one switch keeps the others' rules (`warmed`)
        rulers = {c - {s}: frozenset(x for x in c if not x.state) - {s}
                  for c in currents for s in c}
        tried: dict[frozenset[Switch], tuple[float, int]] = {}  # → (distance, bars lasted)
        start = self.distance(*self._last_guess, missed)
        best: list = [start, None, missed]
        found: list[Hypothesis] = []
        unchecked: dict[int, tuple] = {}  # warmed without checking the bar before t
        self._warm_starts = {}
        given_up = self._failures >= GIVE_UP
        if given_up:  # single switches only, on a small budget, where a new fault shows:
            standing = sorted(self._failed_far)  # much more missed than the bars before
            usual = standing[len(standing) // 2] if standing else 0.0
            if start < max(2 * usual, usual + 1.0):
                self._failures += 1
                self._closest = start
                return [], missed, None
        budget = SEARCH_BUDGET if t - self._last_unexplained > PERSIST and not given_up \
            else SEARCH_BUDGET // 8

        def evaluate(level) -> None:
            for switches in dict.fromkeys(level):
                if switches in tried or len(tried) >= budget:
                    continue
                origin = origins.get(switches)
                kept = rulers.get(switches, frozenset()) if origin is None else \
                    frozenset(s for s in origin.switches if not s.state) & switches
                # from the origin's own orders; else warmed (a change of timing re-decides)
                # under the trusted rules; else under the rules kept from the hypothesis it
                # came from (a change of timing that went on): the first that reproduces
                ways = (["origin"] if origin is not None else []) + ["warm"] + \
                    (["kept"] if kept else [])
                tries = []
                for way in ways:
                    ruling = kept if way == "kept" else frozenset()
                    hypothesis = Hypothesis(switches, *origin.state()) if way == "origin" \
                        else self.warmed(switches, recent, ruling)
                    guess, book = self.predict(own, hypothesis)
                    wrong = self.mismatches(guess, actual)
                    tries.append((way, ruling, hypothesis, guess, book, wrong))
                    if not wrong:
                        break
                if wrong:  # none does: the closest is the one warmed as before
                    tries = [x for x in tries if x[0] != "kept"]
                way, ruling, hypothesis, guess, book, wrong = tries[-1]
                if way != "origin":
                    unchecked[id(hypothesis)] = (hypothesis, ruling)
                self.advance(hypothesis, own, book)
                lasted = self.persistence(hypothesis, t) if not wrong else 0
                far = self.distance(guess, actual, wrong)
                tried[switches] = (far, lasted)
                if not wrong:
                    hypothesis.lasted = lasted
                    found.append(hypothesis)
                elif far < best[0]:
                    best[:] = [far, hypothesis, wrong]

        evaluate([c - {s} for c in currents for s in in_order(c)])
        for level in ([combine(c, s) for c in currents for s in singles],
                      [frozenset({s}) for s in singles]):
            if not found:
                evaluate(level)
        if given_up and not found:
            self._failures += 1
            self._failed_far.append(start)
            self._closest = best[0]
            return [], best[2], best[1]
        if not any(h.lasted >= PERSIST for h in found):  # what the side believed it held
            beliefs = self.belief_sets(t, currents)
            budget += len(beliefs)
            evaluate(beliefs)
        helpful = sorted((s for s in singles if tried.get(frozenset({s}), (start,))[0] < start),
                         key=lambda s: tried[frozenset({s})][0])[:HELPFUL]
        if not any(h.lasted for h in found):  # none reproduces a bar after this one
            evaluate([frozenset({a, b}) for a in helpful for b in singles
                      if a != b and _compatible(a, b)])
        for _ in range(BEAM_DEPTH):
            if any(h.lasted >= PERSIST for h in found) or len(tried) >= budget:
                break
            frontier = sorted((s for s, (far, _) in tried.items() if far < start),
                              key=lambda s: (tried[s][0], -tried[s][1], len(s)))[:BEAM_WIDTH]
            evaluate([combine(s, one) for s in frontier for one in helpful or singles
                      if one not in s])
        for kept in found or [best[1]]:  # only the kept ones may carry their warm bars
            if kept is not None and id(kept) in unchecked:
                self.check_warm(kept, recent, unchecked[id(kept)][1])
        if found:
            self._failures = 0
            return sorted(found, key=lambda h: (-h.lasted, h.size)), set(), None
        self._last_unexplained = t
        self._failures += 1
        self._failed_far.append(start)
        self._closest = best[0]
        return [], best[2], best[1]

    def fit_start(self, state: tuple) -> list[frozenset[Switch]]:
        """The sets of switches the side's first `START_WINDOW` fill bars follow (its own
        rules): the best one, and the others of its size that score as well (the first bars
        cannot tell them apart, so each stays alive until a later bar refutes it; a shape
        of belief only beside another, as the search tries them only after the catalogue).

        A beam search over sets of switches, scored by the fill bars they reproduce (then
        by how far they are off on the others): each level adds one switch, or the
        switches that make one of the peers' known rule sets (`peer_rule_sets`). An
        engine's persistent differences (a peer's rules, faults present from the start)
        often show only together, so the beam keeps the closest few sets at each level.
        """
        fills = [b for b in self.fill_bars if b >= self.same_until][:START_WINDOW]
        if not fills:
            return []
        window = self.books[self.same_until: fills[-1] + 1]
        self._start_state = state
        bundles = peer_rule_sets(self.trusted, self.vocabulary)
        scores = {frozenset(): self.reproduced(frozenset(), window)}
        missed = self.first_missed(window)
        onsets = {fills[0], missed}  # a state fault begun at the first fills, or there
        singles = self.vocabulary if missed is None else [
            s for s in self.state_switches(missed) if s.since in onsets] + self.vocabulary + [
            s for b in self.belief_sets(missed, []) for s in b]
        best = frozenset()
        frontier = [best]
        cut: set[frozenset[Switch]] = set()
        top = None  # the closest score of the level before
        for _ in range(MAX_START):
            if scores[best][0] >= len(fills):
                break
            level = [combine(chosen, s) for chosen in frontier for s in singles
                     if s not in chosen]
            level += [frozenset({*(c for c in chosen if all(_compatible(c, b) for b in bundle)),
                                 *bundle}) for chosen in frontier for bundle in bundles
                      if not bundle <= chosen]
            fresh = [c for c in dict.fromkeys(level) if c not in scores]
            ranks: list[tuple] = []  # the level's best exact ranks, at most BEAM_WIDTH
            replays = {c: _StartReplay(self, c, window) for c in fresh}
            for candidate in fresh:  # first the sets that reproduce every fill bar: each
                # of the others stops at its first miss (a bound under theirs)
                perfect = ((len(fills), 0.0), -len(candidate))
                if replays[candidate].run(perfect) == perfect[0]:
                    scores[candidate] = perfect[0]
                    ranks = sorted([*ranks, perfect], reverse=True)[:BEAM_WIDTH]
            if ranks:  # the level's best reproduce the window: the others' scores are moot
                best = max((c for c in fresh if c in scores),
                           key=lambda c: (scores[c], -len(c)))
                break
            for candidate in fresh:  # then the others, resumed where they stopped
                if candidate in scores:
                    continue
                floor = ranks[-1] if len(ranks) == BEAM_WIDTH else None
                scores[candidate] = replays[candidate].run(floor)
                rank = (scores[candidate], -len(candidate))
                if floor is not None and rank < floor:
                    cut.add(candidate)  # cut short: its score is a bound under the beam's
                else:
                    ranks = sorted([*ranks, rank], reverse=True)[:BEAM_WIDTH]
            if not fresh:
                break
            frontier = sorted(fresh, key=lambda c: (scores[c], -len(c)),
                              reverse=True)[:BEAM_WIDTH]
            if (scores[frontier[0]], -len(frontier[0])) > (scores[best], -len(best)):
                best = frontier[0]
            elif best and scores[frontier[0]] == top:
                break  # past a set closer than the trusted rules, a level whose switches
                # changed nothing the window shows: larger sets will not either
            top = scores[frontier[0]]
        if scores[best][0] <= scores[frozenset()][0]:
            return []
        shaped = any(s.state == "belief" for s in best)  # the catalogue's sets come first
        tied = [c for c in scores if c not in cut and len(c) == len(best)
                and scores[c] == scores[best]
                and (shaped or not any(s.state == "belief" for s in c))]
        out: list[frozenset[Switch]] = []
        for chosen in sorted(tied, key=lambda c: c != best):
            for switch in sorted(chosen, key=lambda s: s.words):  # keep only what is needed
                lighter = chosen - {switch}
                if lighter not in scores or lighter in cut:
                    cut.discard(lighter)
                    scores[lighter] = self.reproduced(lighter, window)
                if scores[lighter][0] >= scores[chosen][0]:
                    chosen = lighter
            if chosen and chosen not in out:
                out.append(chosen)
        return out[:MAX_ALIVE]

    def first_missed(self, window: list[OwnBook]) -> int | None:
        """The first bar of `window` the trusted rules do not reproduce from the own book."""
        hypothesis = Hypothesis(frozenset(), *self._start_state)
        for own in window:
            guess, book = self.predict(own, hypothesis)
            if self.mismatches(guess, self.log.by_bar.get(own.bar, {})):
                return own.bar
            hypothesis.advance(book)
        return None

    def reproduced(self, switches: frozenset[Switch], window: list[OwnBook],
                   floor: tuple | None = None) -> tuple[int, float]:
        """(fill bars of `window` that `switches` reproduce, − how far it is off on the
        others), run from the first bar. Given the `floor` rank (score, −size) a set must
        reach to count, a set that can no longer reach it is cut short: its score is then
        a bound above its own and below the floor."""
        return _StartReplay(self, switches, window).run(floor)

    def persistence(self, hypothesis: Hypothesis, t: int) -> int:
        """How many of the bars after `t` (up to `PERSIST` with fills) it reproduces."""
        probe = Hypothesis(hypothesis.switches, *hypothesis.state())
        lasted = 0
        for own in self.books[t + 1:]:
            if lasted >= PERSIST:
                break
            actual = self.log.by_bar.get(own.bar, {})
            guess, book = self.predict(own, probe)
            if self.mismatches(guess, actual):
                break
            probe.advance(book)
            # a bar counts where fills were due: the side's, the guess's, or the other
            # side's that the side lacks (reproducing a silence there is evidence too)
            lasted += 1 if actual or guess or own.bar in self.label_bars else 0
        return lasted

    def state_switches(self, t: int) -> list[Switch]:
        """Hidden-state faults that could have begun at a recent fill bar before t."""
        earlier = [b for b in self.fill_bars if b < t]
        stamps = self.bars.timestamps
        recent = earlier[-RECENT:]
        onsets = list(dict.fromkeys([*earlier[:1], *recent, t]))
        multiple = logged_multiple(self.observed.rules_at(t), self.trusted)
        return ([booked_twice(b, stamps[b]) for b in reversed(recent)]
                + [booked_twice_executing(b, stamps[b]) for b in [t, *reversed(recent)]]
                + [switch for b in onsets for switch in (
                    booked_twice_since(b, stamps[b], executing=True),
                    booked_twice_since(b, stamps[b]), logged_twice_since(b, stamps[b]),
                    booked_twice_since(b, stamps[b], True, "sells"))]
                + [fees_charged_since(b, stamps[b], share) for share in FEE_SHARES
                   for b in onsets]
                + [fees_logged_since(b, stamps[b], multiple) for b in onsets
                   if multiple is not None]
                + [fees_out_of_cash_once(b, stamps[b]) for b in reversed(recent)])

    def belief_sets(self, t: int, currents: list[frozenset[Switch]]
                    ) -> list[frozenset[Switch]]:
        """Hidden-state hypotheses from what the side believed it held (engine/gap/belief.py):
        each shape of belief that fits bar t and the batches after it, alone and on top of
        the hypotheses alive before t."""
        out = []
        for delay in sorted({self.trusted.delay, *(self.rules_at(t, c).delay for c in currents)}):
            for shape, since in self.beliefs.propose(t, delay):
                switch = self.beliefs.switch(shape, since)
                out += [frozenset({switch}), *(combine(c, switch) for c in currents)]
        return out

    def warmed(self, switches: frozenset[Switch], recent: deque,
               ruling: frozenset[Switch] = frozenset()) -> Hypothesis:
        """A new hypothesis with the orders it would have queued over the last bars: the
        bar before t under its rules, the ones before that under the trusted rules (what
        the side did before it changed; a change seen at t may have begun a bar earlier)
        with the `ruling` switches a hypothesis alive before t kept in force (a change of
        timing that went on). Whether it reproduces the bar before t too is checked for
        the ones a search keeps (`check_warm`)."""
        if not recent:
            return Hypothesis(switches)
        hypothesis = self._warm_start(switches, recent, ruling)
        self.advance_actual(hypothesis, recent[-1][0])
        return hypothesis

    def check_warm(self, hypothesis: Hypothesis, recent: deque,
                   ruling: frozenset[Switch] = frozenset()) -> None:
        """Mark the bar before t as one a `warmed` hypothesis reproduces (its orders were
        queued there), if it does."""
        if recent:
            own = recent[-1][0]
            guess, _ = self.predict(own, self._warm_start(hypothesis.switches, recent,
                                                          ruling))
            if not self.mismatches(guess, self.log.by_bar.get(own.bar, {})):
                hypothesis.warmed_bars.add(own.bar)

    def _warm_start(self, switches: frozenset[Switch], recent: deque,
                    ruling: frozenset[Switch] = frozenset()) -> Hypothesis:
        """A new hypothesis from the state before the recent bars, moved under the trusted
        rules (with `ruling`) over all of them but the last. The replay depends on the
        switches only through the book they believe (their hidden-state ones), so it is
        kept per set of those (and `ruling`) for the search at hand."""
        states = frozenset(s for s in switches if s.state)
        found = self._warm_starts.get((states, ruling))
        if found is None:
            pending, history, unnetted, seen = recent[0][1]
            probe = Hypothesis(states, dict(pending), history, unnetted, seen)
            for own, _ in list(recent)[:-1]:
                self.advance_actual(probe, own, self.rules_at(own.bar, ruling))
            found = self._warm_starts[(states, ruling)] = probe.state()
        pending, history, unnetted, seen = found
        return Hypothesis(switches, dict(pending), history, unnetted, seen)
