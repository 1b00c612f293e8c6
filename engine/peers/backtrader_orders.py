"""Run an order table through backtrader (1.9.78.123) and normalize its fills.

The order table is the one `engine.run_orders` reads (docs/semantics.md, "Order tables,
settings and outputs"): each row is placed at the close of its timestamp (`next()` of that
bar) and first tried at the next bar, as backtrader does with every order.

- `market` → `Order.Market`; `limit` → `Order.Limit` at `limit_price`; `stop` →
  `Order.Stop` at `stop_price`; `stop_limit` → `Order.StopLimit` (`price=stop_price`,
  `plimit=limit_price`); `trailing_stop` → `Order.StopTrail` with `trailpercent=trail`
  (or `trailamount=trail` when `trail_mode` is `absolute`), its first stop from the close
  of the decision bar.
- `valid_until` → `valid`: n bars → a timedelta reaching the n-th calendar bar after the
  decision (half a day past it, so that the float dates backtrader compares never round
  the last bar away); a timestamp → the last bar at or before it, as a date (backtrader
  expires an order at the first bar after it); empty → good till cancelled.
- `group` → `oco=` the group's first order (backtrader's OCO: any execution, expiry or
  cancellation of one cancels the rest).
- A row with an `id` whose two children (the rows naming it as `parent`) are a stop and a
  limit on the other side for the same size → `buy_bracket`/`sell_bracket` (children live
  from the bar after the parent fills, the stop tried before the limit); other children
  are sent with `parent=` and `transmit`.

`fees` is a percentage commission; backtrader's submission check is on (give it the
cash). backtrader does not cap a sell at the position: a sell without shares goes short.
Fills: `timestamp, asset, quantity, price, fee, order_id` (the table's row number) and
`trigger` (the row's type); `orders` has each row's final status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from engine.core.config import BacktestConfig
from engine.data.loading import load_prices
from engine.data.market import Market
from engine.peers.backtrader import _feed_frame, _nearest

COLUMNS = ("timestamp", "asset", "type", "quantity", "limit_price", "stop_price", "trail",
           "trail_mode", "valid_until", "group", "id", "parent")


@dataclass(frozen=True)
class BacktraderOrdersResult:
    """backtrader's fills (with `trigger`) and each row's final status (`orders`)."""

    fills: pl.DataFrame
    orders: pl.DataFrame


def _rows(orders: pl.DataFrame) -> list[dict]:
    data = {c: orders[c].to_list() if c in orders.columns else [None] * orders.height
            for c in COLUMNS}
    return [{c: data[c][i] for c in COLUMNS} | {"row": i} for i in range(orders.height)]


def run_backtrader_orders(prices: pl.DataFrame, orders: pl.DataFrame,
                          config: BacktestConfig | None = None) -> BacktraderOrdersResult:
    """Run `orders` (an order table) on `prices` in backtrader; fills as our tables."""
    import backtrader as bt

    config = config or BacktestConfig.for_profile("backtrader")
    market = Market.from_bars(load_prices(prices))
    cerebro = bt.Cerebro(stdstats=False)
    for j, asset in enumerate(market.assets.to_list()):
        cerebro.adddata(bt.feeds.PandasData(dataname=_feed_frame(market, j), name=asset))
    cerebro.broker.setcash(config.initial_cash)
    cerebro.broker.setcommission(commission=config.fees)
    calendar = market.timestamps.to_list()
    index = {t: i for i, t in enumerate(calendar)}
    by_bar: dict[int, list[dict]] = {}
    for row in _rows(orders):
        by_bar.setdefault(index[row["timestamp"]], []).append(row)
    cerebro.addstrategy(_placer(bt), by_bar=by_bar, calendar=calendar)
    (run,) = cerebro.run()
    stamps = market.timestamps
    fills = pl.DataFrame(run.fill_rows, orient="row", schema={
        "executed": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
        "price": pl.Float64, "fee": pl.Float64, "order_id": pl.Int64, "trigger": pl.String})
    fills = fills.select(pl.Series("timestamp", stamps.gather(_nearest(stamps, fills["executed"]))),
                         "asset", "quantity", "price", "fee", "order_id", "trigger")
    statuses = pl.DataFrame(sorted(run.status.items()), orient="row",
                            schema={"order_id": pl.Int64, "status": pl.String})
    return BacktraderOrdersResult(fills, statuses)


def _valid(row: dict, bar: int, calendar: list) -> dt.timedelta | dt.datetime | None:
    """backtrader's `valid` for the row's `valid_until`: for a number of bars, a timedelta
    to the last bar (plus half a day); for a timestamp, the last bar's time as a date."""
    until = row["valid_until"]
    if until is None:
        return None
    if isinstance(until, dt.datetime):
        return max(t for t in calendar if t <= until)
    last = min(bar + int(until), len(calendar) - 1)
    return calendar[last] - calendar[bar] + dt.timedelta(hours=12)


