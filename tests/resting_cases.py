"""Random OHLC bars with price gaps and random order tables, for the resting-order tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from engine import Strategy

START = dt.datetime(2024, 1, 1)
# how a bracket's children are placed: right after the entry; after the other orders of
# the decision; after a market order of the asset that the entry merges into; at a later
# decision (the entry may have filled by then); or under an entry that never fills
PLACEMENTS = ("after_entry", "after_others", "after_merge", "later_bar", "never_fills")
TABLE_SCHEMA = {
    "timestamp": pl.Datetime("us"), "asset": pl.String, "type": pl.String,
    "quantity": pl.Float64, "limit_price": pl.Float64, "stop_price": pl.Float64,
    "trail": pl.Float64, "trail_mode": pl.String, "valid_until": pl.Int64,
    "group": pl.String, "id": pl.Int64, "parent": pl.Int64,
}


def gappy_bars(n_assets: int, n_bars: int, seed: int, jump: float = 0.1,
               missing: float = 0.0) -> pl.DataFrame:
    """Random-walk daily bars whose opens gap from the previous close (a `jump` share of
    them by 2–6%), with `low ≤ min(open, close)` and `high ≥ max(open, close)`; a
    `missing` share of bars (never the first) is dropped."""
    rng = np.random.default_rng(seed)
    shape = (n_bars, n_assets)
    close = np.empty(shape)
    open_ = np.empty(shape)
    previous = 50 + 50 * rng.random(n_assets)
    for t in range(n_bars):
        gap = rng.normal(0, 0.004, n_assets)
        jumps = rng.random(n_assets) < jump
        gap[jumps] += rng.choice([-1, 1], jumps.sum()) * rng.uniform(0.02, 0.06, jumps.sum())
        open_[t] = previous * np.exp(gap)
        close[t] = open_[t] * np.exp(rng.normal(0, 0.015, n_assets))
        previous = close[t]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, shape)))
    present = rng.random(shape) >= missing
    present[0] = True
    days = [START + dt.timedelta(days=i) for i in range(n_bars)]
    names = [f"S{j:03d}" for j in range(n_assets)]
    rows = [(days[t], names[j], open_[t, j], high[t, j], low[t, j], close[t, j], 1e9)
            for t in range(n_bars) for j in range(n_assets) if present[t, j]]
    return pl.DataFrame(rows, orient="row", schema={
        "timestamp": pl.Datetime("us"), "asset": pl.String, "open": pl.Float64,
        "high": pl.Float64, "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64})


def table(rows: list[dict]) -> pl.DataFrame:
    """An order table from row dicts (missing columns empty)."""
    return pl.DataFrame([{c: r.get(c) for c in TABLE_SCHEMA} for r in rows],
                        schema=TABLE_SCHEMA, orient="row")


class Orders:
    """Random orders priced around each decision bar's close."""

    def __init__(self, prices: pl.DataFrame, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.days = prices["timestamp"].unique().sort().to_list()
        self.assets = prices["asset"].unique().sort().to_list()
        self.close = {(t, a): c for t, a, c in prices.select("timestamp", "asset",
                                                            "close").iter_rows()}
        self.rows: list[dict] = []
        self.deferred: list[dict] = []  # rows placed after every other row of their bar

    def base(self, shares: float) -> None:
        """A market buy of `shares` of every asset at the first bar (sells never short)."""
        for asset in self.assets:
            self.add(0, asset, "market", shares)

    def pick(self, last_margin: int = 2) -> tuple[int, str, float]:
        """A random decision bar and an asset that has a bar there."""
        while True:
            t = int(self.rng.integers(1, max(len(self.days) - last_margin, 2)))
            asset = self.assets[int(self.rng.integers(len(self.assets)))]
            if (self.days[t], asset) in self.close:
                return t, asset, self.close[(self.days[t], asset)]

    def add(self, t: int, asset: str, kind: str, quantity: float, **fields) -> dict:
        row = {"timestamp": self.days[t], "asset": asset, "type": kind,
               "quantity": float(quantity), **fields}
        self.rows.append(row)
        return row

    def away(self, close: float, up: bool, low: float = 0.002, high: float = 0.04) -> float:
        move = self.rng.uniform(low, high)
        return close * (1 + move) if up else close * (1 - move)

    def valid(self) -> int | None:
        return None if self.rng.random() < 0.5 else int(self.rng.integers(1, 8))

    def single(self, kind: str, sell: bool) -> dict:
        """One order of `kind`: limits below the close for buys, stops above, and so on;
        a stop-limit's limit is on the far side of its stop (it fills at its trigger)."""
        t, asset, close = self.pick()
        quantity = -float(self.rng.integers(1, 20)) if sell else float(self.rng.integers(1, 20))
        fields: dict = {} if kind == "market" else {"valid_until": self.valid()}
        if kind == "limit":
            fields["limit_price"] = self.away(close, up=sell)
        elif kind == "stop":
            fields["stop_price"] = self.away(close, up=not sell)
        elif kind == "stop_limit":
            stop = self.away(close, up=not sell)
            fields["stop_price"] = stop
            fields["limit_price"] = self.away(stop, up=not sell, low=0.0, high=0.01)
        elif kind == "trailing_stop":
            if self.rng.random() < 0.5:
                fields["trail"] = float(self.rng.uniform(0.01, 0.05))
            else:
                fields["trail"] = close * float(self.rng.uniform(0.01, 0.05))
                fields["trail_mode"] = "absolute"
        return self.add(t, asset, kind, quantity, **fields)

    def oco(self, label: str, sell: bool) -> None:
        """A stop and a limit on one side in one OCO group (the stop first)."""
        t, asset, close = self.pick()
        quantity = -float(self.rng.integers(1, 20)) if sell else float(self.rng.integers(1, 20))
        valid = self.valid()
        self.add(t, asset, "stop", quantity, stop_price=self.away(close, up=not sell),
                 group=label, valid_until=valid)
        self.add(t, asset, "limit", quantity, limit_price=self.away(close, up=sell),
                 group=label, valid_until=valid)

    def bracket(self, ident: int, entry: str, quantity: float,
                placements: tuple[str, ...] = PLACEMENTS[:1]) -> None:
        """An entry (market or limit) with a stop-loss and a take-profit child (a limit
        entry and its children valid for the same bars, or good till cancelled), placed
        one of the ways `placements` names (`PLACEMENTS`; drawn when several)."""
        t, asset, close = self.pick(last_margin=3)
        buy = quantity > 0
        placement = placements[0]
        if len(placements) > 1:
            placement = placements[int(self.rng.integers(len(placements)))]
        valid = self.valid() if entry == "limit" else None
        parent = {"id": ident, "valid_until": valid}
        if entry == "limit":
            far = placement == "never_fills"  # a limit the bars do not reach
            parent["limit_price"] = self.away(close, up=not buy, low=0.5 if far else 0.0,
                                              high=0.6 if far else 0.02)
        self.add(t, asset, entry, quantity, **parent)
        if placement == "after_merge" and entry == "market":
            self.add(t, asset, "market", float(self.rng.integers(1, 10)) * (1 if buy else -1))
        later = placement == "later_bar" and t + 2 < len(self.days) - 1
        child_t = t + int(self.rng.integers(1, 3)) if later else t
        rows = self.rows if placement != "after_others" else self.deferred
        for kind, fields in (("stop", {"stop_price": self.away(close, up=not buy, low=0.01,
                                                                high=0.05)}),
                             ("limit", {"limit_price": self.away(close, up=buy, low=0.01,
                                                                 high=0.05)})):
            rows.append({"timestamp": self.days[child_t], "asset": asset, "type": kind,
                         "quantity": -quantity, "parent": ident,
                         "valid_until": valid if child_t == t else None, **fields})

    def frame(self) -> pl.DataFrame:
        """The table in time order (row order kept within a timestamp; deferred rows after
        every other row of their timestamp)."""
        return table(self.rows + self.deferred).sort("timestamp", maintain_order=True)


def entries(prices: pl.DataFrame, seed: int, share: float = 0.15) -> pl.DataFrame:
    """Entry decisions `timestamp, asset, quantity` on a random `share` of bars, with one
    quantity per asset (so an entry while holding is a no-op target, as in vectorbt)."""
    rng = np.random.default_rng(seed)
    days = prices["timestamp"].unique().sort().to_list()
    assets = prices["asset"].unique().sort().to_list()
    rows = [(t, a, 10.0 + 7 * j) for t in days[:-1] for j, a in enumerate(assets)
            if rng.random() < share]
    return pl.DataFrame(rows, orient="row", schema={
        "timestamp": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64})


def target_calls(entries: pl.DataFrame) -> pl.DataFrame:
    """The entries as `target_shares` order calls (`timestamp, asset, kind, amount`)."""
    return entries.select("timestamp", "asset", pl.lit("target_shares").alias("kind"),
                          pl.col("quantity").alias("amount"))


def random_orders(prices: pl.DataFrame, seed: int, n: int) -> pl.DataFrame:
    """A mix of `n` random singles (both sides, every type), OCO pairs and brackets."""
    orders = Orders(prices, seed)
    rng = orders.rng
    for i in range(n):
        draw = rng.random()
        if draw < 0.6:
            kind = ("market", "limit", "stop", "stop_limit", "trailing_stop")[
                int(rng.integers(5))]
            orders.single(kind, sell=bool(rng.random() < 0.4))
        elif draw < 0.8:
            orders.oco(f"g{i}", sell=bool(rng.random() < 0.5))
        else:
            orders.bracket(10_000 + i, "limit" if rng.random() < 0.5 else "market",
                           float(rng.integers(1, 30)), PLACEMENTS)
    return orders.frame()


class Replay(Strategy):
    """An order table's rows as `Context.order` calls at their decisions, in row order
    (a row's `group` as the `oco` label, its `parent` as the id its parent row got);
    `after[(bar, k)]` lists calls `f(ctx)` made right after the bar's row k."""

    def __init__(self, rows: list[dict], after: dict | None = None) -> None:
        self.after = after or {}
        self.ids: dict = {}
        self.by_bar: dict = {}
        for r in rows:
            self.by_bar.setdefault(r["timestamp"], []).append(r)

    def on_bar(self, ctx) -> None:
        for k, r in enumerate(self.by_bar.get(ctx.timestamp, [])):
            options: dict = {}
            for column, name in (("limit_price", "limit"), ("stop_price", "stop"),
                                 ("trail", "trail"), ("group", "oco")):
                if r.get(column) is not None:
                    options[name] = r[column]
            if r.get("trail") is not None:
                options["trail_mode"] = r.get("trail_mode") or "percent"
            if r.get("valid_until") is not None:
                options["valid_until"] = int(r["valid_until"])
            if r.get("parent") is not None:
                options["parent"] = self.ids[r["parent"]]
            (oid,) = ctx.order(r["asset"], r["quantity"], **options).tolist()
            if r.get("id") is not None:
                self.ids[r["id"]] = oid
            for call in self.after.get((ctx.bar, k), ()):
                call(ctx)
