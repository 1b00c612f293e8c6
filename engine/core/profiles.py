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
  rejected as `margin`.
- `zipline`: targets are sized at the decision close from the portfolio value there,
  `value × pct / close − position` (open orders ignored, so two calls double up), truncated
  toward zero unless within 1e-4 of a whole share; fills at the next close, at most
  `int(10% × bar volume)` shares per bar with the rest carried to later bars; no cash
  check; by default 5 bp slippage and $0.001 a share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    """How one engine sizes, sequences and cash-checks target orders."""

    name: str
    decision_sizing: str | None = None  # None: at the fill; "backtrader" | "zipline"
    sequence: str = "auto"  # auto: by order value; submission: by order id
    submission_check: bool = False
    reject_reason: str = "insufficient_cash"
    volume_limit: float | None = None  # fraction of a bar's volume one asset may fill
    drop_without_bar: bool = False  # an order whose asset has no bar at its fill is dropped
    requires: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def size_at_decision(self) -> bool:
        return self.decision_sizing is not None

    def check(self, settings: dict[str, Any]) -> None:
        """Raise naming the first setting this profile cannot honour."""
        for name, value in self.requires.items():
            if settings.get(name) != value:
                raise ValueError(f"profile {self.name} needs {name}={value!r}; "
                                 f"got {settings.get(name)!r}")


PROFILES = {
    "tradegap": Profile("tradegap"),
    "vectorbt": Profile("vectorbt", drop_without_bar=True),
    "backtrader": Profile(
        "backtrader", decision_sizing="backtrader", sequence="submission",
        submission_check=True, reject_reason="margin",
        requires={"fill": "next_open", "shares": "integer", "cash_policy": "reject",
                  "slippage": 0.0, "per_share": 0.0, "min_fee": 0.0, "fixed_fee": 0.0},
    ),
    "zipline": Profile(
        "zipline", decision_sizing="zipline", sequence="submission", volume_limit=0.1,
        requires={"fill": "next_close", "shares": "integer", "cash_policy": "allow_negative"},
        defaults={"slippage": 0.0005, "per_share": 0.001},
    ),
}
