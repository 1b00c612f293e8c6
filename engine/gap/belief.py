"""What a side's strategy believed it held, read from its orders, against its own book.

A target order's delta is the target less the position the strategy believed it held, so
at each batch that answers a decision the believed positions can be read back from the
fills: an asset the decision drops was believed held at the quantity sold; an asset it
targets at `weight × book value / price − quantity bought`. Sells are capped at the
position the book really holds, and the last buy of a batch that ran out of cash was
shrunk, so some reads are bounds, not values (`Read`).

The reads are set against the side's own book (rebuilt from its log) and the mismatch is
typed by its shape (`Shape`): read as zero, lagged by k batches, frozen at an earlier book
(a second object that stopped receiving fills), the fills since a bar counted m times, a
subset of the assets read as zero, or scaled by a factor that drifts. A shape that fits
the reads of the bar nothing else explains and of the batches after it becomes a
hidden-state switch (`Switch.belief`): the diagnosis replays it with the oracle, which must
reproduce the side's fills exactly for it to count. Shapes the catalogue names already
(positions read as zero, one or two batches late) come back as the catalogue's switches.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from engine.gap.logs import FillLog, OwnBook
from engine.gap.vocabulary import Switch, belief_switch, day
from engine.reference import Bars, Rebalance, Rules
from engine.reference.bars import CLOSE, OPEN
from engine.reference.faults import HISTORY

WINDOW = 8  # batches after the failing one a shape is checked on
CONFIRM = 2  # batches after it a shape must fit as well (fewer only at the log's end)
REL = 1e-6  # a read matches a shape's position within this share of the order's size
TIGHT = 1e-6  # cash left under this share of the book: the batch's last buy may be shrunk
ROUND = 1e-9  # a fitted factor this close to a round one (six decimals) is that one
MAX_LAG = 8


@dataclass(frozen=True)
class Read:
    """What one batch shows of one asset's believed position: it lies in [lo, hi];
    `soft`: a buy of a batch that ran out of cash (one such buy per batch may have been
    shrunk: then the belief is lower than `hi`); `size` the order's scale, for tolerances."""

    lo: float
    hi: float
    size: float
    soft: bool = False

    def admits(self, x: float) -> bool:
        tol = REL * max(self.size, abs(x), 1e-9)
        return self.lo - tol <= x <= self.hi + tol

    @property
    def value(self) -> float | None:
        return self.lo if self.lo == self.hi else None


# Shapes: the believed positions before a batch, as a function of the side's own books.


@dataclass(frozen=True)
class Shape:
    """A belief's form relative to the own book; `positions(beliefs, t)` before bar t."""

    def positions(self, beliefs: Beliefs | Replayed, t: int) -> dict[str, float]:
        raise NotImplementedError

    def describe(self, beliefs: Beliefs, since: int) -> tuple[str, str]:
        """(cause, words) of a belief of this shape from bar `since` on."""
        raise NotImplementedError


@dataclass(frozen=True)
class Zero(Shape):
    def positions(self, beliefs, t):
        return {}

    def describe(self, beliefs, since):
        return "accumulation", "position read as zero"


@dataclass(frozen=True)
class Lagged(Shape):
    """The own book before the batch `lag` batches back (batches: decisions `delay` bars
    on)."""

    lag: int
    delay: int = 1

    def positions(self, beliefs, t):
        batches = beliefs.batches(self.delay)
        i = bisect_left(batches, t) - self.lag
        return beliefs.books[batches[i]].positions if i >= 0 else {}

    def describe(self, beliefs, since):
        return "stale_position", f"positions read {_count(self.lag)} late"


@dataclass(frozen=True)
class Frozen(Shape):
    """The book before bar `at`, never updated since (a second object that stopped
    receiving fills there)."""

    at: int

    def positions(self, beliefs, t):
        return beliefs.books[self.at].positions

    def describe(self, beliefs, since):
        return "belief_drift", (f"sized from positions frozen at those before "
                                f"{day(beliefs.bars.timestamps[self.at])} (a second book "
                                "that stopped receiving fills)")


