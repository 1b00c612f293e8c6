"""Fills applied twice: each fill is logged twice and booked twice into cash and positions.

The batch kernel executes as usual (its cash check sees each buy once); the loop then
lists every filled order twice, and a ledger that books rows one by one counts both.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from engine.core.execution import BatchResult, execute_batch
from engine.core.ledger import Ledger
from tests.gap_zoo import run_under


class RowByRowLedger(Ledger):
    """Books fills one row at a time, so an asset listed twice is booked twice."""

    def apply_fills(
        self, assets: np.ndarray, quantity: np.ndarray, price: np.ndarray, fee: np.ndarray
    ) -> None:
        for i in range(len(assets)):
            row = slice(i, i + 1)
            super().apply_fills(assets[row], quantity[row], price[row], fee[row])


def execute_twice(*args, **kwargs) -> BatchResult:
    """`execute_batch`, with every filled order listed twice."""
    result = execute_batch(*args, **kwargs)
    return dataclasses.replace(result, filled=np.repeat(result.filled, 2))


@contextlib.contextmanager
def patched():
    """The loop logs and books every fill twice while this is active."""
    from unittest import mock

    with (
        mock.patch("engine.core.loop.execute_batch", execute_twice),
        mock.patch("engine.core.loop.Ledger", RowByRowLedger),
    ):
        yield


run = run_under(patched)
