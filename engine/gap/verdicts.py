"""The records of a side's diagnosis and what is read off them once it is done.

`Hypothesis` is a set of switches and the open orders it carries from bar to bar;
`BarVerdict` how one bar is explained; `Diagnosis` every bar's verdict and what the oracle
predicted where labels need it. `verdicts_of` picks, per bar, the hypothesis that held
longest; `departures` lists what differs from the trusted rules at a bar; `consequences`
finds the book checks that only act beside a fill booked twice.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from engine.gap.exits import ExitRule
from engine.gap.logs import Key
from engine.gap.observe import Observed
from engine.gap.vocabulary import FEE_FIELDS, Switch, logged_multiple
from engine.reference import Book, Rules


@dataclass(eq=False)
class Hypothesis:
    """A set of switches the side's recent bars agree with, and the orders it has open.

    `died` is the bar whose fills first refuted it (None while it holds).
    """

    switches: frozenset[Switch]
    pending: dict = field(default_factory=dict)
    history: tuple = ()  # positions before each of its recent batches
    unnetted: tuple = ()  # older open orders it keeps when it does not net
    seen: int = -1  # the last decision bar it acted on
    died: int | None = None
    lasted: int = 0  # bars with fills it went on to reproduce when it was found
    before: tuple = ({}, (), (), -1)  # its state before the last bar it was advanced over
    warmed_bars: set = field(default_factory=set)  # bars before it it reproduces too

    def advance(self, book: Book) -> None:
        """Take the open orders and batch history the engine has after a bar (keeping the
        ones before it in `before`, for what-if replays of that bar)."""
        self.before = self.state()
        self.pending, self.history, self.unnetted = book.pending, book.history, book.unnetted
        self.seen = book.seen

    def state(self) -> tuple:
        return dict(self.pending), self.history, self.unnetted, self.seen

    @property
    def size(self) -> int:
        return len(self.switches)


@dataclass(frozen=True)
class BarVerdict:
    """How one bar of one side is explained.

    `switches` are the hidden switches in force (empty: the trusted rules with the side's
    visible fields reproduce it); `evidenced` says the trusted rules alone did not;
    `unexplained` lists the assets no hypothesis reproduces; `refuted` the switches a
    failure ended at this bar; `partial`: the switches reproduce every fill of the bar but
    the unexplained ones (a coincidence taken out of a reproduced bar), so they still
    count there.
    """

    bar: int
    switches: frozenset[Switch]
    evidenced: bool
    unexplained: frozenset[str] = frozenset()
    refuted: frozenset[Switch] = frozenset()
    partial: bool = False


@dataclass
class Diagnosis:
    """Per-bar verdicts of one side, and what the oracle predicted where labels need it."""

    trusted_rules: Rules
    verdicts: dict[int, BarVerdict] = field(default_factory=dict)
    trusted_fills: dict[int, dict[str, Key]] = field(default_factory=dict)  # pure trusted
    without: dict[int, dict[Switch | str, dict[str, Key]]] = field(
        default_factory=dict)  # bar → departure of its verdict left out → fills
    needed: dict[int, set] = field(default_factory=dict)  # bar → departures changing a fill
    # decision bars without divergent keys that the trusted rules reproduce too, where
    # `needed` says which switch the others miss without
    by_chance: set[int] = field(default_factory=set)
    unsized: set[int] = field(default_factory=set)  # bars whose one-off prices were not sized

    consequences: dict[Switch, Switch] = field(default_factory=dict)  # → its root
    undecided: dict[int, dict[str, Key]] = field(default_factory=dict)  # no decision's fills
    exit_rule: ExitRule | None = None  # the rule they follow (or one unexplained item)
    rule_exits: set[tuple[int, str]] = field(default_factory=set)  # every fill it makes
    exit_entries: dict[tuple[int, str], tuple[int, float] | None] = field(
        default_factory=dict)  # (bar, asset) of an undecided fill → the entry it closes

    def cause_of(self, switch: Switch) -> str:
        """The cause a switch is counted under: its root's, for a consequence."""
        return self.consequences.get(switch, switch).cause

    def left_out(self, t: int) -> dict[Switch | str, dict[str, Key]]:
        """Fills at bar t with each departure of the bar's verdict left out (if several)."""
        return self.without.get(t, {})

    def touched(self, switch: Switch, t: int) -> bool:
        """Whether `switch` changed a fill at bar t that it explains (where that was not
        worked out, every switch of a bar the trusted rules miss counts; a bar nothing
        reproduces touches none: its closest hypothesis explains nothing). At a bar the
        trusted rules reproduce, only a switch the bar's other switches miss without."""
        verdict = self.verdicts[t]
        if verdict.unexplained and not verdict.partial:
            return False
        if not verdict.evidenced:
            return t in self.by_chance and switch in self.needed.get(t, ())
        return switch in self.needed[t] if t in self.needed else True



