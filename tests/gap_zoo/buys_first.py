"""Buys before sells: each batch spends the cash it has before the sells raise more.

The batch's sequence is reordered, buys (smallest first) then sells (largest first), and
run through the real `execute_batch`. Under a cash shortfall the buys shrink or are
rejected while the sells' proceeds sit idle until the next rebalance.
"""

from __future__ import annotations

import contextlib

import numpy as np

from engine.core.execution import BatchResult, execute_batch
from tests.gap_zoo import run_under


def execute_buys_first(delta: np.ndarray, position: np.ndarray, cash: float,
                       price: np.ndarray, sequence: np.ndarray, *rest) -> BatchResult:
    """`execute_batch` with the buys of `sequence` moved before its sells."""
    buying = delta[sequence] > 0
    reordered = np.concatenate([sequence[buying], sequence[~buying]])
    return execute_batch(delta, position, cash, price, reordered, *rest)


@contextlib.contextmanager
def patched():
    """The loop executes buys before sells while this is active."""
    from unittest import mock

    with mock.patch("engine.core.loop.execute_batch", execute_buys_first):
        yield


run = run_under(patched)
