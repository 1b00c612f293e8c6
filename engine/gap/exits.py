"""Orders no decision made: fills that answer no decision, and the exit rule they follow.

A side's fill that answers no decision (a risk manager's exit: it only reduces a position
the side holds or believes it holds, where no decision's order fills it) is set apart
before the bar's sizing is checked (`Diagnoser.undecided`), so that nothing else (a price
model, the hypotheses alive there) has to absorb it. A rule is then fitted to all of them,
from the entries of the positions they close as the side believed them (`Entries`): a
stop-loss or take-profit at a level from the entry's fill price or its bar's close, filled
at the level inside the bar (the open when it gapped past) or at the next open once a
close passed it; or a time exit N bars after the entry. Where none fits, they are one
unexplained item with their fills listed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from engine.gap.logs import FillLog, Key
from engine.reference import Bars
from engine.reference.bars import CLOSE, HIGH, LOW, OPEN

TOL = 1e-9
HELD = 1e-6  # an exit of the whole believed position, within the belief's float noise
MIN_EXITS = 2  # a rule is fitted on two exits at least (one exit fits many rules), or on
# one filled at a level inside its bar, named with its level but not replayed
ROUND_LEVELS = (0.01, 0.005, 0.001)  # a fitted level is the roundest inside its interval


@dataclass(frozen=True)
class ExitRule:
    """What the undecided fills of a side follow: its cause and words; for a rule the
    reference can replay (exits at their level inside the bar), its `Rules` fields and
    the first bar whose entries it arms (`since`)."""

    cause: str
    words: str
    fields: tuple[tuple[str, object], ...] = ()
    since: int = 0
    # a rule exiting at the next open once a close passed its level: (kind, base, level)
    at_open: tuple[str, str, float] | None = None


@dataclass
class Entries:
    """The entries of the positions a side believes it holds, fill by fill: a fill from a
    believed flat position opens one (its bar and price), a fill of the whole believed
    position closes it (the exits armed on it go, as a risk manager's do)."""

    opened: dict[str, tuple[list[int], list[float | None]]] = field(default_factory=dict)
    held: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)  # after

    def after(self, t: int, asset: str, position: float) -> None:
        """The position believed held once bar t's fills of `asset` are all booked."""
        bars_, values = self.held.setdefault(asset, ([], []))
        bars_.append(t)
        values.append(position)

    def position(self, asset: str, t: int) -> float:
        """The position believed held before bar t."""
        found = self.held.get(asset)
        i = bisect_left(found[0], t) if found else 0
        return found[1][i - 1] if i else 0.0

    def fill(self, t: int, asset: str, held: float, q: float, price: float,
             closes_only: bool = False) -> None:
        """A fill of `q` at bar t, with `held` believed before it (`closes_only`: it may
        close the position, not open one)."""
        noise = TOL * max(abs(q), abs(held), 1e-3)
        if abs(held) <= noise and abs(q) > noise and not closes_only:
            self._mark(t, asset, price)
        elif abs(held + q) <= HELD * max(abs(q), 1e-3):
            self._mark(t, asset, None)

    def _mark(self, t: int, asset: str, price: float | None) -> None:
        bars_, prices = self.opened.setdefault(asset, ([], []))
        if bars_ and bars_[-1] == t and (price is None) == (prices[-1] is None):
            if price is not None:  # the entry's last fill at its bar (a row logged twice)
                prices[-1] = price
            return
        bars_.append(t)
        prices.append(price)

    def before(self, t: int) -> Entries:
        """A copy holding what was marked before bar t."""
        def cut(found: dict) -> dict:
            out = {}
            for asset, (bars_, values) in found.items():
                i = bisect_left(bars_, t)
                if i:
                    out[asset] = (bars_[:i], values[:i])
            return out
        return Entries(cut(self.opened), cut(self.held))

    def entry(self, asset: str, t: int) -> tuple[int, float] | None:
        """The bar and price of the entry of the position believed held before bar t."""
        found = self.opened.get(asset)
        if found is None:
            return None
        i = bisect_left(found[0], t)
        if not i or found[1][i - 1] is None:
            return None
        return found[0][i - 1], found[1][i - 1]


