"""Profiles: named execution semantics that reproduce one peer engine's rebalancing.

A profile fixes when target orders are sized, in what sequence a batch executes, and how
cash is checked; it implies some settings and refuses others (see `check`).

- `tradegap` (the default): targets are sized at the fill, valuing the book at the fill
  price; sells first, buys in ascending order value; a buy that does not fit shrinks. An
  order for an asset with no bar waits for its next bar; a held asset without a bar is
  valued at its last close. On complete data this is exactly vectorbt's.
- `vectorbt`: the same, as `Portfolio.from_orders` (`targetpercent`, cash sharing,
  `call_seq='auto'`) does it where bars are missing too: an order whose asset has no price
  on the fill row is dropped (status `rejected`, reason `no_price`), and a held asset
  without one is valued at the last fill-point price seen (the last open for `next_open`).
- `backtrader`: targets are sized at the decision close from the broker value there, the
  value delta floored to whole shares (`int(|Δvalue| // close)`); a target of 0 closes the
  whole position. Before the next open every order is pseudo-executed in submission order
  at its creation price against the cash then, and rejected as `margin` when that cash
  goes negative (the rejected order's cost stays subtracted, as backtrader's does); the
  accepted orders then fill at the open in submission order, a buy that does not fit being
  rejected as `margin`. backtrader's broker has no leverage: the profile refuses
  `allow_leverage`.
- `zipline`: targets are sized at the decision close from the portfolio value there,
  `value × pct / close − position` (open orders ignored, so two calls double up), truncated
  toward zero unless within 1e-4 of a whole share; fills at the next close, at most
  `int(10% × bar volume)` shares per bar with the rest carried to later bars; no cash
  check; by default 5 bp slippage and $0.001 a share.
- `nautilus`: nautilus_trader's bar execution. A bar's market orders fill at its close
  (`same_close`), whole shares, no cash check (a margin account); an order whose asset
  has no bar at the decision is dropped. Resting orders follow the bar as open → high →
  low → close (`ohlc`, nautilus's fixed order; `nearest` is near its adaptive one).

Resting orders (docs/semantics.md, "Resting orders and risk rules"): a profile gives the
defaults of `stop_first` (a stop reached anywhere in the bar fills before its OCO sibling:
vectorbt and backtrader), `stop_base` (the price the risk rules' levels are fractions of:
the fill price, or the entry bar's close under vectorbt), `trail_source` (what moves a
trailing stop: the bar's high/low, or the close under backtrader, whose StopTrail follows
the close) and `stop_slippage` (vectorbt's default `stop_exit_price` fills a stop at its
level without slippage), `intrabar_path` (where resting orders are checked: along the bar's
path, or under `zipline` at its close only, in placement order with the market orders of
the close, the volume cap shared and a met condition sticky) and `tick_size` (zipline rounds
limit and stop prices to the cent when they are placed, `asymmetric_round_price`: a buy
limit and a sell stop towards the lower cent unless within 0.05 of a cent above it, the
others mirrored; 0: not rounded). The volume cap (`volume_limit`) is one budget per asset
and bar shared by all its fills, resting ones too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.records import REASON_CODES, DecisionSizing, Sequence


@dataclass(frozen=True)
class Profile:
    """One engine's semantics: the choice it makes at each hook of the compiled loop.

    Hooks (engine/core/kernels/hooks.py and sizing.py): `submission_check` screens the last
    decision's orders before a fill; `decision_sizing` sizes targets at the decision close
    (None: at the fill); `sequence` orders a batch; `volume_limit` caps a fill at a share
    of the bar's volume and keeps the rest open; `drop_without_bar` drops an order whose
    asset has no bar at its fill; `held_valuation` prices a held asset without a bar.
    """

    name: str
    decision_sizing: str | None = None
    sequence: str = "auto"
    submission_check: bool = False
    reject_reason: str = "insufficient_cash"
    volume_limit: float | None = None
    drop_without_bar: bool = False
    held_valuation: str = "last_close"  # or "last_fill_price": the last open for next_open
    stop_first: bool = False  # a stop reached in the bar fills before its OCO sibling
    stop_base: str = "fill"  # or "close": the entry bar's close
    trail_source: str = "high_low"  # or "close"
    stop_slippage: bool = True  # stops fill with slippage (capped at the bar)
    intrabar_path: str = "nearest"  # or "close": resting orders see each bar's close only
    tick_size: float = 0.0  # > 0: limit and stop prices rounded to it when placed (zipline)
    bar_ticks: bool = False  # the bar as four prices, fills at the levels (nautilus)
    requires: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def size_at_decision(self) -> bool:
        return self.decision_sizing is not None

    @property
    def sequence_code(self) -> int:
        return getattr(Sequence, self.sequence)

    @property
    def decision_code(self) -> int:
        return getattr(DecisionSizing, self.decision_sizing or "at_fill")

    @property
    def reject_code(self) -> int:
        return REASON_CODES[self.reject_reason]

    def held_prices(self, market: Any, fill: str) -> np.ndarray:
        """(T, N) price at each bar that values a held asset without a bar at the next
        bar's open fill: its last close, or its last open (`last_fill_price`)."""
        if self.held_valuation == "last_fill_price" and fill == "next_open":
            return market.last_open
        return market.last_close

    def check(self, settings: dict[str, Any]) -> None:
        """Raise naming the first setting this profile cannot honour."""
        for name, value in self.requires.items():
            if settings.get(name) != value:
                raise ValueError(f"profile {self.name} needs {name}={value!r}; "
                                 f"got {settings.get(name)!r}")


PROFILES = {
    "tradegap": Profile("tradegap"),
    "vectorbt": Profile("vectorbt", drop_without_bar=True, held_valuation="last_fill_price",
                        stop_first=True, stop_base="close", stop_slippage=False),
    "backtrader": Profile(
        "backtrader", decision_sizing="backtrader", sequence="submission",
        submission_check=True, reject_reason="margin", stop_first=True, trail_source="close",
        requires={"fill": "next_open", "shares": "integer", "cash_policy": "reject",
                  "slippage": 0.0, "per_share": 0.0, "min_fee": 0.0, "fixed_fee": 0.0,
                  "allow_leverage": False},
    ),
    "zipline": Profile(
        "zipline", decision_sizing="zipline", sequence="submission", volume_limit=0.1,
        intrabar_path="close", tick_size=0.01,
        requires={"fill": "next_close", "shares": "integer", "cash_policy": "allow_negative"},
        defaults={"slippage": 0.0005, "per_share": 0.001},
    ),
    "nautilus": Profile(
        "nautilus", drop_without_bar=True, intrabar_path="ohlc", bar_ticks=True,
        requires={"fill": "same_close", "shares": "integer", "cash_policy": "allow_negative",
                  "slippage": 0.0, "per_share": 0.0, "min_fee": 0.0, "fixed_fee": 0.0},
    ),
}
