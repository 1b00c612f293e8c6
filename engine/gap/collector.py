"""The cycle collector paused while an analysis runs.

An analysis holds millions of small objects (each side's fills per bar, the books, the
oracle's bars); every full pass of Python's cycle collector walks all of them, a few
times over as they accumulate, for no garbage: the analysis makes no reference cycles,
so reference counting frees what it drops. Pausing the collector for the call costs
nothing in memory and saves those walks (about a sixth of a diagnosis' time).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def collector_paused(function: F) -> F:
    """`function` with the cycle collector off during the call (as it was after)."""

    @functools.wraps(function)
    def paused(*args, **kwargs):
        was_on = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if was_on:
                gc.enable()

    return paused  # type: ignore[return-value]