def _placer(bt):
    """The backtrader Strategy that places the table's rows (built lazily)."""
    kinds = {"market": bt.Order.Market, "limit": bt.Order.Limit, "stop": bt.Order.Stop,
             "stop_limit": bt.Order.StopLimit, "trailing_stop": bt.Order.StopTrail}
    names = {bt.Order.Completed: "filled", bt.Order.Expired: "expired",
             bt.Order.Canceled: "cancelled", bt.Order.Margin: "margin",
             bt.Order.Rejected: "rejected"}

    class Placer(bt.Strategy):
        params = (("by_bar", None), ("calendar", None))

        def __init__(self) -> None:
            self.rows: dict[int, dict] = {}  # order ref → its table row
            self.fill_rows: list[tuple] = []
            self.status: dict[int, str] = {}
            self.groups: dict = {}  # OCO label → its first order

        def notify_order(self, order) -> None:
            row = self.rows.get(order.ref)
            if row is None:
                return
            if order.status == order.Completed:
                self.fill_rows.append((bt.num2date(order.executed.dt), row["asset"],
                                       order.executed.size, order.executed.price,
                                       order.executed.comm, row["row"], row["type"]))
            if order.status in names:
                self.status[row["row"]] = names[order.status]

        def prenext(self) -> None:
            self.next()

        def next(self) -> None:
            bar = len(self) - 1
            rows = self.p.by_bar.get(bar, [])
            children: dict = {}
            for row in rows:
                if row["parent"] is not None:
                    children.setdefault(row["parent"], []).append(row)
            placed: dict = {}
            for row in rows:
                if row["parent"] is not None and row["parent"] in placed:
                    continue  # sent with its parent
                kids = children.get(row["id"], []) if row["id"] is not None else []
                if kids and self._bracket(bar, row, kids):
                    placed[row["id"]] = True
                    continue
                parent = self._send(bar, row, transmit=not kids)
                if row["id"] is not None:
                    placed[row["id"]] = parent
                for i, kid in enumerate(kids):
                    self._send(bar, kid, parent=parent, transmit=i == len(kids) - 1)

        def _arguments(self, bar: int, row: dict) -> dict:
            kind = row["type"]
            args = {"data": self.getdatabyname(row["asset"]), "size": abs(row["quantity"]),
                    "exectype": kinds[kind], "valid": _valid(row, bar, self.p.calendar)}
            if kind == "limit":
                args["price"] = row["limit_price"]
            elif kind == "stop":
                args["price"] = row["stop_price"]
            elif kind == "stop_limit":
                args["price"], args["plimit"] = row["stop_price"], row["limit_price"]
            elif kind == "trailing_stop":
                key = "trailamount" if row["trail_mode"] == "absolute" else "trailpercent"
                args[key] = row["trail"]
            if row["group"] is not None and row["group"] in self.groups:
                args["oco"] = self.groups[row["group"]]
            return args

        def _send(self, bar: int, row: dict, parent=None, transmit: bool = True):
            args = self._arguments(bar, row)
            if parent is not None:
                args["parent"] = parent
            side = self.buy if row["quantity"] > 0 else self.sell
            order = side(transmit=transmit, **args)
            self._track(order, row)
            return order

        def _track(self, order, row: dict) -> None:
            self.rows[order.ref] = row
            self.status[row["row"]] = "open"
            if row["group"] is not None:
                self.groups.setdefault(row["group"], order)

        def _bracket(self, bar: int, row: dict, kids: list[dict]) -> bool:
            """Send a parent with a stop child and a limit child as one bracket call."""
            by_type = {kid["type"]: kid for kid in kids}
            if (len(kids) != 2 or set(by_type) != {"stop", "limit"}
                    or row["type"] not in ("market", "limit")
                    or any(kid["quantity"] != -row["quantity"] for kid in kids)):
                return False
            stop, limit = by_type["stop"], by_type["limit"]
            bracket = self.buy_bracket if row["quantity"] > 0 else self.sell_bracket
            args = self._arguments(bar, row)
            parent_orders = bracket(
                data=args["data"], size=args["size"], price=args.get("price"),
                exectype=args["exectype"], valid=args["valid"],
                stopprice=stop["stop_price"], limitprice=limit["limit_price"],
                stopargs={"valid": _valid(stop, bar, self.p.calendar)},
                limitargs={"valid": _valid(limit, bar, self.p.calendar)})
            for order, r in zip(parent_orders, (row, stop, limit), strict=True):
                self._track(order, r)
            return True

    return Placer