def undecided_rule(undecided: dict[int, dict[str, Key]],
                   entries: dict[tuple[int, str], tuple[int, float] | None], bars: Bars,
                   long: Callable[[int, str, int], bool] | None = None,
                   cost: Callable[[str, int], float | None] | None = None) -> ExitRule:
    """The rule the fills that answer no decision follow (from the entries of the positions
    believed held that they close), or one unexplained item. `long(t, asset, k)`: whether
    the position the exit at bar t closed was believed long before and after bar k (a
    long-only exit can fire only then); `cost(asset, k)`: the average cost of the position
    after bar k (a rule whose base it is)."""
    exits = [(t, asset, key[1]) for t in sorted(undecided) for asset, key in
             sorted(undecided[t].items())]
    entries = [entries.get((t, asset)) for t, asset, _ in exits]
    one = len(exits) == 1 and entries[0] is not None and _inside(exits[0], bars)
    if (len(exits) >= MIN_EXITS or one) and all(entries):
        rule = _fitted(exits, entries, bars, one, long, cost=cost)
        if rule is not None:
            return rule
        # switched on mid-run: the rule had no say before the first exit's trigger
        first = exits[0][0]
        rule = _fitted(exits, entries, bars, one, long, since=first - 1, cost=cost)
        if rule is not None:
            return replace(rule, words=f"{rule.words} (from {str(bars.timestamps[first])[:10]})")
    listed = ", ".join(f"{asset} {str(bars.timestamps[t])[:10]}" for t, asset, _ in exits[:4])
    more = f" and {len(exits) - 4} more" if len(exits) > 4 else ""
    return ExitRule("unexplained", f"{len(exits)} fills that answer no decision "
                    f"({listed}{more})")


def _fitted(exits: list, entries: list, bars: Bars, one: bool,
            long: Callable[[int, str, int], bool] | None, since: int = 0,
            cost: Callable[[str, int], float | None] | None = None) -> ExitRule | None:
    """The first rule every exit agrees with, when it had a say from bar `since` on: a
    stop-loss or take-profit (from the entry's fill price or its bar's close, at the level
    inside the bar or at the next open once a close passed it; or from the position's
    average cost, at the next open), a trailing stop under the
    highest close since the entry at the next open, or a time exit (N bars after the entry;
    from `since`, at the first exit's bar for positions held longer)."""
    mid_run = since > 0
    held = [t - entry[0] for (t, _, _), entry in zip(exits, entries, strict=True)]
    first, n = exits[0][0], min(held)
    timed = all(h == n or (mid_run and t == first)
                for h, (t, _, _) in zip(held, exits, strict=True))
    for kind in ("stop-loss", "take-profit", "time", "trailing"):
        if kind == "time":
            if timed:
                return ExitRule("exit_rule", f"exits {n} bars after the entry: a time exit "
                                "A does not have")
            continue
        for base in ("fill", "close", "cost") if kind != "trailing" else ("fill",):
            for at_level in ((True,) if one else (True, False)) if kind != "trailing" \
                    and base != "cost" and not mid_run else (False,):
                level = _fit(exits, entries, bars, kind, base, at_level, long, since, cost)
                if level is None:
                    continue
                name = "stop_loss" if kind == "stop-loss" else "take_profit"
                fields = ((name, level), ("stop_base", base), ("reversal_rearms", False)) \
                    if at_level and not one else ()
                words = _words(kind, base, at_level, level)
                if one:
                    t, asset, _ = exits[0]
                    words = f"one exit no decision made ({asset} " \
                        f"{str(bars.timestamps[t])[:10]}) {words[len('exits '):]}"
                return ExitRule("exit_rule", words, fields, min(e[0] for e in entries),
                                None if at_level else (kind, base, level))
    return None


