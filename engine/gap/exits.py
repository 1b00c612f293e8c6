"""Orders no decision made: fills that answer no decision, and the exit rule they follow.

A side's fill at a bar where no decision acts and no order of its own is open, that only
reduces a held position (a risk manager's exit), answers no decision: it is set apart
before the bar's sizing is checked, so that nothing else (a price model, the hypotheses
alive there) has to absorb it. A rule is then fitted to all of them, from the entries they
close: a stop-loss or take-profit at a level from the entry's fill price or its bar's close,
filled at the level inside the bar (the open when it gapped past) or at the next open once
a close passed it; or a time exit N bars after the entry. Where none fits, they are one
unexplained item with their fills listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.gap.logs import FillLog, Key
from engine.reference import Bars
from engine.reference.bars import CLOSE, HIGH, LOW, OPEN

TOL = 1e-9
MIN_EXITS = 2  # a rule is fitted on two exits at least (one exit fits many rules)
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


def undecided_rule(undecided: dict[int, dict[str, Key]], log: FillLog, bars: Bars
                   ) -> ExitRule:
    """The rule the fills that answer no decision follow, or one unexplained item."""
    exits = [(t, asset, key[1]) for t in sorted(undecided) for asset, key in
             sorted(undecided[t].items())]
    entries = [log.entry(asset, t) for t, asset, _ in exits]
    if len(exits) >= MIN_EXITS and all(entries):
        for kind in ("stop-loss", "take-profit"):
            for base in ("fill", "close"):
                for at_level in (True, False):
                    level = _fit(exits, entries, bars, kind, base, at_level)
                    if level is not None:
                        name = "stop_loss" if kind == "stop-loss" else "take_profit"
                        fields = ((name, level), ("stop_base", base)) if at_level else ()
                        return ExitRule("exit_rule", _words(kind, base, at_level, level),
                                        fields, min(e[0] for e in entries))
        held = {t - entry[0] for (t, _, _), entry in zip(exits, entries, strict=True)}
        if len(held) == 1:
            return ExitRule("exit_rule", f"exits {held.pop()} bars after the entry: a time "
                            "exit A does not have")
    listed = ", ".join(f"{asset} {str(bars.timestamps[t])[:10]}" for t, asset, _ in exits[:4])
    more = f" and {len(exits) - 4} more" if len(exits) > 4 else ""
    return ExitRule("unexplained", f"{len(exits)} fills that answer no decision "
                    f"({listed}{more})")


def _fit(exits: list, entries: list, bars: Bars, kind: str, base: str, at_level: bool
         ) -> float | None:
    """The level (a fraction of the base) every exit agrees with, or None.

    With x = how far a price is past the base (1 − price/base for a stop, price/base − 1
    for a take-profit), the rule fires at the first bar whose x reaches the level: the
    level is at most the trigger's x and above every earlier bar's."""
    lo, hi = -math.inf, math.inf
    stop = kind == "stop-loss"
    rows = bars.rows

    def past(price: float, ref: float) -> float:
        return 1.0 - price / ref if stop else price / ref - 1.0

    for (t, asset, price), (entry_bar, entry_price) in zip(exits, entries, strict=True):
        ref = entry_price if base == "fill" else rows[entry_bar][asset][CLOSE]
        row = rows[t].get(asset)
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
            earlier = range(entry_bar + 1, t)
        else:
            extreme = CLOSE
            trigger = rows[t - 1].get(asset) if t else None
            if trigger is None or abs(price - row[OPEN]) > TOL * abs(price):
                return None
            hi = min(hi, past(trigger[CLOSE], ref))
            earlier = range(entry_bar, t - 1)
        for k in earlier:
            bar = rows[k].get(asset)
            if bar is not None:
                lo = max(lo, past(bar[extreme], ref))
        if lo >= hi + TOL or hi <= 0:
            return None
    if lo >= hi + TOL:
        return None
    for step in ROUND_LEVELS:
        level = round(math.ceil(max(lo, 0.0) / step - 1e-6) * step, 10)
        if lo - TOL <= level <= hi + TOL and level > 0:
            return level
    return (max(lo, 0.0) + hi) / 2


def _words(kind: str, base: str, at_level: bool, level: float) -> str:
    where = "below" if kind == "stop-loss" else "above"
    ref = "the entry's fill price" if base == "fill" else "the entry bar's close"
    how = "at its level inside the bar" if at_level else "at the next open once a close " \
        "passed it"
    return f"exits at {level:.1%} {where} {ref}, {how}: a {kind} A does not have"
