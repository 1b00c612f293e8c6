"""Rules: every choice an engine makes when it turns decisions into fills, one field each.

The reference runs under one `Rules` (or a different one per bar, for the gap analysis).
The defaults are tradegap's own semantics (docs/semantics.md); `rules_for` maps a backtest's
settings and profile to rules in the reference's own words, so that it stays a second,
independent reading of the same contract. The fields past the peers' switches describe
how engines commonly go wrong (fills booked twice, positions read as zero, fees never
leaving cash, ...): the gap analysis replays them to name what another engine did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from engine.reference.resting import PATHS, STOP_BASES, TRAIL_SOURCES

POINTS = ("open", "close")
ROUNDINGS = ("none", "truncate", "floor", "nearest")
SIZINGS = ("fill", "decision_floor", "decision_truncate")
VALUATIONS = ("fill_price", "previous_close", "decision_close", "previous_close_value")
SEQUENCES = ("value", "column", "submission", "buys_first")
CASH_POLICIES = ("shrink", "reject", "allow_negative")
CASH_CHECKS = ("current", "first_buy", "batch_start", "opening")
GAP_FILLS = ("open", "level")
POSITION_BASES = ("current", "zero", "stale")
# How often each fill is logged and booked, and when the extra booking happens: after the
# batch (its later orders do not see it) or as it executes (they do). Each booking as
# (times logged, times booked, the extra booking as it executes).
COUNTS = {"once": (1, 1, False), "twice_logged": (2, 2, False), "twice_hidden": (1, 2, False),
          "twice_executing": (1, 2, True), "twice_logged_executing": (2, 2, True),
          "logged_twice": (2, 1, False)}
BOOKINGS = tuple(COUNTS)
BOOKED_SIDES = ("all", "sells", "buys")  # the fills an extra booking applies to
LOGGED_TWICE = tuple(name for name, (n, _, _) in COUNTS.items() if n == 2)
BOOKED_AS_EXECUTED = tuple(name for name, (_, m, e) in COUNTS.items() if m == 2 and e)
BOOKED_AFTER_BATCH = tuple(name for name, (_, m, e) in COUNTS.items() if m == 2 and not e)


def combined_booking(current: str, added: str) -> str:
    """The booking of an engine that does both: its logging from whichever logs twice, its
    booking from whichever books twice (a duplicated row and a double dispatch together)."""
    (n1, m1, e1), (n2, m2, e2) = COUNTS[current], COUNTS[added]
    counts = (max(n1, n2), max(m1, m2), e2 if m2 > 1 else e1)
    if counts[1] == 1:
        counts = (counts[0], 1, False)
    return next(name for name, c in COUNTS.items() if c == counts)


@dataclass(frozen=True)
class Rules:
    """One engine's execution semantics, as switches the reference can flip one by one."""

    # When and at what price: a decision at the close of bar d fills at bar d + delay, at its
    # open or close. delay 0 with point "open" fills before the decision was made.
    delay: int = 1
    point: str = "open"
    # Costs of an order of n shares at the slipped price adj:
    # n × adj × fees + max(n × per_share, min_fee) + fixed_fee.
    fees: float = 0.0
    per_share: float = 0.0
    min_fee: float = 0.0
    fixed_fee: float = 0.0
    slippage: float = 0.0
    # Share quantities: how an order's size is rounded to a multiple of `lot`.
    rounding: str = "none"
    lot: float = 1.0
    # Sizing: at the fill (targets priced then), or into share orders at the decision close
    # (backtrader: the value delta over the close; zipline: the share delta; with whole
    # shares backtrader floors, zipline truncates).
    sizing: str = "fill"
    valuation: str = "fill_price"  # the prices a fill-time batch values the book and targets at
    # ("previous_close_value": the book valued at the previous close, targets priced at the
    # fill: marks not updated before the batch is sized)
    value_refresh: bool = False  # the book value is re-read after every order of a batch
    held_valuation: str = "last_close"  # a held asset without a bar: last close or last fill price
    # the share of each logged fee that leaves the cash the engine sees, as it executes: 0
    # logged but never charged, 2 charged twice (logged once)
    fee_charged: float = 1.0
    # the log's fee over what the engine charged and sized its buys with (2: a log that sums
    # a commission and the tax it already includes); the fee fields are the logged model
    fee_logged: float = 1.0
    position_basis: str = "current"  # the position a target is netted against
    whole_targets: bool = False  # a target other than 0 ordered whole, not netted (a target
    # of 0 still closes the position read): order_target_percent sizing the whole target
    stale_lag: int = 1  # with position_basis "stale": positions before this many batches ago
    exits_lost: bool = False  # targets of 0 for held assets are never ordered
    netting: bool = True  # a new order replaces (target) or adds to (delta) the open one
    close_first: bool = False  # a rebalance sends every holding to 0 before its targets (a
    # no-op when netted; without netting, a held asset has both orders)
    # Order of a batch's executions.
    sequence: str = "value"
    # Cash.
    cash_policy: str = "shrink"
    max_leverage: float = 1.0  # buying power = cash + (max_leverage − 1) × book value
    allow_short: bool = False
    # the cash each buy is checked against: the current cash, the cash at the batch's first
    # buy (not lowered by the buys after it), the cash before the batch (its sells not
    # counted), or the opening balance (CASH_CHECKS)
    cash_check: str = "current"
    submission_check: bool = False  # backtrader: pseudo-execute at submission, refuse overdrafts
    reject_reason: str = "insufficient_cash"
    # Market realities.
    volume_limit: float = 0.0  # > 0: at most this share of a bar's volume fills per bar
    drop_without_bar: bool = False  # an order whose asset has no bar when due is dropped
    # Bookkeeping.
    booking: str = "once"  # logged n, booked m times (BOOKINGS): "twice_logged" 2/2 and
    # "twice_hidden" 1/2 after the batch; "twice_executing" 1/2 and "twice_logged_executing"
    # 2/2 as each fill executes; "logged_twice" 2/1 (a duplicated row)
    booked_side: str = "all"  # the fills booked the extra time: all, sells or buys only
    # Resting orders inside a bar (engine/reference/resting.py).
    intrabar_path: str = "nearest"  # "ohlc", "olhc": the order the extremes are reached in;
    # "close": the close alone, each asset's orders there in placement order (zipline)
    tick_size: float = 0.0  # > 0: limit and stop prices rounded to it when placed (zipline)
    stop_first: bool = False  # a stop reached anywhere in the bar fills before its OCO sibling
    # A departure no profile takes, for the gap analysis: a take-profit (limit) reached
    # anywhere in the bar fills before its OCO sibling, even when the open gapped past the stop.
    take_profit_first: bool = False
    stop_base: str = "fill"  # a rule's (or bracket child's) base price: fill price or bar close
    trail_source: str = "high_low"  # what moves a trailing reference: the extremes or the close
    stop_slippage: bool = True  # off: stops fill at their level without slippage (vectorbt)
    # Departures no profile takes, for the gap analysis: a level gapped past at the open
    # fills at the level (not the open); a position's exits are tried on its entry bar.
    gap_fill: str = "open"
    entry_bar_check: bool = False
    # nautilus: a bar is four trade prices (open, extremes, close); resting orders fill at
    # their own levels there, trailing levels move one price behind.
    bar_ticks: bool = False
    # Position rules: exits of every position opened from flat (0: off).
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trailing_stop: float = 0.0
    max_bars: int = 0
    # A departure no profile takes, for the gap analysis: off, a position reversed by a fill
    # keeps its exits (a risk manager that arms only from flat and disarms only at flat).
    reversal_rearms: bool = True
    # Portfolio rules, checked when an order is placed (0: off).
    max_positions: int = 0
    max_gross: float = 0.0
    max_weight: float = 0.0
    halt_drawdown: float = 0.0

    def __post_init__(self) -> None:
        for name, allowed in (("point", POINTS), ("rounding", ROUNDINGS), ("sizing", SIZINGS),
                              ("valuation", VALUATIONS), ("sequence", SEQUENCES),
                              ("cash_policy", CASH_POLICIES),
                              ("position_basis", POSITION_BASES), ("booking", BOOKINGS),
                              ("booked_side", BOOKED_SIDES),
                              ("cash_check", CASH_CHECKS),
                              ("intrabar_path", PATHS), ("stop_base", STOP_BASES),
                              ("trail_source", TRAIL_SOURCES), ("gap_fill", GAP_FILLS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; "
                                 f"got {getattr(self, name)!r}")
        if self.delay < 0:
            raise ValueError(f"delay must be zero or more bars, got {self.delay}")
        for name in ("stop_loss", "take_profit", "trailing_stop", "max_bars", "max_positions",
                     "max_gross", "max_weight", "halt_drawdown"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be zero (off) or positive, got "
                                 f"{getattr(self, name)}")
        if self.max_leverage < 1:
            raise ValueError(f"max_leverage must be at least 1, got {self.max_leverage}")

    @property
    def position_rules(self) -> bool:
        return bool(self.stop_loss or self.take_profit or self.trailing_stop or self.max_bars)

    @property
    def portfolio_rules(self) -> bool:
        return bool(self.max_positions or self.max_gross or self.max_weight
                    or self.halt_drawdown)

    @property
    def at_decision(self) -> bool:
        """Targets become share orders at the decision (not sized at the fill)."""
        return self.sizing != "fill"

    def with_(self, **changes: Any) -> Rules:
        """These rules with `changes`; the same changes of the same rules give back the
        object made the first time (rules are values, and replays ask for the same
        variants bar after bar)."""
        if not changes:
            return self
        derived = self.__dict__.get("_derived")
        if derived is None:
            derived = {}
            object.__setattr__(self, "_derived", derived)
        key = tuple(sorted(changes.items()))
        try:
            found = derived.get(key)
        except TypeError:  # an unhashable value: made afresh
            return replace(self, **changes)
        if found is None:
            found = derived[key] = replace(self, **changes)
        return found

    def differences(self, other: Rules) -> list[str]:
        """Names of the fields whose values differ, in declaration order."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rules_for(settings: Any) -> Rules:
    """The rules of a backtest's settings (a `BacktestConfig` or its dict), profile included.

    Profiles, in the reference's words: `vectorbt` drops an order whose asset has no bar
    when it is due and values a held asset without a bar at the last fill-point price;
    `backtrader` sizes targets at the decision close by flooring the value delta, screens
    each decision's orders by a pseudo-execution before the next bar, executes in
    submission order and refuses overdrafts as `margin`; `zipline` sizes at the decision
    close by truncating the share delta, fills at most 10% of a bar's volume (the rest
    waits) and executes in submission order; `nautilus` drops an order whose asset has no
    bar when it is due and walks a bar open, high, low, close.

    Resting orders and risk rules take the settings' names (missing or None: default, 0:
    off). `stop_first` defaults to on under `vectorbt` and `backtrader`; `stop_base` to the
    entry bar's `close` under `vectorbt`; `trail_source` to `close` under `backtrader`;
    `stop_slippage` to off under `vectorbt` (its stops fill at their level);
    `intrabar_path` to `close` under `zipline`, whose limits and stops are cent-rounded
    (`tick_size`) and checked on each close.
    """
    s = settings.to_dict() if hasattr(settings, "to_dict") else dict(settings)
    fill = s.get("fill", "next_open")
    profile = s.get("profile", "tradegap")
    rules = Rules(
        delay=0 if fill == "same_close" else 1,
        point="open" if fill == "next_open" else "close",
        fees=s.get("fees", 0.0), per_share=s.get("per_share", 0.0),
        min_fee=s.get("min_fee", 0.0), fixed_fee=s.get("fixed_fee", 0.0),
        slippage=s.get("slippage", 0.0),
        rounding="truncate" if s.get("shares", "fractional") == "integer" else "none",
        cash_policy=s.get("cash_policy", "shrink"),
        max_leverage=float(s.get("max_leverage", 2.0)) if s.get("allow_leverage") else 1.0,
        allow_short=bool(s.get("allow_short", False)),
    )
    def setting(name: str, default: Any) -> Any:
        value = s.get(name)
        return default if value is None else value

    rules = rules.with_(
        intrabar_path=setting("intrabar_path", {"zipline": "close", "nautilus": "ohlc"}.get(
            profile, "nearest")),
        tick_size=0.01 if profile == "zipline" else 0.0,
        stop_first=bool(setting("stop_first", profile in ("vectorbt", "backtrader"))),
        stop_base=setting("stop_base", "close" if profile == "vectorbt" else "fill"),
        trail_source=setting("trail_source", "close" if profile == "backtrader" else "high_low"),
        stop_slippage=bool(setting("stop_slippage", profile != "vectorbt")),
        **{name: float(setting(name, 0.0)) for name in (
            "stop_loss", "take_profit", "trailing_stop", "max_gross", "max_weight",
            "halt_drawdown")},
        max_bars=int(setting("max_bars", 0)), max_positions=int(setting("max_positions", 0)),
    )
    if profile == "vectorbt":
        return rules.with_(drop_without_bar=True, held_valuation="last_fill_price")
    if profile == "backtrader":
        return rules.with_(sizing="decision_floor", sequence="submission",
                           submission_check=True, reject_reason="margin")
    if profile == "zipline":
        return rules.with_(sizing="decision_truncate", sequence="submission", volume_limit=0.1)
    if profile == "nautilus":
        return rules.with_(drop_without_bar=True, bar_ticks=True)
    return rules