def exit_level(stop: bool, base: str, level: float, entry: tuple[int, float], rows,
               asset: str) -> float:
    """The price at which a rule exits a position entered at `entry` (bar, fill price):
    `level` below it (a stop-loss) or above it (a take-profit), from the entry's fill price
    or its bar's close (`base`)."""
    ref = entry[1] if base == "fill" else rows[entry[0]][asset][CLOSE]
    return ref * (1.0 - level if stop else 1.0 + level)


def fires_at_open(rule: tuple[str, str, float], bars: Bars, t: int, asset: str,
                  entry: tuple[int, float] | None,
                  cost: Callable[[str, int], float | None] | None = None) -> bool:
    """Whether a rule that exits at the next open once a close passed its level (`kind,
    base, level`) exits `asset`, entered at `entry`, at the open of bar t."""
    kind, base, level = rule
    rows = bars.rows
    before = rows[t - 1].get(asset) if t else None
    if entry is None or before is None or entry[0] > t - 1:
        return False
    if kind == "trailing":
        peak = _trailing(rows, asset, entry[0], t, entry[1])[t - 1]
        return before[CLOSE] <= peak * (1 - level) * (1 + TOL)
    if base == "cost":
        paid = cost(asset, t - 1) if cost is not None else None
        if paid is None:
            return False
        entry = (entry[0], paid)
        base = "fill"
    at = exit_level(kind == "stop-loss", base, level, entry, rows, asset)
    return before[CLOSE] <= at * (1 + TOL) if kind == "stop-loss" else \
        before[CLOSE] >= at * (1 - TOL)


def rule_exits(rule: ExitRule, log: FillLog, bars: Bars,
               entry_of: Callable[[str, int], list[tuple[int, float]]]
               ) -> set[tuple[int, str]]:
    """The (bar, asset) of every row of `log` that a replayable rule's exit makes: a sell
    of a long at the rule's level from an entry of the position (`entry_of`: the side's
    own and believed ones), or at the open where the open gapped past it (at a decision's
    bar too, beside the decision's own fills, whose rows of the asset it marks with it)."""
    return {(t, asset) for t, asset, entry, _ in _made(rule, log, bars, entry_of)
            if entry[0] >= rule.since}


def armed_since(rule: ExitRule, log: FillLog, bars: Bars,
                entry_of: Callable[[str, int], list[tuple[int, float]]]) -> ExitRule:
    """The rule arming entries from the first one an exit of it closes exactly at its level
    (exits at a decision's bar are not set apart, and may be the rule's first ones)."""
    first = min((entry[0] for _, _, entry, exact in _made(rule, log, bars, entry_of)
                 if exact), default=rule.since)
    return replace(rule, since=min(first, rule.since))


def _made(rule: ExitRule, log: FillLog, bars: Bars,
          entry_of: Callable[[str, int], list[tuple[int, float]]]):
    """(bar, asset, entry, at its level) of every row the rule's exit may have made."""
    fields = dict(rule.fields)
    if not fields:
        return
    stop = "stop_loss" in fields
    level = fields["stop_loss" if stop else "take_profit"]
    rows = bars.rows
    for t, fills in log.rows.items():
        for asset, q, price, _ in fills:
            row = rows[t].get(asset)
            if q >= 0 or row is None:
                continue
            for entry in entry_of(asset, t):
                at = exit_level(stop, fields.get("stop_base", "fill"), level, entry, rows,
                                asset)
                if abs(price - at) <= TOL * abs(at):
                    yield t, asset, entry, True
                elif abs(price - row[OPEN]) <= TOL * abs(price) and (
                        row[OPEN] <= at if stop else row[OPEN] >= at):
                    yield t, asset, entry, False


def _inside(exit_: tuple[int, str, float], bars: Bars) -> bool:
    """Whether an exit filled at a price inside its bar, off its open and close (a level
    reached inside the bar: the one exit a rule is fitted on, as no market order fills
    there)."""
    t, asset, price = exit_
    row = bars.rows[t].get(asset)
    return row is not None and row[LOW] <= price <= row[HIGH] and all(
        abs(price - row[k]) > TOL * abs(price) for k in (OPEN, CLOSE))