@dataclass(frozen=True)
class Counted(Shape):
    """Every fill since bar `since` counted `times` times in the positions read."""

    since: int
    times: int

    def positions(self, beliefs, t):
        then, now = beliefs.books[self.since].positions, beliefs.books[t].positions
        out = {}
        for asset in {*then, *now}:
            before = then.get(asset, 0.0)
            x = before + self.times * (now.get(asset, 0.0) - before)
            if abs(x) > 1e-9 * max(abs(before), 1e-3):
                out[asset] = x
        return out

    def describe(self, beliefs, since):
        when = day(beliefs.bars.timestamps[self.since])
        if self.times == 2:
            return "duplicate_fill", (f"fills since {when} applied twice to the positions "
                                      "it sizes from (booked once)")
        return "belief_drift", f"fills since {when} counted {self.times} times in the " \
            "positions it sizes from"


@dataclass(frozen=True)
class Subset(Shape):
    """The own book on every asset but `hidden`, read as zero."""

    hidden: frozenset[str]

    def positions(self, beliefs, t):
        return {a: q for a, q in beliefs.books[t].positions.items() if a not in self.hidden}

    def describe(self, beliefs, since):
        names = sorted(self.hidden)
        listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3
                                         else "")
        return "belief_drift", (f"sized from its own book on some assets only: {listed} "
                                "read as zero")


@dataclass(frozen=True)
class Scaled(Shape):
    """The own book scaled by a factor per batch: `slope`·(i − `first`) + `base` at the
    i-th batch (a linear drift), or the factors of `table` (bar, factor), the last one
    carried."""

    base: float = 1.0
    slope: float = 0.0
    first: int = 0
    table: tuple[tuple[int, float], ...] = ()
    delay: int = 1

    def factor(self, beliefs: Beliefs, t: int) -> float:
        if self.table:
            bars = [b for b, _ in self.table]
            i = bisect_left(bars, t + 1) - 1
            return self.table[max(i, 0)][1]
        return self.base + self.slope * (bisect_left(beliefs.batches(self.delay), t)
                                         - self.first)

    def positions(self, beliefs, t):
        c = self.factor(beliefs, t)
        return {a: q * c for a, q in beliefs.books[t].positions.items()}

    def describe(self, beliefs, since):
        if self.table:
            low, high = self.table[0][1], self.table[-1][1]
            return "belief_drift", (f"sized from positions that drift from its own book "
                                    f"(read ×{low:g} to ×{high:g})")
        step = f", {self.slope:+g} per batch" if self.slope else ""
        return "belief_drift", (f"sized from positions that drift from its own book (read "
                                f"×{_rounded(self.factor(beliefs, since)):g} from "
                                f"{day(beliefs.bars.timestamps[since])}{step})")


