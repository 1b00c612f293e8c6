"""The open vocabulary of the trade-gap analysis: causes, and the switches that produce them.

A `Switch` is one way an engine departs from the trusted side's rules, with its
parameters: a change of `Rules` fields (timing as delay and price point, sequencing,
sizing basis, cash checks, accumulation in its forms, stale positions, rounding, volume
caps, duplicate rows; with position rules, how their exits are armed and filled: the
intra-bar path, stop priority, stop base, trailing reference, stop slippage, gap fill
price, entry-bar check) or a change of the engine's hidden state from some bar on (fills
booked twice at one bar; fees charged at another share of what is logged since a bar).
docs/trade_gap.md shows one example of each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.reference import Rules, rules_for
from engine.reference.rules import COUNTS, combined_booking

CAUSES = (
    "timing", "look_ahead", "fill_price", "fee", "rounding", "sizing_basis", "cash_limit",
    "sequencing", "duplicate_fill", "accumulation", "stale_position", "belief_drift",
    "volume_limit",
    "missing_fill", "short_selling", "intrabar_path", "stop_priority", "stop_base",
    "trail_reference", "stop_slippage", "gap_fill", "entry_bar_check", "exit_rule", "propagated",
    "unexplained",
)

WHAT_WENT_WRONG = {
    "timing": "filled at another time",
    "look_ahead": "filled before its decision's close (look-ahead)",
    "fill_price": "filled at another price",
    "fee": "charged other fees",
    "rounding": "rounded share quantities differently",
    "sizing_basis": "sized orders on another basis",
    "cash_limit": "checked cash differently",
    "sequencing": "executed a bar's orders in another sequence",
    "duplicate_fill": "applied fills twice",
    "accumulation": "traded whole targets instead of deltas, so positions accumulated",
    "stale_position": "sized orders from stale positions",
    "belief_drift": "sized from positions that drift from its own book",
    "volume_limit": "capped fills at a share of the bar's volume",
    "missing_fill": "dropped orders",
    "short_selling": "sold short",
    "intrabar_path": "read the path inside a bar in another order",
    "stop_priority": "ordered a stop and its take-profit otherwise in a bar reaching both",
    "stop_base": "set its exits' levels from another base price",
    "trail_reference": "moved its trailing stops with other prices",
    "stop_slippage": "filled stops with other slippage",
    "gap_fill": "filled exits gapped past at another price (their level or the open)",
    "entry_bar_check": "tried a position's exits from another bar (the entry bar or the next)",
    "exit_rule": "exited positions by a rule A does not have",
    "unexplained": "differs in ways the vocabulary does not explain",
}


@dataclass(frozen=True)
class Switch:
    """One departure from the trusted rules: its cause, words, and what it changes.

    `changes` are `Rules` fields. A state switch (`state` set) also changes the book the
    engine believes it has, from bar `since` on: "booked_twice" adds the fills of bar
    `since` once more; "fees_charged" charges every fee paid since `since` at another
    share of what is logged (`fee_charged`); "fees_logged" gives back what the log shows
    of each fee beyond what was charged (`fee_logged`); "belief" has targets netted
    against the positions of `belief`, a shape of belief (engine/gap/belief.py).
    """

    cause: str
    words: str
    changes: tuple[tuple[str, Any], ...] = ()
    state: str | None = None
    since: int = -1
    belief: Any = None

    def apply(self, rules: Rules, bar: int | None = None) -> Rules:
        """`rules` with this switch's changes (a one-bar switch's only at its own bar). A
        change of booking adds its counts to the ones `rules` has: a fill logged twice by
        one switch and booked twice by another is both."""
        if not self.changes or (self.state in ONE_BAR and bar != self.since):
            return rules
        changes = dict(self.changes)
        if "booking" in changes:
            changes["booking"] = combined_booking(rules.booking, changes["booking"])
        return rules.with_(**changes)

    @property
    def fields(self) -> set[str]:
        """What it sets: its `Rules` fields (a booking's counts as "logged" and "booked",
        which two switches may set apart) and its hidden state."""
        out = {self.state} if self.state else set()
        for name, value in self.changes:
            if name == "booking":
                logged, booked, _ = COUNTS[value]
                out |= ({"logged"} if logged > 1 else set()) | ({"booked"} if booked > 1
                                                                 else set())
            else:
                out.add(name)
        return out


def rule_switches(trusted: Rules, observed: Rules, rounds: bool = False) -> list[Switch]:
    """Every single-field departure from `trusted` (`observed`: the side's visible fields;
    `rounds`: whether whole lots show anywhere in its log)."""
    switches = []
    for delay in (0, 1, 2, 3):
        if delay != trusted.delay:
            switches.append(timing_switch(delay))
    for sequence, words in (("value", "sells first, buys in ascending value"),
                            ("column", "in column (asset) order"),
                            ("submission", "in submission order"),
                            ("buys_first", "buys before sells")):
        if sequence != trusted.sequence:
            switches.append(Switch("sequencing", words, (("sequence", sequence),)))
    # a stale balance is another cash check (it replaces the cash policy's switches);
    # listed before the policies, as the smaller departure: it lets through only buys that
    # fit a balance the engine had, where a looser policy lets through any buy
    switches += [
        Switch("cash_limit", "each buy checked against the cash at the batch's first buy",
               (("cash_check", "first_buy"), ("cash_policy", trusted.cash_policy))),
        Switch("cash_limit", "each buy checked against the cash before the batch",
               (("cash_check", "batch_start"), ("cash_policy", trusted.cash_policy))),
        Switch("cash_limit", "each buy checked against the opening balance",
               (("cash_check", "opening"), ("cash_policy", trusted.cash_policy))),
    ]
    for policy in ("shrink", "reject", "allow_negative"):
        if policy != trusted.cash_policy:
            switches.append(Switch("cash_limit", f"cash policy {policy}",
                                   (("cash_policy", policy),)))
    for valuation, words in (("previous_close", "book valued at the previous close"),
                             ("decision_close", "book valued at the decision close"),
                             ("previous_close_value", "book valued at the previous close, "
                              "targets priced at the fill (marks not updated first)")):
        if valuation != trusted.valuation:
            switches.append(Switch("sizing_basis", words, (("valuation", valuation),)))
    switches.append(Switch("sizing_basis", "book value refreshed after every order",
                           (("value_refresh", not trusted.value_refresh),)))
    held = "last_close" if trusted.held_valuation != "last_close" else "last_fill_price"
    switches.append(Switch("sizing_basis", f"a held asset without a bar valued at its "
                           f"{held.replace('_', ' ')}", (("held_valuation", held),)))
    for sizing, words in (("fill", "targets sized at the fill"),
                          ("decision_floor", "sized at the decision close (value delta)"),
                          ("decision_truncate", "sized at the decision close (share delta)")):
        if sizing != trusted.sizing:
            switches.append(Switch("sizing_basis", words, (("sizing", sizing),)))
    switches += [
        Switch("accumulation", "position read as zero", (("position_basis", "zero"),)),
        Switch("accumulation", "whole target bought on held assets",
               (("whole_targets", True),)),
        Switch("accumulation", "exits lost (targets of 0 never ordered)",
               (("exits_lost", True),)),
        Switch("stale_position", "positions read one batch late",
               (("position_basis", "stale"), ("stale_lag", 1))),
        Switch("stale_position", "positions read two batches late",
               (("position_basis", "stale"), ("stale_lag", 2))),
        Switch("missing_fill", "orders without a bar dropped",
               (("drop_without_bar", not trusted.drop_without_bar),)),
        Switch("duplicate_fill", "every fill logged and booked twice",
               (("booking", "twice_logged"),)),
        Switch("duplicate_fill", "open orders not netted (a waiting order and the next fill)",
               (("netting", not trusted.netting),)),
        Switch("duplicate_fill", "open orders not netted (every holding sent to 0 before the "
               "rebalance's targets, both orders filled)",
               (("netting", False), ("close_first", True))),
        Switch("short_selling", "sells not capped at the position",
               (("allow_short", not trusted.allow_short),)),
        Switch("cash_limit", "buys on margin (2× leverage)", (("max_leverage", 2.0),)),
    ]
    switches += stop_switches(trusted)
    if observed.rounding != "none" or rounds:
        for mode in ("truncate", "floor", "nearest"):
            if mode != observed.rounding:
                switches.append(Switch("rounding", f"shares rounded by {mode}",
                                       (("rounding", mode),)))
    for limit in (0.1, 0.05, 0.025, 0.25):
        if limit != trusted.volume_limit:
            switches.append(Switch("volume_limit", f"fills capped at {limit:.1%} of volume",
                                   (("volume_limit", limit),)))
    return switches


def stop_switches(trusted: Rules) -> list[Switch]:
    """How the position rules' exits may fill otherwise (none without position rules):
    the path inside a bar, which of a stop and its take-profit fills when both are
    reached, the base of the levels, what moves a trailing stop, slippage on stops, a
    gap's fill price, and whether the entry bar is checked."""
    if not trusted.position_rules:
        return []
    switches = []
    if not trusted.submission_check:  # exits free cash a later decision's screen may use
        switches.append(SCREEN)
    if trusted.stop_loss or trusted.trailing_stop:  # before the path: ties take it (peers')
        switches.append(Switch("stop_priority", "stop-loss before take-profit in a bar that "
                               "reaches both" if not trusted.stop_first else
                               "stop-loss and take-profit in the order the path reaches them",
                               (("stop_first", not trusted.stop_first),)))
        if trusted.take_profit:  # the family's third member: the take-profit always first
            switches.append(Switch("stop_priority", "take-profit before stop-loss in a bar "
                                   "that reaches both, even when the open gapped past the stop",
                                   (("take_profit_first", True), ("stop_first", False))))
        switches.append(Switch("stop_slippage", "stops filled without slippage"
                               if trusted.stop_slippage else "stops filled with slippage",
                               (("stop_slippage", not trusted.stop_slippage),)))
    switches += [Switch("intrabar_path", words, (("intrabar_path", path),))
                 for path, words in (("nearest", "the extreme nearer the open first"),
                                     ("ohlc", "the high first (open, high, low, close)"),
                                     ("olhc", "the low first (open, low, high, close)"))
                 if path != trusted.intrabar_path]
    base = "close" if trusted.stop_base == "fill" else "fill"
    switches.append(Switch("stop_base", "exit levels from the entry bar's close" if
                           base == "close" else "exit levels from the entry's fill price",
                           (("stop_base", base),)))
    if trusted.trailing_stop:
        source = "close" if trusted.trail_source == "high_low" else "high_low"
        switches.append(Switch("trail_reference", "trailing stops follow the closes" if
                               source == "close" else "trailing stops follow the highs/lows",
                               (("trail_source", source),)))
    switches.append(Switch("gap_fill", "exits gapped past filled at their level" if
                           trusted.gap_fill == "open" else "exits gapped past filled at the open",
                           (("gap_fill", "level" if trusted.gap_fill == "open" else "open"),)))
    if trusted.stop_loss or trusted.take_profit or trusted.trailing_stop:
        switches.append(Switch("entry_bar_check", "exits tried on the entry bar" if
                               not trusted.entry_bar_check else "exits not tried on the entry bar",
                               (("entry_bar_check", not trusted.entry_bar_check),)))
    return switches


