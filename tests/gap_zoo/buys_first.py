"""Buys before sells: each batch spends the cash it has before the sells raise more.

The kernel refuses a sell sequenced after a buy, so the batch is split in two calls of the
real `execute_batch`: the buys (smallest first) against the cash on hand, then the sells
(largest first), which need no cash. Under a cash shortfall the buys shrink or are
rejected while the sells' proceeds sit idle until the next rebalance.
"""

from __future__ import annotations

import contextlib

import numpy as np

from engine.execution import BatchResult, Costs, execute_batch
from tests.gap_zoo import run_under


def execute_buys_first(
    delta: np.ndarray, position: np.ndarray, cash: float, price: np.ndarray,
    sequence: np.ndarray, costs: Costs, integer: bool, cash_policy: str, allow_short: bool,
) -> BatchResult:
    """`execute_batch` with the buys of `sequence` moved before its sells."""
    buying = delta[sequence] > 0
    buys, sells = sequence[buying], sequence[~buying]
    bought, sold = (
        execute_batch(delta[part], position[part], cash, price[part], np.arange(len(part)),
                      costs, integer, cash_policy, allow_short)
        for part in (buys, sells)
    )
    return BatchResult(
        sequence=np.concatenate([buys[bought.sequence], sells[sold.sequence]]),
        quantity=np.concatenate([bought.quantity, sold.quantity]),
        price=np.concatenate([bought.price, sold.price]),
        fee=np.concatenate([bought.fee, sold.fee]),
        status=np.concatenate([bought.status, sold.status]),
        reason=np.concatenate([bought.reason, sold.reason]),
        filled=np.concatenate([bought.filled, len(buys) + sold.filled]),
    )


@contextlib.contextmanager
def patched():
    """The loop executes buys before sells while this is active."""
    from unittest import mock

    with mock.patch("engine.loop.execute_batch", execute_buys_first):
        yield


run = run_under(patched)