def verdicts_of(states: dict[int, tuple[list[Hypothesis], bool, frozenset[str]]]
              ) -> tuple[dict[int, BarVerdict], dict[int, Hypothesis]]:
    """Per bar, the alive hypothesis that held the longest; on ties, the one whose switches
    hold again at bars after it died (one cause that comes back beats a second cause for
    one of its spans), then the simplest."""
    verdicts: dict[int, BarVerdict] = {}
    chosen_at: dict[int, Hypothesis] = {}
    previous: Hypothesis | None = None
    born: set[int] = set()
    held: dict = {}  # each switch → the bars some hypothesis alive there holds it
    for t, (alive, _, _) in states.items():
        for switch in {s for h in alive for s in h.switches}:
            held.setdefault(switch, []).append(t)

    supports: dict[int, int] = {}

    def support(h: Hypothesis) -> int:
        if h.died is None:
            return 0
        found = supports.get(id(h))
        if found is None:  # (each switch's bars are in order)
            found = supports[id(h)] = sum(len(bars) - bisect_right(bars, h.died) for bars in
                                          (held.get(s, ()) for s in h.switches))
        return found

    for t in sorted(states):
        alive, missed, unexplained = states[t]
        chosen = max(alive, key=lambda h: (h.died is None, h.died or 0, support(h),
                                           -alive.index(h)), default=None)
        switches = chosen.switches if chosen else frozenset()
        refuted = frozenset()
        if previous is not None and previous.died == t:
            refuted = previous.switches - switches
        verdicts[t] = BarVerdict(t, switches, missed, unexplained, refuted)
        if chosen is not None:
            chosen_at[t] = chosen
        if chosen is not None and id(chosen) not in born:
            born.add(id(chosen))
            for b in chosen.warmed_bars:  # the bars that queued its first orders
                if not verdicts[b].switches and not verdicts[b].evidenced:
                    verdicts[b] = BarVerdict(b, switches, False)
        previous = chosen
    return verdicts, chosen_at


def departures(t: int, switches: frozenset[Switch], observed: Observed, trusted: Rules
               ) -> list[Switch | str]:
    """What differs from the trusted rules at bar t: hidden switches, then visible fields
    ("point", "slippage", "rounding", "fees"); a timing switch carries its price point."""
    visible = observed.rules_at(t)
    timed = any(name == "delay" for s in switches for name, _ in s.changes)
    names = [n for n in ("point", "slippage")
             if visible[n] != getattr(trusted, n) and not (n == "point" and timed)]
    if (visible["rounding"], visible["lot"]) != (trusted.rounding, trusted.lot):
        names.append("rounding")
    multiple = next((dict(s.changes)["fee_logged"] for s in switches
                     if s.state == "fees_logged"), None)
    if multiple is not None:  # a log at the switch's multiple of the trusted fees is it
        fees_differ = logged_multiple(visible, trusted) != multiple
    else:
        fees_differ = any(visible[n] != getattr(trusted, n) for n in FEE_FIELDS)
    if fees_differ:
        names.append("fees")
    if observed.exit_fields and t >= observed.exit_since:
        names.append("exit_rule")
    return [*sorted(switches, key=lambda s: s.words), *names]


BOOK_CHECKS = {"allow_short", "cash_policy", "max_leverage"}


def consequences(verdicts: dict[int, BarVerdict], trusted: Rules) -> dict[Switch, Switch]:
    """Checks against the book that only ever act beside a fill booked twice: a sell that
    goes short, or a cash check that reads cash double booking spent, follow from the
    double booking (the engine's checks read the book it believes) and are counted under
    it, not as causes of their own. A check against a stale balance loosens no check of
    the book (it keeps the trusted policy and reads a balance from before the batch's
    fills): it is a cause of its own."""
    together: dict[Switch, set[Switch] | None] = {}
    for verdict in verdicts.values():
        roots = {s for s in verdict.switches if s.cause == "duplicate_fill"}
        for switch in verdict.switches:
            if switch.state or not {n for n, v in switch.changes
                                    if v != getattr(trusted, n)} & BOOK_CHECKS:
                continue
            seen = together.get(switch, roots)
            together[switch] = None if seen is None else seen & roots
    return {s: min(roots, key=lambda r: (r.since, r.words))
            for s, roots in together.items() if roots}
