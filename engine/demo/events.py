"""The events the parts send each other over the bus (market events are in `market.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.demo.records import Fill, Order


@dataclass(frozen=True)
class OrderEvent:
    """The strategy (or the risk manager) sends an order to the broker."""

    bar: int
    phase: str
    order: Order


@dataclass(frozen=True)
class BatchEvent:
    """The strategy has sent every order of this decision: the broker executes them."""

    bar: int
    phase: str


@dataclass(frozen=True)
class FillEvent:
    """The broker filled an order; `before` and `after` are its position around the fill."""

    fill: Fill
    before: float
    after: float
