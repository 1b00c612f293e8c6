"""What a fill log shows directly: the price point and slippage, the fee model, rounding.

Each is fitted robustly over the whole log (the model most fills follow exactly, so a
one-off error cannot bend it), then checked bar by bar: a bar whose fills follow another
model consistently is a change of rules at that bar (another price point from one fill on,
as a fill exactly at the other point is no coincidence; another slippage from two); a fill
that fits neither its bar's model nor the log's is a one-off price or fee (an override the
oracle replays as given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from engine.reference.bars import CLOSE, OPEN, Bars

PRICE_TOLERANCE = 1e-9  # relative, on the fill price against its model
FEE_TOLERANCE = 1e-9  # relative to the fee (or to a millionth of the notional)


@dataclass(frozen=True)
class PriceModel:
    """Fills at the bar's `point` (open or close) moved by `slippage` against the trader."""

    point: str = "open"
    slippage: float = 0.0


@dataclass(frozen=True)
class FeeModel:
    """fee = n × price × fees + max(n × per_share, min_fee) + fixed_fee."""

    fees: float = 0.0
    per_share: float = 0.0
    min_fee: float = 0.0
    fixed_fee: float = 0.0

    def of(self, size: np.ndarray, notional: np.ndarray) -> np.ndarray:
        return (notional * self.fees + np.maximum(size * self.per_share, self.min_fee)
                + self.fixed_fee)

    def as_rules(self) -> dict[str, float]:
        return {"fees": self.fees, "per_share": self.per_share, "min_fee": self.min_fee,
                "fixed_fee": self.fixed_fee}


@dataclass(frozen=True)
class Observed:
    """A side's observable rules, overall and where single bars or fills depart from them."""

    price: PriceModel = PriceModel()
    fee: FeeModel = FeeModel()
    rounding: str = "none"
    lot: float = 1.0
    price_by_bar: dict[int, PriceModel] = field(default_factory=dict)
    fee_by_bar: dict[int, FeeModel] = field(default_factory=dict)
    rounding_by_bar: dict[int, tuple[str, float]] = field(default_factory=dict)
    overrides: dict[int, dict[str, tuple[float | None, float | None]]] = field(
        default_factory=dict)
    # An exit rule fitted to the fills that answer no decision (exits.py), as `Rules`
    # fields acting from bar `exit_since` (the first entry it armed), and its words.
    exit_fields: tuple[tuple[str, object], ...] = ()
    exit_since: int = 0
    exit_words: str = ""
    exit_bars: tuple[int, ...] = ()  # the bars between decisions it exited at
    # the fitted rule exits at the next open (a risk manager's market orders): at a
    # decision's bar such exits may come before the batch, which is sized after them
    exits_at_open: tuple[str, str, float] | None = None  # (kind, base, level)

    def price_at(self, bar: int) -> PriceModel:
        return self.price_by_bar.get(bar, self.price)

    def fee_at(self, bar: int) -> FeeModel:
        return self.fee_by_bar.get(bar, self.fee)

    def rounding_at(self, bar: int) -> tuple[str, float]:
        return self.rounding_by_bar.get(bar, (self.rounding, self.lot))

    @property
    def rounds(self) -> bool:
        """Whether whole lots show anywhere in the log."""
        return self.rounding != "none" or any(r != "none" for r, _ in
                                              self.rounding_by_bar.values())

    def rules_at(self, bar: int) -> dict:
        """The `Rules` fields this side's fills show at `bar`."""
        price = self.price_at(bar)
        rounding, lot = self.rounding_at(bar)
        exits = dict(self.exit_fields) if self.exit_fields and bar >= self.exit_since else {}
        return {"point": price.point, "slippage": price.slippage,
                **self.fee_at(bar).as_rules(), "rounding": rounding, "lot": lot, **exits}