def timing_switch(delay: int) -> Switch:
    """Fills `delay` bars after the decision (0: its own bar), at the price point the fills
    show. A fill at the decision's own bar is look-ahead: the decision used that close.
    """
    cause = "look_ahead" if delay == 0 else "timing"
    when = ("at the decision's own bar" if delay == 0 else
            "at the next bar" if delay == 1 else f"{delay} bars after the decision")
    return Switch(cause, f"filled {when}", (("delay", delay),))


SCREEN = Switch("cash_limit", "orders screened at submission (backtrader)",
                (("submission_check", True), ("reject_reason", "margin")))


def booked_twice(bar: int, timestamp: Any) -> Switch:
    return Switch("duplicate_fill", f"fills of {day(timestamp)} booked twice (logged once)",
                  state="booked_twice", since=bar)


def booked_twice_executing(bar: int, timestamp: Any) -> Switch:
    return Switch("duplicate_fill", f"fills of {day(timestamp)} booked twice as they "
                  "executed (logged once)", (("booking", "twice_executing"),),
                  state="booked_twice_executing", since=bar)


def booked_twice_since(bar: int, timestamp: Any, executing: bool = False,
                       side: str = "all") -> Switch:
    """Every fill since `bar` (or every sell, or every buy: `side`) logged once and booked
    twice: after its batch, or as it executes (the batch's later orders see the cash and
    positions it booked twice)."""
    when = " as it executes" if executing else ""
    what = {"all": "fill", "sells": "sell", "buys": "buy"}[side]
    sided = (("booked_side", side),) if side != "all" else ()
    return Switch("duplicate_fill", f"every {what} booked twice{when} (logged once) since "
                  f"{day(timestamp)}",
                  (("booking", "twice_executing" if executing else "twice_hidden"), *sided),
                  state="booked_twice_since", since=bar)