class Beliefs:
    """The reads of one side's believed positions at its batches, and the shapes that
    fit them."""

    def __init__(self, log: FillLog, bars: Bars, decisions: dict[int, list],
                 books: list[OwnBook], trusted: Rules, point_at) -> None:
        self.log, self.bars, self.decisions, self.books = log, bars, decisions, books
        self.trusted = trusted
        self.point_at = point_at  # bar → "open" or "close": the side's visible price point
        self.fill_bars = log.fill_bars
        self._reads: dict[tuple[int, int], dict[str, Read] | None] = {}
        self._batches: dict[int, list[int]] = {}

    def batches(self, delay: int) -> list[int]:
        """The bars the decisions' orders are due at, `delay` bars after each."""
        return _batches(self, delay)

    # Reading the belief off the orders

    def reads(self, t: int, delay: int) -> dict[str, Read] | None:
        """The believed positions before fill bar t, read from its fills and the decision
        they answer (None when no rebalance acts there)."""
        key = (t, delay)
        if key not in self._reads:
            self._reads[key] = self._read(t, delay)
        return self._reads[key]

    def _read(self, t: int, delay: int) -> dict[str, Read] | None:
        weights: dict[str, float] = {}
        for call in self.decisions.get(t - delay, ()):
            if not isinstance(call, Rebalance):
                return None
            weights.update(call.weights)
        if not weights:
            return None
        own = self.books[t]
        row = self.bars.rows[t]
        point = OPEN if self.point_at(t) == "open" else CLOSE
        held = point if self.trusted.held_valuation == "last_fill_price" else CLOSE
        value = own.cash
        for asset in sorted(own.positions):
            price = row[asset][point] if asset in row else self.bars.last(t - 1, asset, held)
            value += own.positions[asset] * price
        if not value > 0:
            return None
        fills = self.log.by_bar.get(t, {})
        after = self.books[t + 1].cash if t + 1 < len(self.books) else None
        tight = after is not None and after <= TIGHT * value
        out: dict[str, Read] = {}
        for asset in sorted({a for a, w in weights.items() if w} | set(own.positions)):
            if asset not in row:
                continue
            price = row[asset][point]
            w = weights.get(asset, 0.0)
            q = fills[asset][0] if asset in fills else 0.0
            o = own.positions.get(asset, 0.0)
            target = w * value / price
            size = max(abs(target), abs(q), abs(o))
            sold_all = q < 0 and o > 0 and abs(q + o) <= 1e-9 * o
            if q > 0 and tight:
                out[asset] = Read(target - q, target - q, size, soft=True)
            elif q == 0.0 and w > 0 and o == 0.0:  # a sell of nothing (or a buy the cash
                out[asset] = Read(-math.inf if tight else target, math.inf, size)  # left out)
            elif q == 0.0 and w > 0 and tight:  # a buy the cash left nothing for
                out[asset] = Read(-math.inf, target, size)
            elif sold_all:
                out[asset] = Read(target - q, math.inf, size)
            elif q == 0.0 and w == 0.0:
                out[asset] = Read(-math.inf, 0.0, size)  # nothing sold: believed none
            else:
                out[asset] = Read(target - q, target - q, size)
        return out

    # Fitting shapes

    def fits(self, shape: Shape, t: int, delay: int) -> bool | None:
        """Whether `shape` admits the reads at batch t (None: nothing read there). A
        batch that ran out of cash may have one shrunk buy the shape asks more of."""
        reads = self.reads(t, delay)
        if reads is None:
            return None
        believed = shape.positions(self, t)
        shrunk = 0
        for asset, read in reads.items():
            x = believed.get(asset, 0.0)
            if read.admits(x):
                continue
            if read.soft and not shrunk and x < read.hi:  # it asked more than it got
                shrunk = 1
                continue
            return False
        return True

    def departs(self, shape: Shape, t: int, delay: int) -> bool:
        """Whether the shape's positions at batch t differ from the own book's on an
        asset read there."""
        reads = self.reads(t, delay) or {}
        believed, own = shape.positions(self, t), self.books[t].positions
        return any(abs(believed.get(a, 0.0) - own.get(a, 0.0)) > REL * r.size
                   for a, r in reads.items())

    def propose(self, t: int, delay: int) -> list[tuple[Shape, int]]:
        """Shapes of belief that fit the reads at fill bar t and the `CONFIRM` batches
        after it, each with its onset: the first batch of its run of batches through t
        where it departs from the own book. Simplest first."""
        if t not in self.batches(delay) or self.reads(t, delay) is None \
                or not self.departs_any(t, delay):
            return []
        out = []
        for shape in self.candidates(t, delay):
            since = self.onset(shape, t, delay)
            if since is not None:
                out.append((shape, since))
        return out

    def departs_any(self, t: int, delay: int) -> bool:
        """Whether the own book does not fit the reads at batch t."""
        return not self.fits(Lagged(0, delay), t, delay)

    def onset(self, shape: Shape, t: int, delay: int) -> int | None:
        """The first batch of the shape's run through t where it departs from the own
        book (None if it does not fit t and the `CONFIRM` batches after it, or departs
        nowhere)."""
        batches = self.batches(delay)
        i = batches.index(t)
        checked = 0
        for b in batches[i: i + WINDOW]:
            fit = self.fits(shape, b, delay)
            if fit is False:
                if checked <= CONFIRM:
                    return None
                break
            if fit:
                checked += 1
            if checked > CONFIRM:
                break
        since = t
        for b in reversed(batches[:i]):
            if self.fits(shape, b, delay) is False:
                break
            if self.departs(shape, b, delay):
                since = b
        return since if self.departs(shape, since, delay) else None

    def candidates(self, t: int, delay: int) -> list[Shape]:
        """The shapes tried at fill bar t: zero, lags, frozen books, fills counted twice
        or three times since a recent batch, a subset read as zero, a drifting factor."""
        earlier = [b for b in self.fill_bars if b < t]
        recent = [*earlier[-MAX_LAG:], t]
        shapes: list[Shape] = [Zero()]
        shapes += [Lagged(k, delay) for k in range(1, MAX_LAG + 1)]
        shapes += [Frozen(b + 1) for b in earlier]
        shapes += [Counted(b, m) for m in (2, 3) for b in recent]
        subset = self.subset(t, delay)
        if subset is not None:
            shapes.append(subset)
        scaled = self.scaled(t, delay)
        if scaled is not None:
            shapes.append(scaled)
        return shapes

    def subset(self, t: int, delay: int) -> Subset | None:
        """The assets read as zero while held, over the batches from t (to the end of the
        log) while every read is either the own book or zero."""
        hidden: set[str] = set()
        batches = self.batches(delay)
        i = batches.index(t)
        for b in batches[i:]:
            reads = self.reads(b, delay)
            if reads is None:
                continue
            own = self.books[b].positions
            here: set[str] | None = set()
            for asset, read in reads.items():
                o = own.get(asset, 0.0)
                if asset not in hidden and (read.admits(o) or not o):
                    if read.admits(o) or read.soft:
                        continue
                elif read.admits(0.0) or read.soft:
                    if o and read.admits(0.0):
                        here.add(asset)
                    continue
                here = None
                break
            if here is None:
                if not hidden:
                    return None
                break
            hidden |= here
        return Subset(frozenset(hidden)) if hidden else None

    def scaled(self, t: int, delay: int) -> Scaled | None:
        """A factor on the own book per batch, from the exact reads of held assets (two
        at least agreeing at each batch), over the batches from t while one fits; a
        linear law in the batch index when the factors follow one."""
        factors: list[tuple[int, float]] = []
        batches = self.batches(delay)
        i = batches.index(t)
        for b in batches[i: i + WINDOW]:
            reads = self.reads(b, delay)
            if reads is None:
                continue
            own = self.books[b].positions
            ratios = sorted(r.value / own[a] for a, r in reads.items()
                            if r.value is not None and not r.soft and own.get(a))
            if len(ratios) < 2:
                continue
            c = ratios[len(ratios) // 2]
            if not all(abs(r - c) <= REL * abs(c) for r in ratios):
                break
            factors.append((b, _rounded(c)))
        if len(factors) < min(CONFIRM, 2) or all(abs(c - 1) <= REL for _, c in factors):
            return None
        index = {b: batches.index(b) for b, _ in factors}
        (b0, c0), (b1, c1) = factors[0], factors[1]
        slope = _rounded((c1 - c0) / (index[b1] - index[b0]))
        if all(abs(c0 + slope * (index[b] - index[b0]) - c) <= ROUND * abs(c)
               for b, c in factors):
            return Scaled(c0, slope, index[b0], delay=delay)
        return Scaled(table=tuple(factors), delay=delay)

    # Shapes as switches

    def switch(self, shape: Shape, since: int) -> Switch:
        """The switch a shape of belief is: the catalogue's own where it has one (positions
        read as zero, read up to `HISTORY` batches late, as the reference replays them),
        else a belief switch replayed from the shape's positions."""
        cause, words = shape.describe(self, since)
        if isinstance(shape, Zero):
            return Switch(cause, words, (("position_basis", "zero"),))
        if isinstance(shape, Lagged) and shape.lag <= HISTORY:
            return Switch(cause, words, (("position_basis", "stale"),
                                         ("stale_lag", shape.lag)))
        return belief_switch(cause, words, since, shape)

    def positions(self, switch: Switch, own: OwnBook) -> dict[str, float]:
        """The positions a belief switch has the strategy size from before bar `own.bar`:
        the shape's from its onset on, the own book's before."""
        if own.bar < switch.since:
            return own.positions
        return switch.belief.positions(self, own.bar)


class Replayed:
    """A replay's own books, appended bar by bar: what a shape of belief is relative to when
    the attribution acts it out in a counterfactual replay."""

    def __init__(self, bars: Bars, decisions: dict[int, list]) -> None:
        self.bars, self.decisions = bars, decisions
        self.books: list[OwnBook] = []
        self._batches: dict[int, list[int]] = {}

    def batches(self, delay: int) -> list[int]:
        return _batches(self, delay)


def _batches(holder: Beliefs | Replayed, delay: int) -> list[int]:
    """The bars the decisions' orders are due at, `delay` bars after each (cached)."""
    if delay not in holder._batches:
        n = len(holder.bars.timestamps)
        holder._batches[delay] = sorted(d + delay for d in holder.decisions if d + delay < n)
    return holder._batches[delay]


def _count(lag: int) -> str:
    words = {1: "one batch", 2: "two batches", 3: "three batches", 4: "four batches"}
    return words.get(lag, f"{lag} batches")


def _rounded(x: float) -> float:
    """`x`, or the six-decimal number it is within float noise of."""
    r = round(x, 6)
    return r if abs(r - x) <= ROUND * max(abs(x), 1e-12) else x
