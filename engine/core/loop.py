"""The event loop: one fixed phase order per timestamp, over arrays of every asset.

Per timestamp t:
  1. fill   - orders due at t fill at the fill price (open for `next_open`, close for
              `next_close`); an asset without a bar at t keeps its order open;
  2. apply  - the fills go to the ledger, the only owner of cash, positions and fills;
  3. mark   - equity = cash + Σ position × last known close;
  4. decide - the strategy sees the updated ledger and every asset's bar at t;
  5. queue  - its orders wait in the order book for their fill time.
With `same_close`, phases 1–3 run once more at the close of t, after phase 5.

The phases run compiled (`engine.core.kernels.loop.advance`); a profile changes them only
at its hooks (engine/core/profiles.py). A strategy with a precomputed weight table is
decided in the compiled loop too; a callback strategy is called at each decision bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.book import OrderBook
from engine.core.config import BacktestConfig
from engine.core.context import Context
from engine.core.kernels.loop import (
    AFTER_DECISION,
    DECIDE,
    FROM_START,
    ROOM,
    advance,
    room_needed,
)
from engine.core.kernels.placement import ROW_LABEL, ROW_PARENT
from engine.core.ledger import Ledger
from engine.core.records import BarArrays, Curves, Schedule
from engine.core.strategy import Strategy, release_rows
from engine.data.market import Market, sealed

PHASES = ("fill", "apply", "mark", "decide", "queue")


@dataclass(frozen=True)
class Simulation:
    """A finished run: its ledger (fills), its book (orders) and the curves per bar."""

    market: Market
    config: BacktestConfig
    ledger: Ledger
    book: OrderBook
    cash: np.ndarray  # cash at each bar's close
    positions_value: np.ndarray  # Σ position × last known close at each bar's close


def simulate(market: Market, strategy: Strategy, config: BacktestConfig) -> Simulation:
    """Run `strategy` over `market` under `config`, phase by phase (see module docstring)."""
    n_bars, n_assets = market.n_bars, market.n_assets
    settings = config.kernel_settings()
    profile = config.semantics
    table = strategy.weight_table(market)
    rows = strategy.order_rows(market) if table is None else None
    expected = 4 * n_assets + 1024  # orders (and fills) expected; the arrays grow past it
    row_start = np.zeros(0, dtype=np.int64)
    rows_i, rows_f = np.zeros((0, 6), dtype=np.int32), np.zeros((0, 4))
    if table is not None:
        decide, weight_start, weight_asset, weight = table
        expected += min(n_assets * int(decide.sum()), 2 * len(weight))
    elif rows is not None:
        decide, row_start, rows_i, rows_f = rows
        weight_start = np.zeros(0, dtype=np.int64)
        weight_asset, weight = np.zeros(0, dtype=np.int64), np.zeros(0)
        expected += len(rows_i)
    else:
        decide = strategy.decision_bars(market)
        decide = np.ones(n_bars, dtype=bool) if decide is None else np.asarray(decide, bool)
        weight_start = np.zeros(0, dtype=np.int64)
        weight_asset, weight = np.zeros(0, dtype=np.int64), np.zeros(0)
    ledger = Ledger(n_assets, config.initial_cash, capacity=expected)
    exits = sum(1 for rule in (settings.stop_loss, settings.take_profit,
                               settings.trailing_stop, settings.max_bars) if rule)
    book = OrderBook(n_assets, capacity=expected * (1 + exits))  # each entry adds its exits
    ctx = Context(market, ledger, book, settings)
    volume = market.volume if settings.volume_limit > 0 else sealed(np.empty((0, n_assets)))
    none = sealed(np.empty((0, n_assets)))
    can_rest = table is None or settings.position_rules
    row_state = np.full((3, len(rows_i) if rows_linked(rows_i) else 0), -1, dtype=np.int32)
    high, low = (market.high, market.low) if can_rest else (none, none)
    known_open = profile.held_prices(market, config.fill)
    cash, value = np.empty(n_bars), np.empty(n_bars)

    bars = BarArrays(market.open, high, low, market.close, market.last_close, known_open,
                     market.has_bar, volume)
    schedule = Schedule(decide, weight_start, weight_asset, weight, row_start, rows_i, rows_f,
                        row_state)
    curves = Curves(cash, value)
    bar, resume = 0, FROM_START
    while bar < n_bars:
        bar, why, equity = advance(settings, bar, resume, bars, schedule, ledger.state(),
                                   book.state(), curves)
        resume = FROM_START
        if why == ROOM:
            fills, orders = room_needed(settings, n_assets, book.n_resting,
                                        table is not None or rows is not None)
            ledger.reserve(fills)
            if rows is not None:
                orders += int(row_start[bar + 1] - row_start[bar])
                release_rows(rows_i, int(row_start[bar]))  # placed: never read again
                release_rows(rows_f, int(row_start[bar]))
            book.reserve(orders)
        elif why == DECIDE:
            ctx.bar, ctx.equity = bar, equity
            ctx.peak = float(np.max(cash[: bar + 1] + value[: bar + 1]))
            strategy.on_bar(ctx)
            resume = AFTER_DECISION
    return Simulation(market, config, ledger, book, cash, value)


def rows_linked(rows_i: np.ndarray) -> bool:
    """Whether an order table's rows name other rows (a parent or an OCO label): only then
    does the loop keep what each row placed (`placement.place_rows`)."""
    return bool(len(rows_i)) and bool((rows_i[:, ROW_PARENT] >= 0).any()
                                      or (rows_i[:, ROW_LABEL] >= 0).any())