def one_sided(switch: Switch) -> str | None:
    """The side of the fills a span books twice when it is one side only (sells, buys)."""
    side = dict(switch.changes).get("booked_side", "all")
    return None if side == "all" else side


def logged_twice_since(bar: int, timestamp: Any) -> Switch:
    """Every fill since `bar` logged twice and booked once (a duplicated row)."""
    return Switch("duplicate_fill", f"every fill logged twice (booked once) since "
                  f"{day(timestamp)}", (("booking", "logged_twice"),),
                  state="logged_twice_since", since=bar)


# State switches whose span multiplies a side's own book changes by what the engine booked
# over what it logged (`booked_over_logged`).
SPANS = ("booked_twice_since", "logged_twice_since")


def booked_over_logged(switch: Switch) -> float:
    """What a span's switch multiplies the logged changes by: the reference's counts of its
    booking (`COUNTS`), booked over logged (2 for a fill booked twice, ½ for a row logged
    twice)."""
    logged, booked, _ = COUNTS[dict(switch.changes)["booking"]]
    return booked / logged


# What cash paid of each logged fee, in words: never, twice.
FEE_SHARES = {0.0: "fees left out of cash", 2.0: "fees charged twice (logged once)"}


def fees_charged_since(bar: int, timestamp: Any, share: float) -> Switch:
    """Every fee since `bar` charged to cash at `share` times what is logged (FEE_SHARES)."""
    return Switch("sizing_basis", f"{FEE_SHARES[share]} since {day(timestamp)}",
                  (("fee_charged", share),), state="fees_charged", since=bar)


