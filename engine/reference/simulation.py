"""The reference loop: decisions through `Rules`, bar by bar, over plain dicts and floats.

Per bar t (docs/semantics.md): the backtrader screen of the last decision's orders; the
fills due at t (at the open, or at the close when delay ≥ 1); the decision queues its
orders for the next bar (delay ≥ 1) or this bar's close (delay 0); a same-bar close fill;
the mark at the last known closes. An engine that acts `delay` > 1 bars late queues, at
bar t, the decision made `delay − 1` bars earlier; a look-ahead engine (delay 0 at the
open) decides before the open fill.

Resting orders (order-table rows, bracket children, the position rules' exits) are tried
after the bar's market batch at the open (before it when market orders fill at the close),
along the bar's price path (resting.py), then trailing references move and expired orders
go; portfolio rules are checked as each decision places its orders. They live in
`Simulation.resting` (the open ones) and `resting_orders` (every one), not in the `Book`.

`Simulation` keeps its state in one `Book`, and `rules` may be one `Rules` or a function of
the bar. Its public stepping API replays another engine from that engine's own book, one
bar at a time (the gap analysis uses nothing else): `reset(book, rules)`, `arm_exits`
(the position rules' exits of positions opened earlier), `step(t)`, `force(t, fills)`,
`try_resting(t, rules)` and `book_fill` (a fill no order of this run made).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from engine.reference.bars import CLOSE, OPEN, VOLUME, Bars
from engine.reference.execution import add, buy, rounded, sell
from engine.reference.orders import TARGET_KINDS, Call, Order, Rebalance, whole_shares
from engine.reference.resting import (
    Resting,
    at_close,
    event,
    last_bar_of,
    stop_fill_price,
    to_tick,
)
from engine.reference.rules import BOOKED_AFTER_BATCH, BOOKED_AS_EXECUTED, LOGGED_TWICE, Rules

HISTORY = 4  # batches of positions kept for stale-position rules
Fill = tuple[int, str, float, float, float, int]  # bar, asset, quantity, price, fee, order id
Overrides = dict[str, tuple[float | None, float | None, bool]]  # asset → (price, fee, sized)


@dataclass(frozen=True)
class Place:
    """One row of an order table (`resting.order_table_rows`), placed at its decision."""

    row: dict


@dataclass
class Book:
    """What an engine believes: cash, non-zero positions and open orders.

    `history` holds the positions before each of the last few fill batches, newest last.
    """

    cash: float
    positions: dict[str, float] = field(default_factory=dict)
    pending: dict[str, Order] = field(default_factory=dict)  # the open order of each asset
    history: tuple[dict[str, float], ...] = ()
    unnetted: tuple[Order, ...] = ()  # older open orders an engine without netting keeps
    seen: int = -1  # the last decision bar acted on (an engine that turns late skips none twice)

    def copy(self) -> Book:
        return Book(self.cash, dict(self.positions), dict(self.pending), self.history,
                    self.unnetted, self.seen)

    def open_orders(self) -> list[Order]:
        return [*self.unnetted, *self.pending.values()]

    def value(self, prices: dict[str, float]) -> float:
        """Cash plus every position at `prices`, added in asset order from cash."""
        total = self.cash
        for asset in sorted(self.positions):
            total += self.positions[asset] * prices[asset]
        return total


class Simulation:
    """Runs decisions under rules over bars; `fills`, `orders`, `equity` record the run."""

    def __init__(self, bars: Bars, decisions: dict[int, list[Call | Rebalance]],
                 rules: Rules | Callable[[int], Rules], initial_cash: float,
                 record: bool = True) -> None:
        self.bars = bars
        self.decisions = decisions
        self.rules_at = rules if callable(rules) else (lambda _bar, r=rules: r)
        self.book = Book(float(initial_cash))
        self.record = record
        self.fills: list[Fill] = []
        self.orders: list[list] = []  # id, created bar, asset, kind, amount, status, reason,
        self.rejections: list[tuple[int, str, str]] = []  # filled bar, filled quantity
        self.equity: list[tuple[float, float]] = []  # cash, positions value (when recording)
        self._next_id = 0
        self._overrides: Overrides = {}
        # Resting orders (resting.py): the open ones, every one by id, what fills report.
        self.resting: list[Resting] = []
        self.resting_orders: dict[int, Resting] = {}
        self.triggers: dict[int, str] = {}  # order id → trigger of its fills ("market" if absent)
        self._children: dict[int, list[Resting]] = {}  # market order id → its bracket children
        self._absorbed: dict[int, int] = {}  # merged market order id → the order absorbing it
        self._table_ids: dict = {}  # an order table's `id` → our order id
        self._plan: dict | None = None  # portfolio rules: positions planned by this decision
        self._peak = -math.inf  # the equity peak (for halt_drawdown)
        self._volume_left: dict[str, float] = {}  # shares the volume cap leaves this bar
        self._spent: set[str] = set()  # assets an order found the cap spent on this bar
        self._balance: float | None = None  # the stale balance a batch's buys are checked on
        self.opening = float(initial_cash)  # the opening balance

    def run(self, start: int = 0, stop: int | None = None) -> Simulation:
        for t in range(start, len(self.bars.timestamps) if stop is None else stop):
            self.step(t)
        return self

    def step(self, t: int, overrides: Overrides | None = None) -> list[Fill]:
        """Every phase of bar `t`; returns the fills logged at `t`.

        `overrides` maps an asset to the (price, fee, sized) its fill at `t` takes instead of
        the rules' (None keeps the rules' own): a one-off price or fee; `sized` says whether
        the order was also sized at that price (else only filled at it).
        """
        rules = self.rules_at(t)
        self._overrides = overrides or {}
        first = len(self.fills)
        self.begin_bar(t, rules)
        if rules.submission_check and t:
            self._screen(t, rules)
        look_ahead = rules.delay == 0 and rules.point == "open"
        if look_ahead:
            self._decide(t, rules, t)
        if rules.point == "open":
            self._fill(t, rules, OPEN)
        by_placement = rules.intrabar_path == "close" and rules.point == "close" \
            and rules.delay >= 1
        market_ids = {a: o.id for a, o in self.book.pending.items()
                      if o.due <= t and a in self.bars.rows[t]} if by_placement else {}
        if self.resting:
            self._rest(t, rules, market_ids, before=True)
        if rules.point == "close" and rules.delay >= 1:
            self._fill(t, rules, CLOSE)
        if by_placement and self.resting:
            self._rest(t, rules, market_ids, before=False)
        if rules.halt_drawdown:
            self._peak = max(self._peak, self.book.cash + self.marked(t))
        if not look_ahead:
            self._decide(t, rules, t)
        if rules.point == "close" and rules.delay == 0:
            self._fill(t, rules, CLOSE)
        if self.record:
            self.equity.append((self.book.cash, self.marked(t)))
        return self.fills[first:]

    def begin_bar(self, t: int, rules: Rules) -> None:
        """A fresh volume cap for bar `t` (zipline skips an asset whose bar has no volume);
        `step` calls it, and so must a caller that tries resting orders on its own."""
        self._volume_left = {}
        self._spent = {a for a, bar in self.bars.rows[t].items() if bar[VOLUME] == 0} \
            if rules.volume_limit else set()

    def force(self, t: int, fills: list[tuple[str, float, float, float]]) -> None:
        """Bar `t` with the given fills (asset, quantity, price, fee) booked instead of the
        fills the rules would make; the orders due now whose asset has a bar are done
        (filled or not), those without one keep waiting; then the decision runs."""
        rules = self.rules_at(t)
        row = self.bars.rows[t]
        done = [o for o in self.book.open_orders() if o.due <= t and o.asset in row]
        if done or fills:
            self.book.history = (*self.book.history[-(HISTORY - 1):], dict(self.book.positions))
        for order in done:
            self._remove(order)
        for asset, quantity, price, fee in fills:
            self.book.cash = add(self.book.cash, -quantity * price - fee)
            self._move(asset, quantity)
            self.fills.append((t, asset, quantity, price, fee, -1))
        self._decide(t, rules, t)
        for order in [o for o in self.book.open_orders() if o.due <= t and o.asset in row]:
            self._remove(order)  # a same-bar engine filled them just now
        if self.record:
            self.equity.append((self.book.cash, self.marked(t)))

    # Stepping from a given book (the gap analysis replays another engine one bar at a time)

    def reset(self, book: Book, rules: Rules | None = None) -> None:
        """Start the next bar from `book` (and, if given, under `rules` at every bar):
        nothing recorded so far, no one-off prices, no resting order or bracket child."""
        if rules is not None:
            self.rules_at = lambda _bar, r=rules: r
        self.book = book
        self.fills, self.equity, self.rejections = [], [], []
        self._overrides = {}
        if self.resting or self.resting_orders or self._children:
            self.resting, self.resting_orders, self.triggers, self._children = [], {}, {}, {}

    def arm_exits(self, rules: Rules, entries: list[tuple[str, int, float]],
                  first_id: int) -> None:
        """The position rules' exits of the positions held, opened by `entries` (asset,
        entry bar, fill price), numbered from `first_id`."""
        saved, self._next_id = self._next_id, first_id
        positions = self.book.positions
        for asset, bar, price in entries:
            position = positions.get(asset, 0.0)
            if position:
                self._open_rules(bar, rules, asset, position, price, self.bars.rows[bar][asset])
        self._next_id = saved

    def try_resting(self, t: int, rules: Rules) -> list[Fill]:
        """Only the resting orders of bar `t` (the exits armed); returns their fills."""
        first = len(self.fills)
        if self.resting:
            self.begin_bar(t, rules)
            self._rest(t, rules)
        return self.fills[first:]

    def book_fill(self, t: int, asset: str, quantity: float, price: float, fee: float
                  ) -> None:
        """Book and log one fill at bar `t` that no order of this run made (another
        engine's rule made it: the gap analysis replays it)."""
        self.book.cash = add(self.book.cash, -quantity * price - fee)
        self._move(asset, quantity)
        self.fills.append((t, asset, quantity, price, fee, -1))

    def marked(self, t: int) -> float:
        """Positions at their last known closes after bar `t`, added in asset order."""
        positions, last = self.book.positions, self.bars.last
        total = 0.0
        for asset in sorted(positions):
            total += positions[asset] * last(t, asset, CLOSE)
        return total

    # Decisions

    def _decide(self, t: int, rules: Rules, known: int) -> None:
        """Queue the calls of the decision this bar acts on: the decision at `t`, or, for
        an engine that acts `delay` > 1 bars late, the one `delay − 1` bars back. Prices
        are the last known closes at bar `known`."""
        decision = t - rules.delay + 1 if rules.delay > 1 else t
        calls = self.decisions.get(decision)
        if not calls or decision <= self.book.seen:
            return
        book = self.book
        book.seen = decision
        held = self._sizing_positions(rules, target=True)
        last = self.bars.last
        equity = book.cash
        for asset in sorted(book.positions):
            equity += book.positions[asset] * last(known, asset, CLOSE)
        if rules.portfolio_rules:
            self._plan = self._new_plan(equity, known)
        for call in calls:
            if isinstance(call, Place):
                self._place(t, rules, call.row)
            elif isinstance(call, Rebalance):
                self._rebalance(t, rules, call.weights, held, equity, known)
            elif call.kind in TARGET_KINDS and rules.at_decision:
                if call.kind == "target_shares":
                    self._submit_shares(t, rules, call.asset,
                                        whole_shares(call.amount - held.get(call.asset, 0.0)))
                else:
                    amount = call.amount * equity if call.kind == "target_percent" \
                        else call.amount
                    self._size_now(t, rules, [(call.asset, amount)], held, known)
            else:
                self._submit(t, rules, call.asset, call.kind, call.amount)

    def _rebalance(self, t: int, rules: Rules, weights: dict[str, float],
                   held: dict[str, float], equity: float, known: int) -> None:
        """Targets for the weights and 0 for what is held or open, sells first by estimate."""
        book = self.book
        chosen = {a for a, w in weights.items() if w != 0.0}
        chosen |= set(book.positions) | set(book.pending) | {o.asset for o in book.unnetted}
        if rules.exits_lost:
            chosen = {a for a in chosen if weights.get(a, 0.0) != 0.0}
        last = self.bars.last

        def estimate(asset: str) -> tuple[bool, float]:
            value = (weights.get(asset, 0.0) * equity
                     - held.get(asset, 0.0) * last(known, asset, CLOSE))
            return (True, 0.0) if math.isnan(value) else (False, value)

        ordered = sorted(sorted(chosen), key=estimate)
        if rules.at_decision:
            self._size_now(t, rules, [(a, weights.get(a, 0.0) * equity) for a in ordered],
                           held, known)
        else:
            for asset in ordered:
                self._submit(t, rules, asset, "target_percent", weights.get(asset, 0.0))

    def _size_now(self, t: int, rules: Rules, targets: list[tuple[str, float]],
                  held: dict[str, float], known: int) -> None:
        """Share orders for target values at this close (backtrader's or zipline's way).

        With whole shares, backtrader floors the value delta over the close and zipline
        truncates the share delta; with fractional shares both keep the exact delta.
        """
        whole = rules.rounding != "none"
        for asset, target in targets:
            close = self.bars.last(known, asset, CLOSE)
            position = held.get(asset, 0.0)
            if math.isnan(close):
                continue
            if rules.sizing == "decision_truncate":
                shares = target / close - position
                shares = whole_shares(shares) if whole else shares
            else:
                delta_value = target - position * close
                shares = (math.copysign(abs(delta_value) // close, delta_value) if whole
                          else delta_value / close)
                if target == 0.0 and position != 0.0:
                    shares = -position
            self._submit_shares(t, rules, asset, shares)

    def _submit_shares(self, t: int, rules: Rules, asset: str, shares: float) -> None:
        if math.isfinite(shares) and shares != 0.0:
            self._submit(t, rules, asset, "shares", shares)

    def _submit(self, t: int, rules: Rules, asset: str, kind: str, amount: float) -> None:
        order_id = self._next_id
        self._next_id += 1
        book = self.book
        if self._plan is not None and rules.portfolio_rules:
            broken = self._breaks(rules, asset, kind, amount)
            if broken:
                self._refuse(t, order_id, asset, kind, amount, broken)
                return
        previous = book.pending.get(asset)
        due = t + (1 if rules.delay else 0)
        if previous is None:
            book.pending[asset] = Order.new(order_id, asset, t, due, kind, amount)
        elif not rules.netting:
            book.unnetted = (*book.unnetted, previous)
            book.pending[asset] = Order.new(order_id, asset, t, due, kind, amount)
        else:
            book.pending[asset] = previous.merged(order_id, t, due, kind, amount)
            if kind not in TARGET_KINDS:
                self._absorbed[previous.id] = order_id
            if previous.id in self._children:  # merged: the entry still happens
                children = self._children.pop(previous.id)
                if kind in TARGET_KINDS:  # replaced: it does not
                    for child in children:
                        self._settle(child, t, "cancelled", "cancelled")
                else:
                    self._children.setdefault(order_id, []).extend(children)
            if self.record:
                replaced = kind in TARGET_KINDS
                record = self.orders[previous.id]
                record[5] = "replaced" if replaced else "merged"
                record[6] = f"{'replaced by' if replaced else 'merged into'} order {order_id}"
        if self.record:
            self.orders.append([order_id, t, asset, kind, amount, "open", None, None, 0.0])

    # Fills

    def _screen(self, t: int, rules: Rules) -> None:
        """backtrader's submission check: the last decision's orders, pseudo-executed in
        submission order at their creation close; each after which cash is negative is
        refused as `margin` (what it subtracted stays subtracted)."""
        book = self.book
        cash = book.cash
        for order in sorted((o for o in book.open_orders() if o.created == t - 1),
                            key=lambda o: o.id):
            value = abs(order.shares) * self.bars.last(t - 1, order.asset, CLOSE)
            cost = value * rules.fees
            cash = cash + value - cost if order.shares < 0 else cash - value - cost
            if cash < 0.0:
                self._close(order, t, "rejected", "margin", 0.0)

    def _fill(self, t: int, rules: Rules, point: int) -> None:
        """Size, sequence and execute every open order that is due and has a bar now."""
        book = self.book
        row = self.bars.rows[t]
        if rules.drop_without_bar:
            for order in [o for o in book.open_orders() if o.due <= t and o.asset not in row]:
                self._close(order, t, "rejected", "no_price", 0.0)
        due = [book.pending[a] for a in sorted(book.pending)
               if a in row and book.pending[a].due <= t]
        if book.unnetted:
            due = sorted([*due, *(o for o in book.unnetted if o.asset in row and o.due <= t)],
                         key=lambda o: (o.asset, o.id))
        if not due:
            return
        fill_prices = {o.asset: row[o.asset][point] for o in due}
        exec_prices = dict(fill_prices)
        for asset, (price, _, sized) in self._overrides.items():
            if price is not None and asset in fill_prices:
                exec_prices[asset] = price
                if sized:
                    fill_prices[asset] = price
        prices = self._valuation(t, rules, point, due, fill_prices)
        value = book.value(prices)
        sizing = self._sizing_positions(rules, target=False)
        requests = []
        for order in due:
            position = sizing.get(order.asset, 0.0)
            if rules.position_basis == "zero_for_targets" and not (
                    order.target_kind and order.target_amount == 0.0):
                position = 0.0
            delta, key = order.requested(position, value, prices[order.asset])
            requests.append((key, order, delta))
        requests = _sequence(requests, rules)

        book.history = (*book.history[-(HISTORY - 1):], dict(book.positions))
        headroom = (rules.max_leverage - 1.0) * value
        self._balance = None
        logged: list[Fill] = []
        for i, (_, order, delta) in enumerate(requests):
            if rules.value_refresh and i:
                position = sizing.get(order.asset, 0.0)
                delta, _ = order.requested(position, book.value(prices), prices[order.asset])
            fill = self._execute(t, rules, order, delta, exec_prices[order.asset],
                                 row[order.asset][VOLUME], headroom)
            if fill is not None:
                logged.append(fill)
        if rules.booking in BOOKED_AFTER_BATCH:
            for fill in logged:
                self._book(fill, rules)
        if rules.booking in LOGGED_TWICE:
            logged = [fill for fill in logged for _ in (0, 1)]
        self.fills += logged

    def _valuation(self, t: int, rules: Rules, point: int, due: list[Order],
                   fill_prices: dict[str, float]) -> dict[str, float]:
        """The prices a batch values the book and sizes targets at (see `Rules.valuation`)."""
        book = self.book
        last = self.bars.last
        if rules.valuation == "fill_price":
            row = self.bars.rows[t]
            held_field = point if rules.held_valuation == "last_fill_price" else CLOSE
            prices = {a: row[a][point] if a in row else last(t - 1, a, held_field)
                      for a in book.positions}
            prices.update(fill_prices)
            return prices
        bar = t - 1 if rules.valuation == "previous_close" else max(o.created for o in due)
        prices = {a: last(bar, a, CLOSE) for a in book.positions}
        for order in due:
            close = last(bar, order.asset, CLOSE)
            prices[order.asset] = fill_prices[order.asset] if math.isnan(close) else close
        return prices

    def _sizing_positions(self, rules: Rules, target: bool) -> dict[str, float]:
        """The positions a target is netted against (see `Rules.position_basis`)."""
        if rules.position_basis == "zero" or (
                rules.position_basis == "zero_for_targets" and target):
            return {}
        if rules.position_basis == "stale":
            history = self.book.history
            return history[-rules.stale_lag] if len(history) >= rules.stale_lag else {}
        return self.book.positions

    def _execute(self, t: int, rules: Rules, order: Order, delta: float, price: float,
                 volume: float, headroom: float) -> Fill | None:
        """Execute one due order and book it; close it or keep what the volume cap left."""
        book = self.book
        if rules.rounding == "floor":
            delta = math.floor(delta / rules.lot) * rules.lot
        position = book.positions.get(order.asset, 0.0)
        size = abs(delta)
        if delta < 0 and not rules.allow_short:
            size = min(size, position)
        size = rounded(size, rules)
        cap = self._cap(order.asset, rules, volume)
        if cap is not None:
            size = min(size, cap)
        if delta > 0 and rules.cash_check != "current":  # against a stale balance
            if self._balance is None:
                self._balance = self.opening if rules.cash_check == "opening" else book.cash
            status, reason, size, adjusted, fee, left = buy(size, price, self._balance,
                                                            headroom, rules)
            cash = add(book.cash, -(self._balance - left)) if status == "filled" else book.cash
        elif delta > 0:
            status, reason, size, adjusted, fee, cash = buy(size, price, book.cash, headroom,
                                                            rules)
        else:
            status, reason, size, adjusted, fee, cash = sell(size, price, book.cash, rules)
        quantity = size if delta > 0 else -size
        self._use_volume(order.asset, cap, quantity)
        kept = cap is not None and abs(quantity) >= cap and abs(delta - quantity) > 1e-9 \
            and status != "rejected"  # the cap cut it short: the rest waits
        fill = None
        if status == "filled":
            forced_fee = self._overrides.get(order.asset, (None, None, True))[1]
            if forced_fee is not None:
                cash, fee = add(cash, fee - forced_fee), forced_fee
            book.cash = cash if rules.fees_in_cash else add(cash, fee)
            if rules.fees_twice:
                book.cash = add(book.cash, -fee)
            self._move(order.asset, quantity)
            fill = (t, order.asset, quantity, adjusted, fee, order.id)
            if rules.booking in BOOKED_AS_EXECUTED:  # the batch's later orders see it
                self._book(fill, rules)
            if self.resting or self._children or rules.position_rules:
                self._after_fill(t, rules, order.asset, position, adjusted, order.id,
                                 closes_by_target=order.target_kind is not None)
        elif order.id in self._children and not kept:
            for child in self._children.pop(order.id):
                self._settle(child, t, "cancelled", "cancelled")
        if kept:
            self._remove(order)
            left = order.less(quantity)
            if order.asset in book.pending:
                book.unnetted = (*book.unnetted, left)
            else:
                book.pending[order.asset] = left
            if self.record:
                self.orders[order.id][7] = t
                self.orders[order.id][8] += quantity
        else:
            self._close(order, t, status, reason, quantity)
        return fill

    # Order tables and resting orders (resting.py; docs/semantics.md, "Resting orders")

    def _place(self, t: int, rules: Rules, row: dict) -> None:
        """Place one order-table row decided at the close of bar `t`."""
        asset, kind, quantity = row["asset"], row["type"], float(row["quantity"])
        parent = None
        if row["parent"] is not None:
            parent = self._table_ids.get(row["parent"])
        if kind == "market":
            order_id = self._next_id
            self._submit(t, rules, asset, "shares", quantity)
            self.triggers[order_id] = "market"
            if row["id"] is not None:
                self._table_ids[row["id"]] = order_id
            return
        order_id = self._next_id
        self._next_id += 1
        if row["id"] is not None:
            self._table_ids[row["id"]] = order_id
        order = Resting(
            id=order_id, asset=asset, type=kind, quantity=quantity, created=t,
            live_from=t + 1, last_bar=last_bar_of(row["valid_until"], t, self.bars.timestamps),
            limit=self._level(row["limit_price"], quantity > 0, rules),
            stop=self._level(row["stop_price"], quantity <= 0, rules),
            trail=None if row["trail"] is None else float(row["trail"]),
            trail_mode=row["trail_mode"], trigger=kind,
            group=None if row["group"] is None else ("group", row["group"]))
        if kind == "trailing_stop":
            order.peak = self.bars.last(t, asset, CLOSE)
        self.resting_orders[order_id] = order
        self.triggers[order_id] = kind
        if self.record:
            self.orders.append([order_id, t, asset, kind, quantity, "open", None, None, 0.0])
        if parent is not None:
            self._adopt(t, rules, order, parent)
        elif rules.portfolio_rules and self._plan is not None:
            broken = self._breaks(rules, asset, "shares", quantity)
            if broken:
                self._settle(order, t, "rejected", broken)
                self.rejections.append((t, asset, broken))
                return
        if order.status == "open":
            self.resting.append(order)

    @staticmethod
    def _level(price: float | None, prefer_down: bool, rules: Rules) -> float | None:
        """A limit or stop price as placed: rounded to `tick_size` when the rules round
        (a buy limit and a sell stop prefer the lower tick)."""
        if price is None:
            return None
        return to_tick(float(price), prefer_down, rules.tick_size) if rules.tick_size \
            else float(price)

    def _cap(self, asset: str, rules: Rules, volume: float) -> float | None:
        """Shares the volume cap still lets `asset` fill this bar (None: no cap)."""
        if not rules.volume_limit:
            return None
        if asset in self._spent:
            return 0.0
        return self._volume_left.setdefault(asset, math.floor(rules.volume_limit * volume))

    def _use_volume(self, asset: str, cap: float | None, quantity: float) -> None:
        """Take a fill's shares from the asset's cap; an order that found it spent stops
        the asset's fills for the bar (zipline's LiquidityExceeded)."""
        if cap is None:
            return
        self._volume_left[asset] -= abs(quantity)
        if cap <= 0:
            self._spent.add(asset)

    def _adopt(self, t: int, rules: Rules, child: Resting, parent_id: int) -> None:
        """A bracket child: one OCO group with its siblings, following the order that
        carries its parent's entry (the parent, or the order a later delta order merged it
        into): it waits for that order's first fill, is live from the next bar if that
        order has filled (in part or in full), and is cancelled if it ended unfilled."""
        child.parent = parent_id
        child.group = ("bracket", parent_id)
        child.live_from = None
        carrier = parent_id
        while carrier in self._absorbed:
            carrier = self._absorbed[carrier]
        if any(fill[5] == carrier for fill in self.fills):
            child.live_from = t + 1
        elif carrier in self.resting_orders and self.resting_orders[carrier].status == "open":
            pass  # a resting entry arms its children when it fills (`_fill_resting`)
        elif any(order.id == carrier for order in self.book.open_orders()):
            self._children.setdefault(carrier, []).append(child)
        else:
            self._settle(child, t, "cancelled", "cancelled")

    @staticmethod
    def _arm(order: Resting, t: int, price: float, bar: tuple, stop_base: str) -> None:
        """Make a bracket child live from the bar after its parent filled at bar `t` at
        `price`; a trailing child's reference starts at the stop base."""
        order.live_from = t + 1
        if order.type == "trailing_stop":
            order.peak = price if stop_base == "fill" else bar[CLOSE]

    def _rest(self, t: int, rules: Rules, market_ids: dict[str, int] | None = None,
              before: bool = True) -> None:
        """Resting orders at bar `t`: tried along the path (or at the close), then trailing
        references move, then orders past their last bar expire.

        `market_ids` names each asset's market order due at this close under the `close`
        path: the orders placed before it are tried `before` the market batch, the others
        after it (then the references move and expiry comes). Without it: every order."""
        market_ids = market_ids or {}
        row = self.bars.rows[t]
        book = self.book
        live = [o for o in self.resting if o.status == "open" and o.live_from is not None
                and o.live_from <= t and o.asset in row
                and (o.id < market_ids.get(o.asset, math.inf)) == before]
        sides = {o.id: o.is_buy(book.positions.get(o.asset, 0.0)) for o in live}
        if rules.intrabar_path == "close":
            self._rest_at_close(t, rules, live, sides)
        else:
            self._rest_on_path(t, rules, live, sides)
        if before and market_ids:
            return
        source = "close" if rules.intrabar_path == "close" else rules.trail_source
        for order in self.resting:
            if (order.status == "open" and order.type == "trailing_stop"
                    and order.live_from is not None and order.live_from <= t
                    and order.asset in row):
                side = order.is_buy(book.positions.get(order.asset, 0.0))
                order.follow(row[order.asset], sides.get(order.id, side), source)
        for order in self.resting:
            if order.status == "open" and order.last_bar is not None and order.last_bar <= t:
                self._settle(order, t, "expired", None)
        self.resting = [o for o in self.resting if o.status == "open"]

    def _rest_at_close(self, t: int, rules: Rules, live: list[Resting], sides: dict) -> None:
        """The `close` path: every order is checked at the close (`at_close`) and fills
        there like a market order (the market slippage, uncapped), in id order; time exits
        keep the market orders' fill point (`stop_first` groups as on the path). Once an
        order finds its asset's volume cap spent, the asset's later orders are not even
        checked this bar."""
        row = self.bars.rows[t]
        events, reaching = [], []
        for order in live:
            close = row[order.asset][CLOSE]
            if order.type == "market":  # a time exit, at the fill point of market orders
                phase, price, _ = event(order, row[order.asset], sides[order.id],
                                        rules.intrabar_path, at_close=rules.point == "close")
                item = (order, (phase, stop_fill_price(price, sides[order.id],
                                                       row[order.asset], rules.slippage), False))
                reaching.append(item)
            else:
                side = 1 if sides[order.id] else -1
                item = (order, (3, close * (1 + side * rules.slippage), False))
                if at_close(replace(order), close, sides[order.id]):
                    reaching.append(item)
            events.append(item)
        key = self._event_key(reaching, rules)
        headroom = self._headroom(t, rules)
        for order, (_, price, _) in sorted(events, key=key):
            if order.status != "open" or order.asset in self._spent:
                continue
            if order.type != "market" and not at_close(order, row[order.asset][CLOSE],
                                                       sides[order.id]):
                continue
            self._fill_resting(t, rules, order, sides[order.id], price, False,
                               row[order.asset], headroom)

    def _headroom(self, t: int, rules: Rules) -> float:
        """(L − 1) × the book valued at the bar's open (last close without a bar)."""
        if rules.max_leverage <= 1.0:
            return 0.0
        row, last = self.bars.rows[t], self.bars.last
        return (rules.max_leverage - 1.0) * self.book.value(
            {a: row[a][OPEN] if a in row else last(t, a, CLOSE) for a in self.book.positions})

    def _rest_on_path(self, t: int, rules: Rules, live: list[Resting], sides: dict) -> None:
        """Along the bar's path: the orders in the order their conditions are met."""
        row = self.bars.rows[t]
        events = []
        for order in live:
            hit = event(order, row[order.asset], sides[order.id], rules.intrabar_path,
                        rules.gap_fill, rules.point == "close", rules.bar_ticks)
            if hit is not None:
                events.append((order, hit))
        if events:
            headroom = self._headroom(t, rules)
            for order, (_, price, slipped) in sorted(events, key=self._event_key(events, rules)):
                if order.status == "open" and order.asset not in self._spent:
                    self._fill_resting(t, rules, order, sides[order.id], price, slipped,
                                       row[order.asset], headroom)

    @staticmethod
    def _event_key(events: list, rules: Rules) -> Callable:
        """Sort key of a bar's events: phase, then order id. With `stop_first`, an OCO
        group whose stop is reached in the bar moves, whole, to the group's earliest phase
        and its first stop's id, its stops ahead of their siblings; `take_profit_first`
        does the same for its take-profit (limit)."""
        earliest: dict = {}
        anchor: dict = {}
        limits = rules.take_profit_first  # else the stops go first

        def preferred(order: Resting) -> bool:
            return order.type == "limit" if limits else order.is_stop

        if rules.stop_first or limits:
            reached = [(o, phase) for o, (phase, _, _) in events
                       if o.group is not None and o.type != "market"]
            for order, _ in reached:
                if preferred(order):
                    anchor[order.group] = min(anchor.get(order.group, order.id), order.id)
            for order, phase in reached:
                if order.group in anchor:
                    earliest[order.group] = min(earliest.get(order.group, phase), phase)

        def key(item: tuple) -> tuple:
            order, (phase, _, _) = item
            if order.group in anchor and order.type != "market":
                group = order.group
                return (earliest[group], anchor[group], 0 if preferred(order) else 1,
                        order.id)
            return (phase, order.id, 0, order.id)

        return key

    def _fill_resting(self, t: int, rules: Rules, order: Resting, is_buy: bool, price: float,
                      slipped: bool, bar: tuple, headroom: float) -> None:
        """Execute one resting order at `price` and book it at once."""
        book = self.book
        position = book.positions.get(order.asset, 0.0)
        wanted = abs(position) if order.close_position else abs(order.quantity - order.filled)
        size = wanted
        if not is_buy and not rules.allow_short:
            size = min(size, max(position, 0.0))
        size = rounded(size, rules)
        cap = self._cap(order.asset, rules, bar[VOLUME])
        if cap is not None and cap <= 0:
            self._spent.add(order.asset)
            return
        if cap is not None:
            size = min(size, cap)
        if slipped:
            slippage = rules.slippage if rules.stop_slippage or not order.is_stop else 0.0
            price = stop_fill_price(price, is_buy, bar, slippage)
        plain = rules.with_(slippage=0.0)
        if is_buy:
            status, reason, size, adjusted, fee, cash = buy(size, price, book.cash, headroom,
                                                            plain)
        else:
            status, reason, size, adjusted, fee, cash = sell(size, price, book.cash, plain)
        if status != "filled":
            self._settle(order, t, status, reason)
            if status == "rejected":
                self.rejections.append((t, order.asset, reason))
            return
        quantity = size if is_buy else -size
        self._use_volume(order.asset, cap, quantity)
        book.cash = cash
        self._move(order.asset, quantity)
        self.fills.append((t, order.asset, quantity, adjusted, fee, order.id))
        if rules.booking in BOOKED_AS_EXECUTED or rules.booking in BOOKED_AFTER_BATCH:
            self._book(self.fills[-1], rules)  # a rule's exit is booked and logged as any
        if rules.booking in LOGGED_TWICE:  # fill is (it is a batch of its own)
            self.fills.append(self.fills[-1])
        rule = order.trigger if order.close_position else None
        if cap is not None and size >= cap and wanted - size > 1e-9:
            order.filled += quantity  # the cap cut it short: the rest waits for later bars
            if self.record:
                self.orders[order.id][7] = t
                self.orders[order.id][8] += quantity
        else:
            self._settle(order, t, "filled", reason or rule, quantity)
        if order.group is not None:
            for other in self.resting:
                if other.group == order.group and other.status == "open" and other is not order:
                    self._settle(other, t, "cancelled", "oco")
        for child in self.resting:
            if child.parent == order.id and child.status == "open" and child.live_from is None:
                self._arm(child, t, adjusted, bar, rules.stop_base)
        self._after_fill(t, rules, order.asset, position, adjusted, order.id,
                         closes_by_target=False)

    def _after_fill(self, t: int, rules: Rules, asset: str, before: float, price: float,
                    order_id: int, closes_by_target: bool) -> None:
        """What a fill sets off: a market parent's children go live, a position opened
        from flat gets the position rules' exits, a position closed loses them (and, when
        a target closed it, every resting order of the asset); a reversed position loses
        its exits and gets new ones."""
        bar = self.bars.rows[t][asset]
        for child in self._children.pop(order_id, []):
            if child.status == "open":
                self._arm(child, t, price, bar, rules.stop_base)
        after = self.book.positions.get(asset, 0.0)
        if after == 0.0 or before * after < 0.0:  # closed, or reversed
            for order in self.resting:
                if order.asset == asset and order.status == "open" and (
                        (closes_by_target and after == 0.0) or order.close_position):
                    self._settle(order, t, "cancelled", "position_closed")
        if after != 0.0 and before * after <= 0.0 and rules.position_rules:
            self._open_rules(t, rules, asset, after, price, bar)

    def _open_rules(self, t: int, rules: Rules, asset: str, position: float, price: float,
                    bar: tuple) -> None:
        """The position rules' exits of a position opened at bar `t`: one OCO group, each
        closing the whole position, tried from the next bar (a time exit from bar t + N)."""
        base = price if rules.stop_base == "fill" else bar[CLOSE]
        long = position > 0
        group = ("position", asset, t)
        exits = []
        if rules.stop_loss:
            level = base * (1 - rules.stop_loss) if long else base * (1 + rules.stop_loss)
            exits.append(("stop_loss", "stop", {"stop": level}))
        if rules.take_profit:
            level = base * (1 + rules.take_profit) if long else base * (1 - rules.take_profit)
            exits.append(("take_profit", "limit", {"limit": level}))
        if rules.trailing_stop:
            exits.append(("trailing_stop", "trailing_stop",
                          {"trail": rules.trailing_stop, "peak": base}))
        if rules.max_bars:
            exits.append(("time_exit", "market", {}))
        for rule, kind, fields in exits:
            order_id = self._next_id
            self._next_id += 1
            live = t + rules.max_bars if rule == "time_exit" \
                else t + (0 if rules.entry_bar_check else 1)
            order = Resting(id=order_id, asset=asset, type=kind, quantity=None, created=t,
                            live_from=live, group=group, trigger=rule, **fields)
            self.resting.append(order)
            self.resting_orders[order_id] = order
            self.triggers[order_id] = rule
            if self.record:
                self.orders.append([order_id, t, asset, kind, -position, "open", rule, None,
                                    0.0])

    def _settle(self, order: Resting, t: int, status: str, reason: str | None,
                quantity: float = 0.0) -> None:
        """Record what became of a resting order; a parent that ends without filling
        takes its waiting children with it (one that filled in part keeps the live ones)."""
        order.status, order.reason = status, reason
        if self.record:
            record = self.orders[order.id]
            record[5], record[6] = status, reason
            record[7] = t if status == "filled" else None
            record[8] += quantity
        if status != "filled":
            for child in self.resting:
                if (child.parent == order.id and child.status == "open"
                        and child.live_from is None):
                    self._settle(child, t, "cancelled", "cancelled")

    # Portfolio rules (checked when an order is placed)

    def _new_plan(self, equity: float, known: int) -> dict:
        """Positions as planned at a decision: held, plus the open entries (resting orders
        that are neither bracket children nor rule exits)."""
        planned = dict(self.book.positions)
        for order in self.resting:
            if order.status == "open" and order.parent is None and not order.close_position:
                planned[order.asset] = planned.get(order.asset, 0.0) + order.quantity
        peak = max(self._peak, equity)
        return {"equity": equity, "known": known, "planned": planned,
                "drawdown": 1.0 - equity / peak if peak > 0 else 0.0}

    def _breaks(self, rules: Rules, asset: str, kind: str, amount: float) -> str | None:
        """The portfolio rule an order would break (None: none), estimated at the decision
        close; an order that does not increase the asset's exposure breaks none."""
        plan = self._plan
        close = self.bars.last(plan["known"], asset, CLOSE)
        equity = plan["equity"]
        planned = plan["planned"]
        before = planned.get(asset, 0.0)
        if math.isnan(close) or equity <= 0:
            return None
        if kind in TARGET_KINDS:
            after = (amount if kind == "target_shares" else
                     amount / close if kind == "target_value" else amount * equity / close)
        else:
            after = before + (amount if kind == "shares" else amount / close
                              if kind == "value" else amount * equity / close)
        if abs(after) <= abs(before) and before * after >= 0:
            planned[asset] = after
            return None
        tolerance = 1e-9
        broken = None
        if rules.halt_drawdown and plan["drawdown"] >= rules.halt_drawdown - tolerance:
            broken = "halt_drawdown"
        elif rules.max_positions and before == 0.0 and sum(
                1 for q in planned.values() if q != 0.0) >= rules.max_positions:
            broken = "max_positions"
        elif rules.max_weight and abs(after) * close / equity > rules.max_weight + tolerance:
            broken = "max_weight"
        elif rules.max_gross:
            last = self.bars.last
            gross = abs(after) * close + sum(
                abs(q) * last(plan["known"], a, CLOSE) for a, q in planned.items()
                if a != asset and q != 0.0)
            if gross / equity > rules.max_gross + tolerance:
                broken = "max_gross"
        if broken is None:
            planned[asset] = after
        return broken

    def _refuse(self, t: int, order_id: int, asset: str, kind: str, amount: float,
                reason: str) -> None:
        self.rejections.append((t, asset, reason))
        if self.record:
            self.orders.append([order_id, t, asset, kind, amount, "rejected", reason, None, 0.0])

    def _remove(self, order: Order) -> None:
        book = self.book
        if book.pending.get(order.asset) is order:
            del book.pending[order.asset]
        else:
            book.unnetted = tuple(o for o in book.unnetted if o is not order)

    def _move(self, asset: str, quantity: float) -> None:
        """Add `quantity` to a position; a position that becomes exactly 0 is dropped."""
        positions = self.book.positions
        after = add(positions.get(asset, 0.0), quantity)
        if after == 0.0:
            positions.pop(asset, None)
        else:
            positions[asset] = after

    def _book(self, fill: Fill, rules: Rules) -> None:
        """Book a logged fill once more (an engine that books its fills twice)."""
        _, asset, quantity, price, fee, _ = fill
        book = self.book
        book.cash = add(book.cash, -quantity * price - (fee if rules.fees_in_cash else 0.0))
        self._move(asset, quantity)

    def _close(self, order: Order, t: int, status: str, reason: str | None,
               quantity: float) -> None:
        """Record what became of an open order and remove it from the book."""
        self._remove(order)
        if status == "rejected":
            self.rejections.append((t, order.asset, reason))
        if self.record:
            record = self.orders[order.id]
            record[5], record[6] = status, reason
            record[7] = t if status == "filled" else None
            record[8] += quantity


def _sequence(requests: list, rules: Rules) -> list:
    """The batch in execution order (see `Rules.sequence`); `requests` come in asset order."""
    if rules.sequence == "value":
        return sorted(requests, key=_by_value)
    if rules.sequence == "submission":
        return sorted(requests, key=lambda request: request[1].id)
    if rules.sequence == "buys_first":
        ordered = sorted(requests, key=_by_value)
        return [r for r in ordered if r[2] > 0] + [r for r in ordered if r[2] <= 0]
    return list(requests)


def _by_value(request: tuple) -> float:
    return request[0]
