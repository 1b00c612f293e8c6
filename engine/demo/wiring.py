"""Wiring bugs: the ways an event-driven engine's parts are commonly connected wrong.

Each `Bug` is off unless listed in a `Wiring`, and acts from bar `since` on (0: from the
start): at the bars where the part it lives in runs (the strategy when it decides or
orders, the broker when it fills, the risk manager at each bar). `param` says which form.

- `double_dispatch`: the broker books a fill and the bus delivers it to the broker's
  portfolio again; param "as_executed" (the batch's later orders see it) or "after_batch".
- `second_portfolio`: the strategy reads positions from a portfolio object that never
  receives fills.
- `late_cache`: the strategy reads positions from a cache refreshed `param` (1, 2 or 3)
  batches late.
- `whole_target`: `order_target_percent` orders the whole target, not the delta (a target
  of 0 still closes the position).
- `wrong_bar`: orders are activated on the wrong bar: the decision's own close (param 0)
  or the open two bars after it (param 2), not the next open.
- `fees_twice`: the broker charges each fee and the portfolio charges it again (the log
  shows it once).
- `stale_cash`: the cash check reads a stale balance: param "first_buy", the balance
  taken at the batch's first buy, not lowered by the buys after it; "opening", the
  balance the account opened with, never refreshed.
- `risk_manager`: a risk manager places stop-loss exits nobody decided (param: the stop,
  a fraction below the entry's fill price).
- `double_log`: each fill is written to the log twice (booked once).
- `sizing_bias` (a negative control, outside the analysis's vocabulary):
  `order_target_percent` sizes targets `param` (a fraction) too large.
- `lost_order` (a negative control): the broker silently drops the `param`-th buy of
  every batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BUGS = ("double_dispatch", "second_portfolio", "late_cache", "whole_target", "wrong_bar",
        "fees_twice", "stale_cash", "risk_manager", "double_log", "sizing_bias",
        "lost_order")
DEFAULT_PARAM: dict[str, Any] = {"double_dispatch": "as_executed", "late_cache": 1,
                                 "wrong_bar": 0, "stale_cash": "first_buy",
                                 "risk_manager": 0.08, "sizing_bias": 0.01, "lost_order": 3}
DISPATCH_MODES = ("as_executed", "after_batch")


@dataclass(frozen=True)
class Bug:
    """One wiring bug, acting from bar `since` on."""

    name: str
    since: int = 0
    param: Any = None

    def __post_init__(self) -> None:
        if self.name not in BUGS:
            raise ValueError(f"bug must be one of {', '.join(BUGS)}; got {self.name!r}")
        if self.param is None and self.name in DEFAULT_PARAM:
            object.__setattr__(self, "param", DEFAULT_PARAM[self.name])
        if self.name == "double_dispatch" and self.param not in DISPATCH_MODES:
            raise ValueError(f"double_dispatch param must be one of {DISPATCH_MODES}")
        if self.name == "stale_cash" and self.param not in ("first_buy", "opening"):
            raise ValueError("stale_cash param must be first_buy or opening")
        if self.name == "late_cache" and self.param not in (1, 2, 3):
            raise ValueError("late_cache param (batches late) must be 1, 2 or 3")
        if self.name == "wrong_bar" and self.param not in (0, 2):
            raise ValueError("wrong_bar param (the bar after the decision) must be 0 or 2")
        if self.since < 0:
            raise ValueError(f"since must be a bar (0 or more), got {self.since}")

    def __str__(self) -> str:
        param = "" if self.param is None else f"={self.param}"
        return f"{self.name}{param}@{self.since}"


@dataclass(frozen=True)
class Wiring:
    """The bugs an engine is built with (none: the engine is correct)."""

    bugs: tuple[Bug, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [b.name for b in self.bugs]
        if len(names) != len(set(names)):
            raise ValueError(f"each bug at most once, got {names}")

    def on(self, name: str, bar: int) -> Bug | None:
        """The bug `name` if it acts at `bar`."""
        for bug in self.bugs:
            if bug.name == name and bar >= bug.since:
                return bug
        return None

    def without(self, name: str) -> Wiring:
        return Wiring(tuple(b for b in self.bugs if b.name != name))

    @classmethod
    def of(cls, *bugs: Bug | str) -> Wiring:
        return cls(tuple(b if isinstance(b, Bug) else Bug(b) for b in bugs))
