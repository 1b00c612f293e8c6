"""The bars' fast check: clean values and a complete grid of timestamps pass at array
speed; anything else is left to the loader's row-naming checks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.data.grid import NOT_CLEAN, bar_grid
from tests.builders import bars


def grid(n_bars: int = 4, n_assets: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(n_bars * n_assets)
    close = 50 + rng.random((n_bars, n_assets))
    return bars(close * 0.99, close)


def test_a_complete_grid_gives_its_width():
    assert bar_grid(grid(4, 3)) == 3
    assert bar_grid(grid(1, 5)) == 5


@pytest.mark.parametrize("column, value", [
    ("open", np.nan), ("close", np.nan), ("low", 0.0), ("low", -1.0), ("high", np.inf),
    ("high", 10.0), ("low", 1e6), ("volume", -1.0), ("volume", np.inf), ("volume", np.nan)])
def test_any_bar_that_fails_a_value_check_is_not_clean(column, value):
    frame = grid(4, 3)
    frame = frame.with_columns(frame[column].scatter(7, value))
    assert bar_grid(frame) == NOT_CLEAN


def test_timestamps_that_are_not_complete_increasing_blocks_give_no_width():
    frame = grid(4, 3)
    assert bar_grid(frame.slice(1)) == 0  # the first timestamp has 2 rows, the others 3
    assert bar_grid(frame.head(11)) == 0  # the last block is short
    assert bar_grid(frame.reverse()) == 0  # blocks decreasing
    stamps = frame["timestamp"].scatter(4, frame["timestamp"][0])
    assert bar_grid(frame.with_columns(timestamp=stamps)) == 0  # a block with two times
