"""An order table as nautilus_trader orders: each row submitted at the close of its bar.

`market`, `limit`, `stop` (STOP_MARKET), `stop_limit` and `trailing_stop`
(TRAILING_STOP_MARKET on the last price; a `trail` below 1 in `percent` mode as basis
points, `absolute` as a price offset) rows become nautilus orders, whole shares, good till
cancelled. Rows sharing a `group` form an OCO order list; a row with an `id` and the rows
naming it as `parent` form a bracket: the entry OTO its children, the children OCO. A row
with `valid_until` (bars or a timestamp) is cancelled by the strategy at the close of its
last bar, so it is tried on the bars after its own up to that one, as ours are.
"""

from __future__ import annotations

import bisect
from decimal import Decimal

import polars as pl

from engine.data.loading import load_orders
from engine.data.market import Market

TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")


def last_bar(row: dict, stamps: list) -> int | None:
    """The last bar a validated order row may fill at: its bar plus `valid_bars`, the last bar
    at or before `valid_until`, or None (good till cancelled)."""
    if row["valid_bars"] is not None:
        return row["bar"] + int(row["valid_bars"])
    if row["valid_until"] is not None:
        return bisect.bisect_right(stamps, row["valid_until"]) - 1
    return None


class OrdersPlan:
    """The rows of an order table by bar, placed inside the nautilus strategy."""

    def __init__(self, market: Market, orders: pl.DataFrame) -> None:
        self.market = market
        rows = load_orders(orders, market).to_dicts()
        stamps = market.timestamps.to_list()
        bar = dict(zip(stamps, range(len(stamps)), strict=True))
        column = {a: j for j, a in enumerate(market.assets.to_list())}
        self.by_bar: dict[int, list[int]] = {}
        self.rows = rows
        self.ends: dict[int, list[int]] = {}
        for i, row in enumerate(rows):
            row["bar"] = bar[row["timestamp"]]
            row["column"] = column[row["asset"]]
            self.by_bar.setdefault(row["bar"], []).append(i)
            last = last_bar(row, stamps)
            if last is not None:
                self.ends.setdefault(last, []).append(i)
        self.orders: dict[int, object] = {}

    def place(self, desk, bar: int) -> None:
        """Cancel the rows whose last bar this is, then submit this bar's rows."""
        strategy = desk.strategy
        for i in self.ends.get(bar, []):
            order = self.orders.get(i)
            if order is not None and order.is_open and not order.is_closed:
                strategy.cancel_order(order)
        rows = self.by_bar.get(bar, [])
        children: dict[object, list[int]] = {}
        groups: dict[object, list[int]] = {}
        for i in rows:
            row = self.rows[i]
            if row["parent"] is not None:
                children.setdefault(row["parent"], []).append(i)
            elif row["group"] is not None:
                groups.setdefault(row["group"], []).append(i)
        done: set[int] = set()
        for i in rows:
            if i in done:
                continue
            row = self.rows[i]
            if row["id"] is not None and row["id"] in children:
                members = [i, *children[row["id"]]]
                self._submit_list(desk, members, bracket=True)
            elif row["group"] is not None and row["parent"] is None:
                members = groups[row["group"]]
                self._submit_list(desk, members, bracket=False)
            elif row["parent"] is not None:
                continue  # a child of an entry placed earlier: submitted with it
            else:
                members = [i]
                order = self._order(desk, i)
                desk.submit(order, i)
            done.update(members)

    def _submit_list(self, desk, members: list[int], bracket: bool) -> None:
        """An order list: a bracket (the first member OTO the others, those OCO) or an
        OCO group."""
        from nautilus_trader.model.enums import ContingencyType
        from nautilus_trader.model.orders import OrderList

        strategy = desk.strategy
        list_id = strategy.order_factory.generate_order_list_id()
        ids = {i: strategy.order_factory.generate_client_order_id() for i in members}
        orders = []
        for k, i in enumerate(members):
            if bracket and k == 0:
                links = dict(contingency_type=ContingencyType.OTO,
                             linked_order_ids=[ids[m] for m in members[1:]])
            else:
                siblings = [ids[m] for m in members[1 if bracket else 0:] if m != i]
                links = dict(contingency_type=ContingencyType.OCO if siblings
                             else ContingencyType.NO_CONTINGENCY,
                             linked_order_ids=siblings or None,
                             parent_order_id=ids[members[0]] if bracket else None)
            orders.append(self._order(desk, i, ids[i], list_id, **links))
        for i, order in zip(members, orders, strict=True):
            desk.rows[order.client_order_id.value] = i
        desk.submitted += len(orders)
        strategy.submit_order_list(OrderList(list_id, orders))

    def _order(self, desk, i: int, client_order_id=None, order_list_id=None,
               contingency_type=None, linked_order_ids=None, parent_order_id=None):
        """Row `i` as a nautilus order (with its contingency when in a list)."""
        from nautilus_trader.core.uuid import UUID4
        from nautilus_trader.model.enums import (
            ContingencyType,
            TimeInForce,
            TrailingOffsetType,
            TriggerType,
        )
        from nautilus_trader.model.orders import (
            LimitOrder,
            MarketOrder,
            StopLimitOrder,
            StopMarketOrder,
            TrailingStopMarketOrder,
        )

        row = self.rows[i]
        self.orders[i] = None
        strategy = desk.strategy
        amount = float(row["quantity"])
        common = dict(
            trader_id=strategy.trader_id, strategy_id=strategy.id,
            instrument_id=desk.instruments[row["column"]].id,
            client_order_id=client_order_id or strategy.order_factory.generate_client_order_id(),
            order_side=desk.side(amount), quantity=desk.quantity(amount), init_id=UUID4(),
            ts_init=strategy.clock.timestamp_ns(), time_in_force=TimeInForce.GTC,
            reduce_only=False, quote_quantity=False,
            contingency_type=contingency_type or ContingencyType.NO_CONTINGENCY,
            order_list_id=order_list_id, linked_order_ids=linked_order_ids,
            parent_order_id=parent_order_id, tags=None,
        )
        kind = row["type"]
        if kind not in TYPES:
            raise ValueError(f"nautilus adapter has no {kind} orders")
        if kind == "market":
            order = MarketOrder(**common)
        elif kind == "limit":
            order = LimitOrder(price=desk.price(row["limit_price"]), expire_time_ns=0,
                               **common)
        elif kind == "stop":
            order = StopMarketOrder(trigger_price=desk.price(row["stop_price"]),
                                    trigger_type=TriggerType.LAST_PRICE, expire_time_ns=0,
                                    **common)
        elif kind == "stop_limit":
            order = StopLimitOrder(price=desk.price(row["limit_price"]),
                                   trigger_price=desk.price(row["stop_price"]),
                                   trigger_type=TriggerType.LAST_PRICE, expire_time_ns=0,
                                   **common)
        else:
            absolute = row["trail_mode"] == "absolute"
            trail = float(row["trail"])
            order = TrailingStopMarketOrder(
                trigger_price=None, trigger_type=TriggerType.LAST_PRICE,
                trailing_offset=Decimal(repr(trail if absolute else trail * 1e4)),
                trailing_offset_type=(TrailingOffsetType.PRICE if absolute
                                      else TrailingOffsetType.BASIS_POINTS),
                expire_time_ns=0, **common)
        self.orders[i] = order
        return order
