"""Faults: the per-bar verdicts of one side turned into events with an onset and an end.

A hidden switch is a fault from the first bar it was needed (a state fault from the bar
its change began) until a later bar refutes it; bars where it made no difference either
way (the fills are the same without it) neither touch nor end it, and a switch that never
changed a fill is no fault at all. A visible difference
(price point, slippage, fees, rounding) is a fault over the run of fill bars that show it;
a one-off price or fee is a fault of its own bar. Bars nothing reproduces are
`unexplained` faults. A fault's amount is its cause's share of the gap over its span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.gap.logs import FillLog
from engine.gap.observe import Observed
from engine.gap.verdicts import Diagnosis, departures
from engine.reference import Bars, Rules

VISIBLE = {"timing": "point", "fill_price": "slippage", "rounding": "rounding", "fee": "fees"}


@dataclass
class Fault:
    """One fault of one side: what, from when to when, where it showed, what it cost."""

    side: str
    cause: str
    words: str
    onset: int
    end: int | None
    touched: list[int] = field(default_factory=list)
    amount: float = 0.0
    timestamps: list = field(default_factory=list, repr=False)
    spans: list[tuple[int, int | None]] = field(default_factory=list)  # (onset, end) each

    def to_dict(self, gap: float) -> dict[str, Any]:
        stamp = self.timestamps
        spans = self.spans or [(self.onset, self.end)]
        return {
            "side": self.side, "cause": self.cause, "what": self.words,
            "onset": stamp[self.onset],
            "end": None if self.end is None else stamp[self.end],
            "spans": [{"onset": stamp[a], "end": None if b is None else stamp[b]}
                      for a, b in spans],
            "bars_touched": len(self.touched),
            "first_bars": [stamp[t] for t in self.touched[:5]],
            "amount": self.amount,
            "share": self.amount / gap if gap else 0.0,
        }


def faults_of(side: str, diagnosis: Diagnosis, observed: Observed, trusted: Rules,
              log: FillLog, bars: Bars, per_bar: dict[str, np.ndarray]) -> list[Fault]:
    """Every fault of one side, in the order of their onsets, with their amounts."""
    stamps = bars.timestamps
    faults = _hidden(side, diagnosis) + _visible(side, observed, trusted, log, diagnosis)
    faults += _one_off(side, observed)
    faults += _unexplained(side, diagnosis)
    if diagnosis.undecided:
        bars_ = sorted(diagnosis.undecided)
        rule = diagnosis.exit_rule
        faults.append(Fault(side, rule.cause, rule.words, bars_[0], bars_[-1], bars_))
    elif observed.exit_fields:  # replayed as a rule: from its first entry, at its exits
        faults.append(Fault(side, "exit_rule", observed.exit_words, observed.exit_since,
                            None, list(observed.exit_bars)))
    for fault in faults:
        fault.timestamps = stamps
    _share_amounts(faults, per_bar, len(stamps))
    return sorted(_merged(faults), key=lambda f: (f.onset, f.cause))


def _merged(faults: list[Fault]) -> list[Fault]:
    """One fault per root cause: the spans of the same fault (same side, cause and words;
    every unexplained stretch of a side) joined into one fault that lists them."""
    groups: dict[tuple, list[Fault]] = {}
    for fault in sorted(faults, key=lambda f: f.onset):
        key = (fault.side, fault.cause, "" if fault.cause == "unexplained" else fault.words)
        groups.setdefault(key, []).append(fault)
    out = []
    for group in groups.values():
        first = group[0]
        ends = [f.end for f in group]
        merged = Fault(first.side, first.cause, first.words, first.onset,
                       None if None in ends else max(ends),
                       sorted({t for f in group for t in f.touched}),
                       sum(f.amount for f in group), first.timestamps,
                       [(f.onset, f.end) for f in group])
        if first.cause == "unexplained":
            merged.words = first.words.replace("first on", f"in {len(group)} stretch"
                                               f"{'es' if len(group) > 1 else ''}, first on")
        out.append(merged)
    return out


def _hidden(side: str, diagnosis: Diagnosis) -> list[Fault]:
    done: list[Fault] = []
    open_: dict = {}
    one_off: set[str] = set()  # a batch booked twice happened at one bar
    for t in sorted(diagnosis.verdicts):
        verdict = diagnosis.verdicts[t]
        if verdict.unexplained and not verdict.partial:
            continue
        ended = verdict.refuted | {s for s in open_ if s not in verdict.switches}
        for switch in ended:
            if switch in open_:
                done.append(open_.pop(switch))
        for switch in verdict.switches:  # (`touched` says which bars count)
            if switch in diagnosis.consequences or not diagnosis.touched(switch, t):
                continue
            if switch not in open_:
                if switch.state in ("booked_twice", "booked_twice_executing", "fees_once"):
                    one_off.add(switch.words)
                onset = switch.since if switch.state else t
                open_[switch] = Fault(side, switch.cause, switch.words, onset, None)
            open_[switch].touched.append(t)
    for fault in done:
        fault.end = fault.touched[-1] if fault.touched else fault.onset
    done += open_.values()
    for fault in done:
        if fault.words in one_off:
            fault.end = fault.onset
    return done


def _visible(side: str, observed: Observed, trusted: Rules, log: FillLog,
             diagnosis: Diagnosis) -> list[Fault]:
    faults = []
    bars = log.fill_bars
    shown = {}
    for t in bars:
        verdict = diagnosis.verdicts.get(t)
        shown[t] = departures(t, verdict.switches if verdict else frozenset(), observed,
                              trusted)
    for cause, name in VISIBLE.items():
        current: Fault | None = None
        for t in bars:
            here = observed.rules_at(t)
            if name in shown[t]:
                words = _visible_words(cause, here, trusted)
                if current is None or current.words != words:
                    if current is not None:
                        current.end = current.touched[-1]
                        faults.append(current)
                    current = Fault(side, cause, words, t, None)
                current.touched.append(t)
            elif current is not None:
                current.end = current.touched[-1]
                faults.append(current)
                current = None
        if current is not None:
            faults.append(current)
    return faults


def _visible_words(cause: str, here: dict, trusted: Rules) -> str:
    if cause == "timing":
        return f"filled at the {here['point']} instead of the {trusted.point} of the bar"
    if cause == "fill_price":
        return f"slippage {here['slippage']:.4%} instead of {trusted.slippage:.4%}"
    if cause == "rounding":
        mine = "fractional shares" if here["rounding"] == "none" else \
            f"lots of {here['lot']:g} shares"
        theirs = "fractional shares" if trusted.rounding == "none" else \
            f"lots of {trusted.lot:g} shares"
        return f"{mine} instead of {theirs}"
    mine = _fees(here["fees"], here["per_share"], here["min_fee"], here["fixed_fee"])
    theirs = _fees(trusted.fees, trusted.per_share, trusted.min_fee, trusted.fixed_fee)
    return f"fees {mine} instead of {theirs}"


def _fees(rate: float, per_share: float, minimum: float, fixed: float) -> str:
    parts = [f"{rate:.4%} of value"] if rate else []
    if per_share:
        parts.append(f"{per_share:g} a share" + (f" (min {minimum:g})" if minimum else ""))
    if fixed:
        parts.append(f"{fixed:g} an order")
    return " + ".join(parts) or "none"


def _one_off(side: str, observed: Observed) -> list[Fault]:
    faults = []
    for t in sorted(observed.overrides):
        assets = observed.overrides[t]
        prices = sorted(a for a, (p, _) in assets.items() if p is not None)
        fees = sorted(a for a, (_, f) in assets.items() if f is not None)
        if prices:
            faults.append(Fault(side, "fill_price", f"price off its model on {_few(prices)}",
                                t, t, [t]))
        if fees:
            faults.append(Fault(side, "fee", f"fee off its model on {_few(fees)}", t, t, [t]))
    return faults


def _unexplained(side: str, diagnosis: Diagnosis) -> list[Fault]:
    faults: list[Fault] = []
    for t in sorted(diagnosis.verdicts):
        assets = diagnosis.verdicts[t].unexplained
        if not assets:
            continue
        if faults and faults[-1].touched[-1] == t - 1:
            faults[-1].touched.append(t)
            faults[-1].end = t
        else:
            faults.append(Fault(side, "unexplained",
                                f"fills no rule reproduces, first on {_few(sorted(assets))}",
                                t, t, [t]))
    return faults


def _few(assets: list[str]) -> str:
    return ", ".join(assets[:3]) + (f" and {len(assets) - 3} more" if len(assets) > 3 else "")


def _share_amounts(faults: list[Fault], per_bar: dict[str, np.ndarray], n_bars: int) -> None:
    """Each cause's per-bar amount, split between its faults at their onsets."""
    by_cause: dict[str, list[Fault]] = {}
    for fault in faults:
        by_cause.setdefault(fault.cause, []).append(fault)
    for cause, group in by_cause.items():
        curve = per_bar.get(cause)
        if curve is None:
            continue
        group.sort(key=lambda f: f.onset)
        for i, fault in enumerate(group):
            start = fault.onset - 1
            stop = group[i + 1].onset - 1 if i + 1 < len(group) else n_bars - 1
            before = curve[start] if start >= 0 else 0.0
            fault.amount = float(curve[stop] - before)