def fees_logged_since(bar: int, timestamp: Any, multiple: float) -> Switch:
    """Every fee since `bar` logged at `multiple` times what the engine charged and sized
    its buys with (a log that sums a commission and a tax it already includes)."""
    return Switch("fee", f"fees logged at {multiple:.4g}× what cash paid since {day(timestamp)}",
                  (("fee_logged", multiple),), state="fees_logged", since=bar)


def charged_share(switch: Switch) -> float:
    """What cash paid of each logged fee under a fee switch: its `fee_charged`, or one
    over its `fee_logged` (the book rebuilt from the log gives back the rest)."""
    changes = dict(switch.changes)
    return changes["fee_charged"] if "fee_charged" in changes else 1.0 / changes["fee_logged"]


FEE_FIELDS = ("fees", "per_share", "min_fee", "fixed_fee")


def logged_multiple(logged: dict, trusted: Rules) -> float | None:
    """The one multiple (other than 1) of the trusted fee model that a logged fee model (its
    `Rules` fields) is, every field alike, else None: what a log that multiplies the fees
    it charged shows (`fees_logged_since` is proposed only at that multiple; a free
    multiple of any fee model would absorb other faults)."""
    ratios = []
    for name in FEE_FIELDS:
        mine, theirs = logged[name], getattr(trusted, name)
        if theirs == 0.0:
            if mine != 0.0:
                return None
        else:
            ratios.append(mine / theirs)
    if not ratios or ratios[0] <= 0.0 or abs(ratios[0] - 1.0) <= 1e-9:
        return None
    if any(abs(ratio - ratios[0]) > 1e-9 * ratios[0] for ratio in ratios):
        return None
    return ratios[0]


def fees_out_of_cash_once(bar: int, timestamp: Any) -> Switch:
    return Switch("sizing_basis", f"the fees of {day(timestamp)} left out of cash",
                  (("fee_charged", 0.0),), state="fees_once", since=bar)


def belief_switch(cause: str, words: str, since: int, shape: Any) -> Switch:
    """Targets netted, from bar `since` on, against the positions of a shape of belief
    (the book passes them as the last batch's positions, read one batch late)."""
    return Switch(cause, words, (("position_basis", "stale"), ("stale_lag", 1)),
                  state="belief", since=since, belief=shape)


# State switches whose rule change acts at their own bar only.
ONE_BAR = {"fees_once", "booked_twice_executing"}


def in_order(switches: Iterable[Switch]) -> list[Switch]:
    """`switches` in a fixed order, by words then onset (a set's own order changes with the
    hash seed, and the analysis must not)."""
    return sorted(switches, key=lambda s: (s.words, s.since))


def day(timestamp: Any) -> str:
    """A timestamp as text, without the time of day when it is midnight."""
    text = str(timestamp)
    return text[:10] if text.endswith("00:00:00") else text


PEER_FIELDS = ("sizing", "sequence", "submission_check", "reject_reason", "cash_policy",
               "volume_limit", "drop_without_bar", "held_valuation")
STOP_FIELDS = ("stop_first", "stop_base", "trail_source", "stop_slippage")


def peer_rule_sets(trusted: Rules, vocabulary: list[Switch]) -> list[frozenset[Switch]]:
    """For each peer profile, the switches of `vocabulary` that turn the trusted rules into
    that peer's own (its sizing, sequencing, cash checks and missing-bar handling)."""
    sets = []
    vocabulary = [*vocabulary, SCREEN]
    for profile in ("vectorbt", "backtrader", "zipline"):
        peer = rules_for({"profile": profile})
        names = PEER_FIELDS + (STOP_FIELDS if trusted.position_rules else ())
        wanted = {(name, getattr(peer, name)) for name in names
                  if getattr(peer, name) != getattr(trusted, name)}
        chosen = {s for s in vocabulary if s.changes and set(s.changes) <= wanted
                  | {(n, v) for n, v in s.changes if n == "reject_reason"}}
        covered = {change for s in chosen for change in s.changes}
        if wanted and wanted <= covered:
            sets.append(frozenset(chosen))
    return sets
