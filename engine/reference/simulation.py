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

Module by responsibility: `book.py` the book, `resting_book.py` the resting orders of a run,
`portfolio.py` the portfolio rules, `faults.py` the hooks where the gap analysis switches
on how engines go wrong (all off under `Rules()`), `journal.py` what a run records beside
its fills (a `Journal` for a run's result; `Unrecorded` for a replay).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

from engine.reference.bars import CLOSE, OPEN, VOLUME, Bars
from engine.reference.book import Book, Fill, Overrides, Place
from engine.reference.execution import add, rounded, sell
from engine.reference.faults import Faults
from engine.reference.journal import Journal, OrderRecord
from engine.reference.orders import TARGET_KINDS, Call, Order, Rebalance, whole_shares
from engine.reference.portfolio import Plan
from engine.reference.resting import reaches
from engine.reference.resting_book import RestingOrders, position_exits
from engine.reference.rules import Rules

__all__ = ["Book", "Fill", "Overrides", "Place", "Simulation"]

# what a snapshot leaves to the run it is given to
_SHARED = ("bars", "decisions", "rules_at", "_reach_memo", "_level_memo")
LEVELS_KEPT = 100_000  # entries whose exit levels are kept (`_levels`)
REACH_KEPT = 16  # bars and levels whose answers `_reaching` keeps


class Simulation(RestingOrders):
    """Runs decisions under rules over bars; `fills` and its `journal` (the orders and the
    equity) record the run."""

    def __init__(self, bars: Bars, decisions: dict[int, list[Call | Rebalance]],
                 rules: Rules | Callable[[int], Rules], initial_cash: float,
                 journal: Journal | None = None) -> None:
        self.bars = bars
        self.decisions = decisions
        self.rules_at = rules if callable(rules) else (lambda _bar, r=rules: r)
        self.book = Book(float(initial_cash))
        self.journal = Journal() if journal is None else journal
        self.fills: list[Fill] = []
        self.rejections: list[tuple[int, str, str]] = []
        self.faults = Faults(float(initial_cash))
        self._next_id = 0
        self._init_resting()
        self._plan: Plan | None = None  # portfolio rules: positions planned by this decision
        self._peak = -math.inf  # the equity peak (for halt_drawdown)
        self._volume_left: dict[str, float] = {}  # shares the volume cap leaves this bar
        self._spent: set[str] = set()  # assets an order found the cap spent on this bar
        self._reach_memo: dict = {}  # `_reaching`: a few bars' answers
        self._level_memo: dict = {}  # `_levels`: each entry's stop and limit levels

    @property
    def orders(self) -> list[OrderRecord]:
        """Every order the run placed, in the order placed."""
        return list(self.journal.orders.values())

    @property
    def equity(self) -> list[tuple[float, float]]:
        """(cash, positions value) after each bar of the run."""
        return self.journal.equity

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
        self.faults.overrides = overrides or {}
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
        self.journal.marked(t, self.book.cash, self.marked)
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
            self.faults.remember(self.book)
        for order in done:
            self.book.remove(order)
        for asset, quantity, price, fee in fills:
            self.book.cash = add(self.book.cash, -quantity * price - fee)
            self.book.move(asset, quantity)
            self.fills.append((t, asset, quantity, price, fee, -1))
        self._decide(t, rules, t)
        for order in [o for o in self.book.open_orders() if o.due <= t and o.asset in row]:
            self.book.remove(order)  # a same-bar engine filled them just now
        self.journal.marked(t, self.book.cash, self.marked)

    # Stepping from a given book (the gap analysis replays another engine one bar at a time)

    def reset(self, book: Book, rules: Rules | None = None) -> None:
        """Start the next bar from `book` (and, if given, under `rules` at every bar):
        nothing recorded so far, no one-off prices, no resting order or bracket child."""
        if rules is not None:
            self.rules_at = lambda _bar, r=rules: r
        self.book = book
        self.fills, self.rejections, self.journal.equity = [], [], []
        self.faults.overrides = {}
        if self.resting or self.resting_orders or self._children:
            self.resting, self.resting_orders, self.triggers, self._children = [], {}, {}, {}
            self._index_resting()

    def arm_exits(self, rules: Rules, entries: list[tuple[str, int, float]],
                  first_id: int, as_long: frozenset[str] = frozenset(),
                  at: int | None = None) -> None:
        """The position rules' exits of the positions held, opened by `entries` (asset,
        entry bar, fill price), numbered from `first_id`; those of `as_long` armed as the
        long their entry opened, whatever the book holds now. Given the bar `at` they are
        armed for, the stops and limits that cannot fill there are left out where no
        order of the asset is open (none can move the position before they are tried)."""
        saved, self._next_id = self._next_id, first_id
        book = self.book
        positions = book.positions
        row = self.bars.rows[at] if at is not None else None
        ordered = {*book.pending, *(o.asset for o in book.unnetted)} if row is not None \
            else set()
        # with stops and limits alone, whether any can fill is the same for every book
        # that holds the position on the same side: worked out once per bar and rules
        levels_only = not (rules.trailing_stop or rules.max_bars)
        reaching = self._reaching(at, rules) if row is not None and levels_only else None
        for asset, bar, price in entries:
            held = positions.get(asset, 0.0)
            position = abs(held) if asset in as_long else held
            if not position:
                continue
            reach = None
            if row is not None and asset not in ordered:
                if asset not in row:
                    continue  # no bar: none is tried at `at`
                buys = position < 0  # the side they are armed for (`Resting.side`)
                reach = (row[asset], buys)
                if reaching is not None:
                    key = (asset, bar, price, position > 0, buys)
                    can = reaching.get(key)
                    if can is None:
                        can = reaching[key] = any(
                            reaches(kind, buys, level, reach[0])
                            for kind, level in self._levels(rules, asset, bar, price, position))
                    if not can:
                        continue
            self._open_rules(bar, rules, asset, position, price, self.bars.rows[bar][asset],
                             reach)
        self._next_id = saved

    def _levels(self, rules: Rules, asset: str, bar: int, price: float, position: float
                ) -> tuple[tuple[str, float], ...]:
        """An entry's stop and limit levels under `rules` (`position_exits`), the same at
        every bar its exits are armed for: worked out once."""
        key = (rules.stop_loss, rules.take_profit, rules.stop_base, asset, bar, price,
               position > 0)
        memo = self._level_memo
        found = memo.get(key)
        if found is None:
            if len(memo) >= LEVELS_KEPT:
                memo.clear()
            found = memo[key] = tuple(
                (kind, fields[kind]) for _, kind, fields in position_exits(
                    rules, position, price, self.bars.rows[bar][asset])
                if kind in ("stop", "limit"))
        return found

    def _reaching(self, at: int, rules: Rules) -> dict:
        """Whether an entry's stops or limits can fill at bar `at` under `rules`' levels,
        by entry and side (kept for the last few bars and rules asked: what `arm_exits`
        asks again for each book, as replays go back and forth between nearby bars)."""
        key = (at, rules.stop_loss, rules.take_profit, rules.stop_base)
        memo = self._reach_memo
        answers = memo.get(key)
        if answers is None:
            if len(memo) >= REACH_KEPT:
                memo.clear()
            answers = memo[key] = {}
        return answers

    def snapshot(self) -> dict:
        """Everything the run holds after the bars stepped so far, copied, for `restore`: a
        replay that departs from this one only at a later bar resumes from here."""
        state = {k: v for k, v in vars(self).items() if k not in _SHARED and k != "fills"}
        return {"fills": list(self.fills), **copy.deepcopy(state, self._memo(state))}

    def restore(self, snapshot: dict) -> None:
        """Continue from a `snapshot` (of a run over the same bars and decisions, under
        rules that agree with this run's up to the bar it was taken at)."""
        state = {k: v for k, v in snapshot.items() if k != "fills"}
        vars(self).update(copy.deepcopy(state, self._memo(state)))
        self.fills = list(snapshot["fills"])

    def _memo(self, state: dict) -> dict:
        """What a copy of `state` shares instead of copying: the bars and decisions, the
        resting orders that are no longer open (nothing changes them again), and the
        records of values (rejections, triggers), copied one level deep."""
        memo = {id(self.bars): self.bars, id(self.decisions): self.decisions}
        memo.update((id(order), order) for order in state["resting_orders"].values()
                    if order.status != "open")
        for name in ("rejections", "triggers"):
            memo[id(state[name])] = copy.copy(state[name])
        return memo

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
        self.book.move(asset, quantity)
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
        held = self.faults.sizing_positions(book, rules, target=True)
        last = self.bars.last
        equity = book.cash
        for asset in sorted(book.positions):
            equity += book.positions[asset] * last(known, asset, CLOSE)
        if rules.portfolio_rules:
            self._plan = Plan.at_decision(book, self.resting, self._peak, equity, known)
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
        chosen = self.faults.ordered(chosen, weights, rules)
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
            if rules.close_first:
                for asset in sorted(book.positions):
                    self._submit(t, rules, asset, "target_percent", 0.0)
            for asset in ordered:
                if not (rules.close_first and asset in held and weights.get(asset, 0.0) == 0.0):
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
            broken = self._plan.breaks(self.bars, rules, asset, kind, amount)
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
            self.journal.folded(previous.id, order_id, replaced=kind in TARGET_KINDS)
        self.journal.opened(order_id, t, asset, kind, amount)

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
        exec_prices = self.faults.prices(fill_prices)
        prices = self._valuation(t, rules, point, due, fill_prices)
        value = book.value(prices)
        if rules.valuation == "previous_close_value":  # targets priced at the fill
            prices = self._valuation(t, rules.with_(valuation="fill_price"), point, due,
                                     fill_prices)
        sizing = self.faults.sizing_positions(book, rules, target=False)
        requests = []
        for order in due:
            position = self.faults.netted_position(order, sizing.get(order.asset, 0.0), rules)
            delta, key = order.requested(position, value, prices[order.asset])
            requests.append((key, order, delta))
        requests = _sequence(requests, rules)

        self.faults.remember(book)
        headroom = (rules.max_leverage - 1.0) * value
        self.faults.start_batch(book.cash)
        logged: list[Fill] = []
        for i, (_, order, delta) in enumerate(requests):
            if rules.value_refresh and i:
                position = sizing.get(order.asset, 0.0)
                delta, _ = order.requested(position, book.value(prices), prices[order.asset])
            fill = self._execute(t, rules, order, delta, exec_prices[order.asset],
                                 row[order.asset][VOLUME], headroom)
            if fill is not None:
                logged.append(fill)
        held = {fill[1]: book.positions.get(fill[1], 0.0) for fill in logged}
        self.fills += self.faults.batch_logged(book, logged, rules)
        for asset, before in held.items():  # booked again after the batch: a position
            after = book.positions.get(asset, 0.0)  # that closed or reversed loses its exits
            if before and (after == 0.0 or before * after < 0.0):
                for order in self._by_asset.get(asset, ()):
                    if order.status == "open" and order.close_position:
                        self._settle(order, t, "cancelled", "position_closed")

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
        bar = max(o.created for o in due) if rules.valuation == "decision_close" else t - 1
        prices = {a: last(bar, a, CLOSE) for a in book.positions}
        for order in due:
            close = last(bar, order.asset, CLOSE)
            prices[order.asset] = fill_prices[order.asset] if math.isnan(close) else close
        return prices

    def _execute(self, t: int, rules: Rules, order: Order, delta: float, price: float,
                 volume: float, headroom: float) -> Fill | None:
        """Execute one due order and book it; close it or keep what the volume cap left."""
        book, faults, asset = self.book, self.faults, order.asset
        if rules.rounding == "floor":
            delta = math.floor(delta / rules.lot) * rules.lot
        position = book.positions.get(asset, 0.0)
        size = abs(delta)
        if delta < 0 and not rules.allow_short:
            size = min(size, position)
        size = rounded(size, rules)
        cap = self._cap(asset, rules, volume)
        if cap is not None:
            size = min(size, cap)
        charging = faults.charging(rules)
        if delta > 0:
            status, reason, size, adjusted, fee, cash = faults.buy(size, price, book,
                                                                   headroom, charging)
        else:
            status, reason, size, adjusted, fee, cash = sell(size, price, book.cash, charging)
        quantity = size if delta > 0 else -size
        self._use_volume(asset, cap, quantity)
        kept = cap is not None and abs(quantity) >= cap and abs(delta - quantity) > 1e-9 \
            and status != "rejected"  # the cap cut it short: the rest waits
        fill = None
        if status == "filled":
            cash, fee = faults.fee(asset, cash, fee)
            book.cash = faults.cash_after_fee(cash, fee, rules)
            book.move(asset, quantity)
            announced = book.positions.get(asset, 0.0)  # after the fill, booked once
            fill = (t, asset, quantity, adjusted, faults.logged_fee(fee, rules), order.id)
            faults.executed(book, fill, rules)  # the batch's later orders see it
            if self.resting or self._children or rules.position_rules:
                self._after_fill(t, rules, asset, position, adjusted, order.id,
                                 closes_by_target=order.target_kind is not None,
                                 after=announced)
        elif order.id in self._children and not kept:
            for child in self._children.pop(order.id):
                self._settle(child, t, "cancelled", "cancelled")
        if kept:
            book.remove(order)
            left = order.less(quantity)
            if order.asset in book.pending:
                book.unnetted = (*book.unnetted, left)
            else:
                book.pending[order.asset] = left
            self.journal.filled_part(order.id, t, quantity)
        else:
            self._close(order, t, status, reason, quantity)
        return fill

    def _refuse(self, t: int, order_id: int, asset: str, kind: str, amount: float,
                reason: str) -> None:
        self.rejections.append((t, asset, reason))
        self.journal.refused(order_id, t, asset, kind, amount, reason)

    def _close(self, order: Order, t: int, status: str, reason: str | None,
               quantity: float) -> None:
        """Record what became of an open order and remove it from the book."""
        self.book.remove(order)
        if status == "rejected":
            self.rejections.append((t, order.asset, reason))
        self.journal.settled(order.id, t, status, reason, quantity)

    # The volume cap (zipline's): shares per asset and bar, shared by every kind of order

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
