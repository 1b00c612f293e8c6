"""What an engine does with target weights, as switches the gap analysis can flip one by one.

Each field is one semantic choice; `CAUSE_OF` names the trade-gap cause that a difference in
that field produces. The defaults are tradegap's (docs/semantics.md); `sizing` and
`submission_check` model the peers' profiles (targets sized at the decision close,
backtrader's pseudo-execution, zipline's volume cap); the fault fields
model the classic bugs (fills applied twice, targets traded instead of deltas, stale
positions, fees left out of cash).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from engine.core.config import BacktestConfig

CAUSES = (
    "timing", "fill_price", "fee", "rounding", "sizing_basis", "cash_limit", "sequencing",
    "duplicate_fill", "accumulation", "stale_position", "missing_fill", "extra_fill",
    "propagated", "unexplained",
)


@dataclass(frozen=True)
class Semantics:
    """One engine's execution semantics for target-weight rebalancing."""

    fill: str = "next_open"  # next_open | next_close | same_close
    slippage: float = 0.0
    fees: float = 0.0
    per_share: float = 0.0
    min_fee: float = 0.0
    fixed_fee: float = 0.0
    rounding: str = "none"  # none | truncate (toward zero) | floor (of the signed delta)
    valuation: str = "fill_price"  # fill_price | decision_close
    fees_in_cash: bool = True  # off: fees are checked and recorded but never leave cash
    cash_policy: str = "shrink"  # shrink | reject | allow_negative
    sequence: str = "sells_first"  # sells_first | buys_first
    sizing: str = "fill"  # fill | decision_floor (backtrader) | decision_truncate (zipline)
    without_bar: str = "wait"  # wait | drop: an order whose asset has no bar at its fill
    held_valuation: str = "last_close"  # last_close | last_open: a held asset with no bar
    volume_limit: float = 0.0  # > 0: at most this share of a bar's volume fills (zipline)
    submission_check: bool = False  # backtrader's pseudo-execution before the fill
    duplicate_fills: bool = False  # each batch sized once, every fill booked twice
    position_basis: str = "current"  # current | zero (target, not delta) | previous (stale)

    @classmethod
    def from_config(cls, config: BacktestConfig) -> Semantics:
        """The semantics of a `BacktestConfig` run by tradegap's engine (with its profile)."""
        sizing = {"backtrader": "decision_floor", "zipline": "decision_truncate"}
        return cls(
            fill=config.fill, slippage=config.slippage, fees=config.fees,
            per_share=config.per_share, min_fee=config.min_fee, fixed_fee=config.fixed_fee,
            rounding="truncate" if config.integer_shares else "none",
            cash_policy=config.cash_policy,
            sizing=sizing.get(config.profile, "fill"),
            submission_check=config.semantics.submission_check,
            without_bar="drop" if config.semantics.drop_without_bar else "wait",
            held_valuation=("last_open" if config.semantics.drop_without_bar
                            and config.fill == "next_open" else "last_close"),
            volume_limit=config.semantics.volume_limit or 0.0,
        )

    def with_(self, **changes: Any) -> Semantics:
        return replace(self, **changes)

    def differences(self, other: Semantics) -> list[str]:
        """Names of the fields that differ, in declaration (attribution) order."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CAUSE_OF = {
    "fill": "timing",
    "slippage": "fill_price",
    "fees": "fee",
    "per_share": "fee",
    "min_fee": "fee",
    "fixed_fee": "fee",
    "rounding": "rounding",
    "valuation": "sizing_basis",
    "fees_in_cash": "sizing_basis",
    "cash_policy": "cash_limit",
    "sequence": "sequencing",
    "sizing": "sizing_basis",
    "without_bar": "missing_fill",
    "held_valuation": "sizing_basis",
    "volume_limit": "timing",
    "submission_check": "cash_limit",
    "duplicate_fills": "duplicate_fill",
    "position_basis": "accumulation",  # `previous` is reported as stale_position
}


def cause_of(field: str, value: Any) -> str:
    """The cause a difference in `field` (taking `value` on the diverging side) produces."""
    if field == "position_basis" and value == "previous":
        return "stale_position"
    return CAUSE_OF[field]