def _fit(exits: list, entries: list, bars: Bars, kind: str, base: str, at_level: bool,
         long: Callable[[int, str, int], bool] | None = None, since: int = 0,
         cost: Callable[[str, int], float | None] | None = None) -> float | None:
    """The level (a fraction of the base) every exit agrees with, or None.

    With x = how far a price is past the base (1 − price/base for a stop or a trailing
    stop, whose base is the highest close since the entry, price/base − 1 for a
    take-profit), the rule fires at the first bar whose x reaches the level: the level is
    at most the trigger's x and above every earlier bar's from `since` (a rule switched on
    mid-run). Base "cost": the position's average cost after each bar (`cost`)."""
    lo, hi = -math.inf, math.inf
    stop = kind != "take-profit"
    rows = bars.rows

    def past(price: float, ref: float) -> float:
        return 1.0 - price / ref if stop else price / ref - 1.0

    for (t, asset, price), (entry_bar, entry_price) in zip(exits, entries, strict=True):
        ref = entry_price if base != "close" else rows[entry_bar][asset][CLOSE]
        row, refs = rows[t].get(asset), None
        if row is None:
            return None
        if at_level:
            extreme = LOW if stop else HIGH
            gapped = abs(price - row[OPEN]) <= TOL * abs(price)
            if gapped:
                hi = min(hi, past(row[OPEN], ref))
            else:
                exact = past(price, ref)
                lo, hi = max(lo, exact - TOL), min(hi, exact + TOL)
                if past(row[extreme], ref) < exact - TOL:
                    return None
            earlier = range(max(entry_bar + 1, since), t)
        else:
            extreme = CLOSE
            trigger = rows[t - 1].get(asset) if t else None
            if trigger is None or abs(price - row[OPEN]) > TOL * abs(price) or (
                    kind == "trailing" and entry_bar > t - 1):
                return None
            refs = _trailing(rows, asset, entry_bar, t, ref) if kind == "trailing" else \
                _costs(cost, asset, entry_bar, t) if base == "cost" else None
            if base == "cost" and refs is None:
                return None
            hi = min(hi, past(trigger[CLOSE], refs[t - 1] if refs else ref))
            earlier = range(max(entry_bar, since), t - 1)
        for k in earlier:
            bar = rows[k].get(asset)
            if bar is not None and (long is None or long(t, asset, k)):
                lo = max(lo, past(bar[extreme], refs[k] if refs else ref))
        if lo >= hi + TOL or hi <= 0:
            return None
    if lo >= hi + TOL:
        return None
    for step in ROUND_LEVELS:
        level = round(math.ceil(max(lo, 0.0) / step - 1e-6) * step, 10)
        if lo - TOL <= level <= hi + TOL and level > 0:
            return level
    return (max(lo, 0.0) + hi) / 2


def _costs(cost: Callable[[str, int], float | None] | None, asset: str, entry_bar: int,
           t: int) -> dict[int, float] | None:
    """The position's average cost after each bar from the entry's to t − 1."""
    if cost is None:
        return None
    out = {k: cost(asset, k) for k in range(entry_bar, t)}
    return None if any(c is None for c in out.values()) else out


def _trailing(rows, asset: str, entry_bar: int, t: int, ref: float) -> dict[int, float]:
    """A trailing stop's base at each bar from the entry's to t − 1: the highest of the
    entry's price and the closes since (that bar's included)."""
    out, peak = {}, ref
    for k in range(entry_bar, t):
        bar = rows[k].get(asset)
        if bar is not None:
            peak = max(peak, bar[CLOSE])
        out[k] = peak
    return out


def _words(kind: str, base: str, at_level: bool, level: float) -> str:
    if kind == "trailing":
        return (f"exits at {level:.1%} below the highest close since the entry, at the next "
                "open once a close passed it: a trailing stop A does not have")
    where = "below" if kind == "stop-loss" else "above"
    ref = {"fill": "the entry's fill price", "close": "the entry bar's close",
           "cost": "the position's average cost"}[base]
    how = "at its level inside the bar" if at_level else "at the next open once a close " \
        "passed it"
    return f"exits at {level:.1%} {where} {ref}, {how}: a {kind} A does not have"