def observe(fills: pl.DataFrame, bars: Bars, bar_of: dict, exits: bool = False) -> Observed:
    """Fit a side's price, fee and rounding models from its fills (`bar_of`: timestamp → bar).

    With `exits` (position rules in force), a fill that may be a rule's exit fills at its
    level, not at the market's price point: it is left out of the price model and never a
    one-off price (the diagnosis replays it). Such a fill is one whose `trigger` is not
    `market` when the log has that column, else one that leaves its position flat.
    """
    if fills.height == 0:
        return Observed()
    if exits:
        if "trigger" in fills.columns:
            fills = fills.with_columns(_exit=pl.col("trigger").fill_null("market") != "market")
        else:
            after = pl.col("quantity").cum_sum().over("asset")
            fills = fills.with_columns(_exit=after.abs() <= 1e-9 * pl.col("quantity").abs()
                                       .clip(lower_bound=1e-3))
    rows = fills.filter(pl.col("quantity") != 0.0)
    free = rows["_exit"].to_numpy() if exits else np.zeros(rows.height, dtype=bool)
    index = pl.DataFrame({"timestamp": list(bar_of), "_bar": list(bar_of.values())},
                         schema={"timestamp": rows.schema["timestamp"], "_bar": pl.Int64})
    bar = rows.join(index, on="timestamp", how="left", maintain_order="left")["_bar"]
    opens, closes = bars.at(bar.fill_null(-1).to_numpy(), rows["asset"], OPEN, CLOSE)
    bar = bar.to_numpy()
    asset = rows["asset"].to_numpy()
    q = rows["quantity"].to_numpy()
    p = rows["price"].to_numpy()
    f = rows["fee"].to_numpy()
    side = np.sign(q)
    slip = {"open": side * (p / opens - 1.0), "close": side * (p / closes - 1.0)}
    size = np.abs(q)
    notional = size * p

    price = _price_model(slip, ~free if (~free).any() else np.ones(len(q), dtype=bool))
    fee_model = _fee_model(size, notional, f)
    rounding, lot = _rounding(size)

    price_fit = _fits_price(price, slip) | free
    fee_fit = _fits_fee(fee_model, size, notional, f)
    price_by_bar: dict[int, PriceModel] = {}
    fee_by_bar: dict[int, FeeModel] = {}
    overrides: dict[int, dict[str, tuple[float | None, float | None]]] = {}
    order = np.argsort(bar, kind="stable")
    bounds = np.flatnonzero(np.diff(bar[order])) + 1
    groups = np.split(order, bounds)
    rounding_by_bar = _rounding_by_bar(size, bar, groups, rounding, lot)
    for rows_of_bar in groups:
        if price_fit[rows_of_bar].all() and fee_fit[rows_of_bar].all():
            continue
        b = int(bar[rows_of_bar[0]])
        local = {k: v[rows_of_bar] for k, v in slip.items()}
        local_price = price
        held = ~free[rows_of_bar]
        if (~price_fit[rows_of_bar]).mean() > 0.5 and held.any():
            local_price = _price_model(local, held)
            # a bar's own slippage needs two fills to show it (one fill's is its price)
            if (_fits_price(local_price, local)[held].mean() > 0.5
                    and local_price != price
                    and (local_price.slippage == 0.0 or held.sum() >= 2)):
                price_by_bar[b] = local_price
            else:
                local_price = price
        local_fee = fee_model
        n, q, v = size[rows_of_bar], notional[rows_of_bar], f[rows_of_bar]
        if (~fee_fit[rows_of_bar]).mean() > 0.5 and len(rows_of_bar) >= 3:
            candidate = _fee_model(n, q, v)
            if _fits_fee(candidate, n, q, v).mean() > 0.5 and candidate != fee_model:
                fee_by_bar[b] = local_fee = candidate
        ok_price = _fits_price(local_price, local) | free[rows_of_bar]
        ok_fee = _fits_fee(local_fee, n, q, v)
        for i in np.flatnonzero(~ok_price | ~ok_fee):
            row = rows_of_bar[i]
            overrides.setdefault(b, {})[str(asset[row])] = (
                None if ok_price[i] else _unslipped(p[row], side[row], local_price.slippage),
                None if ok_fee[i] else float(f[row]))
    return Observed(price, fee_model, rounding, lot, price_by_bar, fee_by_bar,
                    rounding_by_bar, overrides)


def _unslipped(price: float, side: float, slippage: float) -> float:
    """The fill-point price that `slippage` turns into `price` (what the oracle is given)."""
    return float(price / (1.0 + side * slippage))


def _price_model(slip: dict[str, np.ndarray], where: np.ndarray) -> PriceModel:
    """The (point, slippage) most of the chosen fills follow exactly; between as many, the
    one without slippage (a fill at the close is not one at the open slipped by chance).
    Slippage is against the trader: a point whose commonest value is below zero is that
    point without slippage, counting the fills it fits."""
    best, best_rank = PriceModel(), (-1, False)
    for point in ("open", "close"):
        values = np.round(slip[point][where], 10)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        unique, counts = np.unique(values, return_counts=True)
        i = int(counts.argmax())
        slippage, count = float(unique[i]), int(counts[i])
        if slippage < 0.0:
            slippage, count = 0.0, int((values == 0.0).sum())
        rank = (count, slippage == 0.0)
        if rank > best_rank:
            best, best_rank = PriceModel(point, slippage), rank
    return best


