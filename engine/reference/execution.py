"""One order against the cash: costs, rounding, the cash policy and buying power, in floats.

Each function takes plain numbers and returns plain numbers; the simulation books them.
Tolerances follow docs/semantics.md: two amounts are equal within
`max(1e-9 × max(|a|, |b|), 1e-12)`, and a sum that small is exactly zero.
"""

from __future__ import annotations

from engine.reference.rules import Rules

RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-12


def add(a: float, b: float) -> float:
    """`a + b`, exactly 0.0 when the sum is float noise relative to its terms."""
    total = a + b
    if a < 0.0:  # the larger magnitude, without calls (the reference adds millions)
        a = -a
    if b < 0.0:
        b = -b
    scale = a if a > b else b
    limit = RELATIVE_TOLERANCE * scale if scale > 1e-3 else ABSOLUTE_TOLERANCE
    return 0.0 if -limit <= total <= limit else total


def fits(cost: float, cash: float) -> bool:
    """Whether `cash` pays for `cost`, counting a cost within float noise of it as paid."""
    return cost <= cash or abs(cost - cash) <= max(
        RELATIVE_TOLERANCE * max(abs(cost), abs(cash)), ABSOLUTE_TOLERANCE)


def fee(size: float, adjusted: float, rules: Rules) -> float:
    """Fee of `size` shares at the slipped price `adjusted`."""
    return (size * adjusted * rules.fees + max(size * rules.per_share, rules.min_fee)
            + rules.fixed_fee)


def rounded(size: float, rules: Rules) -> float:
    """An order size (≥ 0) rounded to whole lots as `rules.rounding` says."""
    if rules.rounding in ("truncate", "floor"):
        return (size // rules.lot) * rules.lot if rules.lot != 1.0 else size // 1
    if rules.rounding == "nearest":
        return round(size / rules.lot) * rules.lot
    return size


def shrink(available: float, adjusted: float, rules: Rules) -> tuple[float, float, bool]:
    """The largest buy that `available` pays for: (size, fee, whether it spends it exactly).

    Without per-share commission the fee is solved with the size, so the buy spends the
    whole amount. With it, the size is the largest `n` with
    `n × adj × (1 + fees) + max(n × per_share, min_fee) + fixed_fee ≤ available`.
    """
    if rules.per_share == 0.0 and rules.min_fee == 0.0:
        spend = (available - rules.fixed_fee) / (1 + rules.fees)
        size = spend / adjusted
        if rules.rounding == "none":
            return size, available - spend, True
    else:
        unit_cost = adjusted * (1 + rules.fees)
        minimum_binds = rules.per_share == 0.0 or (
            (rules.min_fee / rules.per_share) * unit_cost + rules.min_fee + rules.fixed_fee
            > available)
        if minimum_binds:
            size = (available - rules.fixed_fee - rules.min_fee) / unit_cost
        else:
            size = (available - rules.fixed_fee) / (unit_cost + rules.per_share)
    if rules.rounding != "none":
        size = rounded(size, rules)
    return size, fee(size, adjusted, rules), False


def buy(size: float, price: float, cash: float, headroom: float, rules: Rules
        ) -> tuple[str, str | None, float, float, float, float]:
    """A buy of `size` shares (already rounded) at `price` against `cash` plus `headroom`.

    `headroom` is what may be borrowed on top of the cash (`(max_leverage − 1) × value`).
    Returns (status, reason, size, slipped price, fee, cash after).
    """
    adjusted = price * (1 + rules.slippage)
    if size <= ABSOLUTE_TOLERANCE:
        return "noop", None, 0.0, adjusted, 0.0, cash
    cost_fee = fee(size, adjusted, rules)
    cost = size * adjusted + cost_fee
    if rules.cash_policy == "allow_negative":
        return "filled", None, size, adjusted, cost_fee, add(cash, -cost)
    available = cash + headroom
    if fits(cost, available):
        return "filled", None, size, adjusted, cost_fee, add(available, -cost) - headroom
    if rules.cash_policy == "reject" or available <= 0.0:
        return "rejected", rules.reject_reason, 0.0, adjusted, 0.0, cash
    size, cost_fee, exact = shrink(available, adjusted, rules)
    if size <= ABSOLUTE_TOLERANCE:
        return "rejected", rules.reject_reason, 0.0, adjusted, 0.0, cash
    left = 0.0 if exact else add(available, -(size * adjusted + cost_fee))
    return "filled", "shrunk_to_cash", size, adjusted, cost_fee, left - headroom


def sell(size: float, price: float, cash: float, rules: Rules
         ) -> tuple[str, str | None, float, float, float, float]:
    """A sell of `size` shares (already capped and rounded) at `price`.

    Returns (status, reason, size, slipped price, fee, cash after).
    """
    adjusted = price * (1 - rules.slippage)
    if size <= ABSOLUTE_TOLERANCE:
        return "noop", None, 0.0, adjusted, 0.0, cash
    cost_fee = fee(size, adjusted, rules)
    proceeds = add(size * adjusted, -cost_fee)
    if proceeds < 0:
        return "rejected", "fee_exceeds_proceeds", 0.0, adjusted, 0.0, cash
    return "filled", None, size, adjusted, cost_fee, add(cash, proceeds)
