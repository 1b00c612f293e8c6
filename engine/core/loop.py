"""The event loop: one fixed phase order per timestamp, over arrays of every asset.

Per timestamp t:
  1. fill   - orders due at t fill at the fill price (open for `next_open`, close for
              `next_close`); an asset without a bar at t keeps its order open;
  2. apply  - the fills go to the ledger, the only owner of cash and positions;
  3. mark   - equity = cash + Σ position × last known close (for the strategy; the
              recorded curve marks the same holdings in one pass after the loop);
  4. decide - the strategy sees the updated ledger and every asset's bar at t;
  5. queue  - its orders wait in the order book for their fill time.
With `same_close`, phases 1–3 run once more at the close of t, after phase 5.
Profiles (engine/core/profiles.py) refine phase 1: backtrader's screens the last decision's
orders by a pseudo-execution first, vectorbt's drops orders whose asset has no bar, and
zipline's fills at most a share of the bar's volume and keeps the rest open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.book import MARGIN, NO_PRICE, REASON_CODES, REJECTED, OrderBook
from engine.core.config import BacktestConfig
from engine.core.context import Context
from engine.core.execution import (
    Costs,
    auto_sequence,
    execute_batch,
    size_orders,
    submission_check,
)
from engine.core.ledger import Ledger
from engine.core.strategy import Strategy
from engine.data.market import Market, forward_fill

PHASES = ("fill", "apply", "mark", "decide", "queue")


@dataclass(frozen=True)
class Simulation:
    """Raw arrays of a finished run; `engine.results.tables` turns them into tables."""

    market: Market
    config: BacktestConfig
    book: OrderBook
    fill_bar: np.ndarray
    fill_asset: np.ndarray
    fill_quantity: np.ndarray
    fill_price: np.ndarray
    fill_fee: np.ndarray
    fill_order: np.ndarray
    cash: np.ndarray
    positions_value: np.ndarray
    holding_bar: np.ndarray  # every (bar, asset) held at the bar's close, by bar then asset
    holding_asset: np.ndarray
    holding_quantity: np.ndarray


def simulate(market: Market, strategy: Strategy, config: BacktestConfig) -> Simulation:
    """Run `strategy` over `market` under `config`, phase by phase (see module docstring)."""
    n_bars, n_assets = market.n_bars, market.n_assets
    ledger = Ledger(n_assets, config.initial_cash)
    book = OrderBook(n_assets)
    fill_delay = 0 if config.fill == "same_close" else 1
    profile = config.semantics
    ctx = Context(market, ledger, book, fill_delay, profile)
    costs = Costs.from_config(config)
    reject_reason = REASON_CODES[profile.reject_reason]
    decide = strategy.decision_bars(market)
    no_close = np.full(n_assets, np.nan)
    last_open = (forward_fill(market.open, market.has_bar)
                 if profile.drop_without_bar and config.fill == "next_open" else None)

    fills: list[tuple[np.ndarray, ...]] = []
    snapshots: list[tuple[int, np.ndarray, np.ndarray]] = []  # (bar, assets held, shares)
    cash = np.empty(n_bars)

    def screen_submissions(t: int) -> None:
        """Refuse (as margin) the orders of the last decision whose pseudo-execution, in
        submission order at their creation close, overdraws the cash before this bar."""
        open_ = (book.open_id >= 0).nonzero()[0]
        ids = book.open_id[open_]
        new = book.record("created_bar")[ids] == t - 1
        assets, ids = open_[new], ids[new]
        if len(assets) == 0:
            return
        order = np.argsort(ids, kind="stable")
        assets = assets[order]
        accepted = submission_check(book.add_shares[assets],
                                    market.last_close[t - 1, assets], ledger.cash, costs)
        refused = assets[~accepted]
        if len(refused):
            book.close(t, refused, np.full(len(refused), REJECTED, np.int8),
                       np.full(len(refused), MARGIN, np.int8), np.zeros(len(refused)))

    def drop_without_bar(t: int) -> None:
        """Reject (no_price) the due orders whose asset has no bar now (vectorbt's way)."""
        lacking = book.due(t, ~market.has_bar[t])
        if len(lacking):
            book.close(t, lacking, np.full(len(lacking), REJECTED, np.int8),
                       np.full(len(lacking), NO_PRICE, np.int8), np.zeros(len(lacking)))

    def fill(t: int, price: np.ndarray, known_close: np.ndarray) -> bool:
        if profile.drop_without_bar:
            drop_without_bar(t)
        assets = book.due(t, market.has_bar[t])
        if len(assets) == 0:
            return False
        fill_price = price[assets]
        valuation = np.where(market.has_bar[t], price, known_close)
        position = ledger.positions[assets]
        delta, order_value = size_orders(
            book.open_orders(assets), position, ledger.value(valuation), fill_price
        )
        sequence = (auto_sequence(order_value) if profile.sequence == "auto"
                    else np.argsort(book.open_id[assets], kind="stable"))
        cap = (np.floor(profile.volume_limit * market.volume[t, assets])
               if profile.volume_limit else None)
        result = execute_batch(
            delta, position, ledger.cash, fill_price, sequence, costs,
            config.integer_shares, config.cash_policy, config.allow_short, reject_reason, cap,
        )
        in_order = assets[result.sequence]
        done = result.filled
        if len(done):
            filled = in_order[done]
            booked = (filled, result.quantity[done], result.price[done], result.fee[done])
            fills.append((t, *booked, book.open_id[filled]))
            ledger.apply_fills(*booked)
        closing = np.ones(len(in_order), dtype=bool)
        if cap is not None:  # orders the volume cap cut short keep the rest for later bars
            left = delta[result.sequence] - result.quantity
            cut = np.abs(result.quantity) >= cap[result.sequence]
            closing = (np.abs(left) <= 1e-9) | ~cut | (result.status == REJECTED)
            book.fill_part(t, in_order[~closing], result.quantity[~closing])
        book.close(t, in_order[closing], result.status[closing], result.reason[closing],
                   result.quantity[closing])
        if len(done):
            held = ledger.positions.nonzero()[0]
            snapshot = (t, held, ledger.positions[held])
            if snapshots and snapshots[-1][0] == t:
                snapshots[-1] = snapshot
            else:
                snapshots.append(snapshot)
        return True

    for t in range(n_bars):
        if profile.submission_check and t and book.n_open:
            screen_submissions(t)
        previous_close = market.last_close[t - 1] if t else no_close
        if config.fill == "next_open":
            fill(t, market.open[t], last_open[t - 1] if last_open is not None and t
                 else previous_close)
        elif config.fill == "next_close":
            fill(t, market.close[t], market.last_close[t])
        cash[t] = ledger.cash
        if decide is None or decide[t]:
            held = ledger.positions.nonzero()[0]
            ctx.equity = ledger.cash + float(ledger.positions[held] @ market.last_close[t, held])
            ctx.bar = t
            strategy.on_bar(ctx)
        if config.fill == "same_close" and fill(t, market.close[t], market.last_close[t]):
            cash[t] = ledger.cash

    if fills:
        bars, *columns = zip(*fills, strict=True)
        counts = [len(c) for c in columns[0]]
        columns = [np.repeat(np.asarray(bars, dtype=np.int64), counts)] + [
            np.concatenate(c) for c in columns
        ]
    else:
        columns = [np.empty(0, dtype=np.int64)] * 2 + [np.empty(0)] * 3 + [
            np.empty(0, dtype=np.int64)
        ]
    bar, asset, quantity = holdings(snapshots, n_bars)
    value = np.bincount(bar, weights=quantity * market.last_close[bar, asset], minlength=n_bars)
    return Simulation(
        market, config, book, *columns, cash=cash, positions_value=value,
        holding_bar=bar, holding_asset=asset, holding_quantity=quantity,
    )


def holdings(
    snapshots: list[tuple[int, np.ndarray, np.ndarray]], n_bars: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bar, asset, quantity) of every holding at every bar, from post-fill snapshots.

    Holdings are constant between snapshots, so each snapshot repeats over its span.
    """
    ends = [bar for bar, _, _ in snapshots[1:]] + [n_bars] * bool(snapshots)
    out = ([np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0)])
    for (start, held, quantity), end in zip(snapshots, ends, strict=True):
        if len(held):
            span = end - start
            out[0].append(np.repeat(np.arange(start, end), len(held)))
            out[1].append(np.tile(held, span))
            out[2].append(np.tile(quantity, span))
    return tuple(np.concatenate(part) for part in out)