def _fits_price(model: PriceModel, slip: dict[str, np.ndarray]) -> np.ndarray:
    values = slip[model.point]
    return np.abs(values - model.slippage) <= PRICE_TOLERANCE * (1.0 + model.slippage)


def _fits_fee(model: FeeModel, size: np.ndarray, notional: np.ndarray,
              fee: np.ndarray) -> np.ndarray:
    scale = np.maximum(np.abs(fee), 1e-6 * notional)
    return np.abs(model.of(size, notional) - fee) <= FEE_TOLERANCE * scale + 1e-12


def _fee_model(size: np.ndarray, notional: np.ndarray, fee: np.ndarray) -> FeeModel:
    """The simplest fee model that most fills follow exactly (a robust, sampled fit)."""
    n = len(fee)
    if n == 0:
        return FeeModel()
    candidates = [FeeModel()]
    rate = fee / np.where(notional > 0, notional, np.nan)
    finite = rate[np.isfinite(rate)]
    if len(finite):
        values, counts = np.unique(np.round(finite, 12), return_counts=True)
        candidates.append(FeeModel(fees=float(values[counts.argmax()])))
    per_share = fee / np.where(size > 0, size, np.nan)  # a broker's commission a share
    finite = per_share[np.isfinite(per_share)]
    if len(finite):
        values, counts = np.unique(np.round(finite, 12), return_counts=True)
        candidates.append(FeeModel(per_share=float(values[counts.argmax()])))
    rng = np.random.default_rng(0)
    design = np.column_stack([notional, size, np.ones(n)])
    for _ in range(40 if n >= 3 else 0):
        pick = rng.choice(n, 3, replace=False)
        try:
            coef = np.linalg.solve(design[pick], fee[pick])
        except np.linalg.LinAlgError:
            continue
        coef = np.where(np.abs(coef) < np.array([1e-12, 1e-10, 1e-10]), 0.0, coef)
        if (coef >= -1e-12).all():
            candidates.append(FeeModel(float(round(coef[0], 12)), float(round(coef[1], 12)),
                                       0.0, float(round(coef[2], 10))))
    candidates += [_with_minimum(m, size, notional, fee) for m in candidates if m.per_share > 0]
    scored = []
    for model in dict.fromkeys(candidates):
        fits = _fits_fee(model, size, notional, fee)
        complexity = sum(v != 0.0 for v in (model.fees, model.per_share, model.fixed_fee))
        scored.append((int(fits.sum()), -complexity, model))
    inliers, _, best = max(scored, key=lambda s: (s[0], s[1]))
    if inliers < n and best.per_share > 0:
        best = _with_minimum(best, size, notional, fee)
    return best


def _with_minimum(model: FeeModel, size: np.ndarray, notional: np.ndarray,
                  fee: np.ndarray) -> FeeModel:
    """Add a minimum per-share fee if the misfits share one."""
    misfit = ~_fits_fee(model, size, notional, fee) & (size * model.per_share > 0)
    rest = np.round(fee[misfit] - notional[misfit] * model.fees - model.fixed_fee, 10)
    if len(rest) < 2:
        return model
    values, counts = np.unique(rest, return_counts=True)
    minimum = float(values[counts.argmax()])
    candidate = FeeModel(model.fees, model.per_share, minimum, model.fixed_fee)
    better = _fits_fee(candidate, size, notional, fee).sum() > _fits_fee(
        model, size, notional, fee).sum()
    return candidate if better and minimum > 0 else model


def _rounding_by_bar(size: np.ndarray, bar: np.ndarray, groups: list[np.ndarray],
                     rounding: str, lot: float) -> dict[int, tuple[str, float]]:
    """Bars whose fills are all whole lots in a fractional log, or not in a whole one.

    Fractional sizes are whole by chance almost never, so one bar of whole lots is a change
    of rounding at that bar.
    """
    out = {}
    for rows_of_bar in groups:
        here = _rounding(size[rows_of_bar], share=1.0)
        if here != (rounding, lot) and (here[0] == "none") != (rounding == "none"):
            out[int(bar[rows_of_bar[0]])] = here
    return out


def _rounding(size: np.ndarray, share: float = 0.99) -> tuple[str, float]:
    """Whole lots when (nearly) every fill is a multiple of one: ("truncate", lot)."""
    def multiples(lot: float) -> float:
        ratio = size / lot
        return float((np.abs(ratio - np.round(ratio)) <= 1e-9 * np.maximum(ratio, 1)).mean())

    if len(size) == 0 or multiples(1.0) < share:
        return "none", 1.0
    for lot in (100.0, 10.0):
        if multiples(lot) >= share and (share < 1.0 or len(size) > 1):
            return "truncate", lot
    return "truncate", 1.0
