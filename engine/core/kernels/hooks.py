"""Profile hooks: the points where a profile changes the loop (engine/core/profiles.py).

Each hook is one kernel that reads its switch from the settings (`KernelSettings`):
`screen` (backtrader's submission check before a fill), `drop_without_bar` (vectorbt drops
an order whose asset has no bar), `sequence` (by order value or by submission),
`volume_cap` and `still_open` (zipline fills at most a share of a bar's volume and keeps the
rest open). Sizing targets at the decision (backtrader, zipline) is
`sizing.decision_shares`, chosen by `decision_sizing`.
"""

from __future__ import annotations

import numpy as np

from engine.core.book import close_nb
from engine.core.kernels import argsort_stable, kernel
from engine.core.kernels.execution import submission_check
from engine.core.records import OrderStatus, Reason, Sequence


@kernel
def screen(s, bar, slots, orders, cash, last_close_before) -> None:
    """Refuse (as margin) the orders of the last decision whose pseudo-execution, in
    submission order at their creation close, overdraws the cash before this bar."""
    if not s.submission_check or bar == 0:
        return
    assets = np.empty(len(slots), dtype=np.int64)
    ids = np.empty(len(slots), dtype=np.int64)
    count = 0
    for j in range(len(slots)):
        oid = slots[j]["order_id"]
        if oid >= 0 and orders[oid]["created_bar"] == bar - 1:
            assets[count] = j
            ids[count] = oid
            count += 1
    by_id = np.empty(count, dtype=np.int64)
    argsort_stable(ids, count, by_id, np.empty(count, dtype=np.int64))
    assets = assets[by_id]
    quantity = np.empty(count)
    price = np.empty(count)
    for i in range(count):
        quantity[i] = slots[assets[i]]["add_shares"]
        price[i] = last_close_before[assets[i]]
    accepted = np.empty(count, dtype=np.bool_)
    submission_check(count, quantity, price, cash, s.fees, accepted)
    for i in range(count):
        if not accepted[i]:
            close_nb(slots, orders, bar, assets[i], OrderStatus.rejected, Reason.margin, 0.0)


@kernel
def drop_without_bar(s, bar, slots, orders, has_bar) -> None:
    """Reject (no_price) the due orders whose asset has no bar now (vectorbt's way)."""
    if not s.drop_without_bar:
        return
    for j in range(len(slots)):
        slot = slots[j]
        if slot["order_id"] >= 0 and slot["due_bar"] <= bar and not has_bar[j]:
            close_nb(slots, orders, bar, j, OrderStatus.rejected, Reason.no_price, 0.0)


@kernel
def sequence(s, count, order_value, order_id, order, buffer) -> None:
    """Execution order of a batch into `order`: by approximate order value, ascending and
    stable (sells first, largest first; then buys, smallest first), or by submission (order
    id)."""
    if s.sequence == Sequence.submission:
        argsort_stable(order_id, count, order, buffer)
    else:
        argsort_stable(order_value, count, order, buffer)


@kernel
def volume_cap(s, volume: float) -> float:
    """Most shares one order may fill in a bar of `volume` (inf without a cap)."""
    if s.volume_limit > 0:
        return np.floor(s.volume_limit * volume)
    return np.inf


@kernel
def still_open(s, delta: float, filled: float, cap: float, status: int) -> bool:
    """Whether an order cut short by the volume cap keeps its rest open for later bars."""
    if s.volume_limit <= 0 or status == OrderStatus.rejected:
        return False
    return abs(delta - filled) > 1e-9 and abs(filled) >= cap
