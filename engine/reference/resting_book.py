"""The resting orders of a simulation: order-table rows, bracket children and the position
rules' exits, placed at a decision and tried along each bar (resting.py holds the per-order
rules; docs/semantics.md, "Resting orders and risk rules").

`RestingOrders` is the part of `Simulation` that owns them: `resting` (the open ones),
`resting_orders` (every one by id), `triggers` (what each order's fills report), the
bracket children waiting for a market parent and the merged market orders that carry
another's entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from engine.reference.bars import CLOSE, OPEN, VOLUME
from engine.reference.execution import buy, rounded, sell
from engine.reference.resting import (
    Resting,
    at_close,
    event,
    last_bar_of,
    reaches,
    stop_fill_price,
    to_tick,
)
from engine.reference.rules import Rules


class RestingOrders:
    """Placing, trying and settling resting orders; mixed into `Simulation`."""

    def _init_resting(self) -> None:
        self.resting: list[Resting] = []
        self.resting_orders: dict[int, Resting] = {}
        self.triggers: dict[int, str] = {}  # order id → trigger of its fills ("market" if absent)
        self._children: dict[int, list[Resting]] = {}  # market order id → its bracket children
        self._absorbed: dict[int, int] = {}  # merged market order id → the order absorbing it
        self._table_ids: dict = {}  # an order table's `id` → our order id
        self._index_resting()
        self._parent_ids: set[int] = set()  # every order some bracket child follows

    def _index_resting(self) -> None:
        """`resting` by asset and by OCO group, in its order (what a fill looks up)."""
        self._by_asset: dict[str, list[Resting]] = {}
        self._by_group: dict = {}
        self._trailing = self._expiring = False  # whether any is a trailing stop, any expires
        for order in self.resting:
            self._index(order)

    def _add_resting(self, order: Resting) -> None:
        self.resting.append(order)
        self._index(order)

    def _index(self, order: Resting) -> None:
        self._by_asset.setdefault(order.asset, []).append(order)
        if order.group is not None:
            self._by_group.setdefault(order.group, []).append(order)
        if order.type == "trailing_stop":
            self._trailing = True
        if order.last_bar is not None:
            self._expiring = True

    def _unindex(self, closed: list[Resting]) -> None:
        """Take orders no longer open out of the indexes of `resting`."""
        for index, key in [(self._by_asset, o.asset) for o in closed] + [
                (self._by_group, o.group) for o in closed if o.group is not None]:
            kept = [o for o in index.get(key, ()) if o.status == "open"]
            if kept:
                index[key] = kept
            else:
                index.pop(key, None)

    # Placing: order-table rows and bracket children

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
        self.journal.opened(order_id, t, asset, kind, quantity)
        if parent is not None:
            self._adopt(t, rules, order, parent)
        elif rules.portfolio_rules and self._plan is not None:
            broken = self._plan.breaks(self.bars, rules, asset, "shares", quantity)
            if broken:
                self._settle(order, t, "rejected", broken)
                self.rejections.append((t, asset, broken))
                return
        if order.status == "open":
            self._add_resting(order)

    @staticmethod
    def _level(price: float | None, prefer_down: bool, rules: Rules) -> float | None:
        """A limit or stop price as placed: rounded to `tick_size` when the rules round
        (a buy limit and a sell stop prefer the lower tick)."""
        if price is None:
            return None
        return to_tick(float(price), prefer_down, rules.tick_size) if rules.tick_size \
            else float(price)

    def _adopt(self, t: int, rules: Rules, child: Resting, parent_id: int) -> None:
        """A bracket child: one OCO group with its siblings, following the order that
        carries its parent's entry (the parent, or the order a later delta order merged it
        into): it waits for that order's first fill, is live from the next bar if that
        order has filled (in part or in full), and is cancelled if it ended unfilled."""
        child.parent = parent_id
        child.group = ("bracket", parent_id)
        self._parent_ids.add(parent_id)
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

    # Trying them along a bar

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
                and o.live_from <= t and o.asset in row]
        if market_ids:
            live = [o for o in live if (o.id < market_ids.get(o.asset, math.inf)) == before]
        sides = {o.id: o.is_buy(book.positions.get(o.asset, 0.0)) for o in live}
        if rules.intrabar_path == "close":
            self._rest_at_close(t, rules, live, sides)
        else:
            self._rest_on_path(t, rules, live, sides)
        if before and market_ids:
            return
        source = "close" if rules.intrabar_path == "close" else rules.trail_source
        for order in self.resting if self._trailing else ():
            if (order.status == "open" and order.type == "trailing_stop"
                    and order.live_from is not None and order.live_from <= t
                    and order.asset in row):
                side = order.is_buy(book.positions.get(order.asset, 0.0))
                order.follow(row[order.asset], sides.get(order.id, side), source)
        for order in self.resting if self._expiring else ():
            if order.status == "open" and order.last_bar is not None and order.last_bar <= t:
                self._settle(order, t, "expired", None)
        closed = [o for o in self.resting if o.status != "open"]
        if closed:
            self.resting = [o for o in self.resting if o.status == "open"]
            self._unindex(closed)

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

    # Filling, and what a fill sets off

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
        plain = self.faults.charging(rules).with_(slippage=0.0)
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
        book.cash = self.faults.cash_after_fee(cash, fee, rules)
        book.move(order.asset, quantity)
        announced = book.positions.get(order.asset, 0.0)  # after the fill, booked once
        fill = (t, order.asset, quantity, adjusted, self.faults.logged_fee(fee, rules), order.id)
        self.faults.executed(book, fill, rules)  # booked and logged as any fill is (a batch
        self.fills += self.faults.batch_logged(book, [fill], rules)  # of its own)
        rule = order.trigger if order.close_position else None
        if cap is not None and size >= cap and wanted - size > 1e-9:
            order.filled += quantity  # the cap cut it short: the rest waits for later bars
            self.journal.filled_part(order.id, t, quantity)
        else:
            self._settle(order, t, "filled", reason or rule, quantity)
        if order.group is not None:
            for other in self._by_group.get(order.group, ()):
                if other.status == "open" and other is not order:
                    self._settle(other, t, "cancelled", "oco")
        for child in self._waiting_children(order.id):
            self._arm(child, t, adjusted, bar, rules.stop_base)
        self._after_fill(t, rules, order.asset, position, adjusted, order.id,
                         closes_by_target=False, after=announced)

    def _after_fill(self, t: int, rules: Rules, asset: str, before: float, price: float,
                    order_id: int, closes_by_target: bool, after: float) -> None:
        """What a fill sets off: a market parent's children go live, a position opened
        from flat gets the position rules' exits, a position closed loses them (and, when
        a target closed it, every resting order of the asset); a reversed position loses
        its exits and gets new ones. `after` is the position once the fill is booked (once:
        an engine that books it again as it executes announces it first, so what watches
        its positions reads them after the first booking)."""
        bar = self.bars.rows[t][asset]
        for child in self._children.pop(order_id, []):
            if child.status == "open":
                self._arm(child, t, price, bar, rules.stop_base)
        reversed_ = before * after < 0.0 and rules.reversal_rearms
        if after == 0.0 or reversed_:  # closed, or reversed
            for order in self._by_asset.get(asset, ()):
                if order.status == "open" and (
                        (closes_by_target and after == 0.0) or order.close_position):
                    self._settle(order, t, "cancelled", "position_closed")
        if after != 0.0 and (before == 0.0 or reversed_) and rules.position_rules:
            self._open_rules(t, rules, asset, after, price, bar)

    def _open_rules(self, t: int, rules: Rules, asset: str, position: float, price: float,
                    bar: tuple, reach: tuple[tuple, bool] | None = None) -> None:
        """The position rules' exits of a position opened at bar `t`: one OCO group, each
        closing the whole position, tried from the next bar (a time exit from bar t + N).
        Given `reach` (a bar and the exits' side there), a stop or limit that cannot fill
        in that bar is left out."""
        group = ("position", asset, t)
        exits = position_exits(rules, position, price, bar)
        if reach is not None:
            at, buys = reach
            exits = [(rule, kind, fields) for rule, kind, fields in exits
                     if kind not in ("stop", "limit") or reaches(kind, buys, fields[kind], at)]
        for rule, kind, fields in exits:
            order_id = self._next_id
            self._next_id += 1
            live = t + rules.max_bars if rule == "time_exit" \
                else t + (0 if rules.entry_bar_check else 1)
            order = Resting(id=order_id, asset=asset, type=kind, quantity=None, created=t,
                            live_from=live, group=group, trigger=rule,
                            side=position < 0, **fields)
            self._add_resting(order)
            self.resting_orders[order_id] = order
            self.triggers[order_id] = rule
            self.journal.opened(order_id, t, asset, kind, -position, rule)

    def _settle(self, order: Resting, t: int, status: str, reason: str | None,
                quantity: float = 0.0) -> None:
        """Record what became of a resting order; a parent that ends without filling
        takes its waiting children with it (one that filled in part keeps the live ones)."""
        order.status, order.reason = status, reason
        self.journal.settled(order.id, t, status, reason, quantity)
        if status != "filled":
            for child in self._waiting_children(order.id):
                self._settle(child, t, "cancelled", "cancelled")

    def _waiting_children(self, order_id: int) -> list[Resting]:
        """The open bracket children of a resting order that wait for it to fill."""
        if order_id not in self._parent_ids:
            return []
        return [child for child in self.resting if child.parent == order_id
                and child.status == "open" and child.live_from is None]


def position_exits(rules: Rules, position: float, price: float, bar: tuple
                   ) -> list[tuple[str, str, dict]]:
    """The position rules' exits of a position opened at `price` in `bar`: (rule, order
    type, its level fields), levels from the fill price or the bar's close (`stop_base`)."""
    base = price if rules.stop_base == "fill" else bar[CLOSE]
    long = position > 0
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
    return exits
