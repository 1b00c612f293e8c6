"""How engines commonly go wrong, as hooks the reference loop calls at its seams.

Under the contract (`Rules()`) every hook is the identity: a target is netted against the
current positions, a buy is checked against the current cash, a fee leaves cash once, and a
fill is booked and logged once, at the one price and fee the rules give. The gap analysis
switches these off one `Rules` field at a time to name what another engine did: positions
read as zero or as they were a few batches ago (`position_basis`, `stale_lag`), targets
ordered whole instead of their delta (`whole_targets`), exits never
ordered (`exits_lost`), buys checked against a stale balance (`cash_check`), fees that leave
cash at another share of what is logged (`fee_charged`) or are logged at a multiple of
what the engine charged (`fee_logged`), fills booked or logged twice
(`booking`), and a one-off price or fee at one bar (`Overrides`, given to `step`).
"""

from __future__ import annotations

from engine.reference.book import Book, Fill, Overrides
from engine.reference.execution import add, buy
from engine.reference.orders import Order
from engine.reference.rules import BOOKED_AFTER_BATCH, BOOKED_AS_EXECUTED, LOGGED_TWICE, Rules

HISTORY = 4  # batches of positions kept for stale-position rules


class Faults:
    """The fault state of one simulation (a stale balance, this bar's one-off prices and
    fees) and the hooks its loop calls."""

    def __init__(self, opening: float) -> None:
        self.opening = opening  # the opening balance
        self.balance: float | None = None  # the stale balance a batch's buys are checked on
        self.batch_cash = opening  # the cash before the batch's first order
        self.overrides: Overrides = {}

    # Positions read for sizing

    @staticmethod
    def remember(book: Book) -> None:
        """Keep the positions before a fill batch (what a stale-position engine reads)."""
        book.history = (*book.history[-(HISTORY - 1):], dict(book.positions))

    @staticmethod
    def sizing_positions(book: Book, rules: Rules, target: bool) -> dict[str, float]:
        """The positions a target is netted against (see `Rules.position_basis`)."""
        if rules.position_basis == "zero" or (rules.whole_targets and target):
            return {}
        if rules.position_basis == "stale":
            history = book.history
            return history[-rules.stale_lag] if len(history) >= rules.stale_lag else {}
        return book.positions

    @staticmethod
    def netted_position(order: Order, position: float, rules: Rules) -> float:
        """The position a due order is sized against: 0 for every order but a target of 0
        under `whole_targets`."""
        if rules.whole_targets and not (
                order.target_kind and order.target_amount == 0.0):
            return 0.0
        return position

    @staticmethod
    def ordered(chosen: set[str], weights: dict[str, float], rules: Rules) -> set[str]:
        """The assets a rebalance orders: with `exits_lost`, none whose target is 0."""
        if rules.exits_lost:
            return {a for a in chosen if weights.get(a, 0.0) != 0.0}
        return chosen

    # Prices and fees of one bar

    def prices(self, fill_prices: dict[str, float]) -> dict[str, float]:
        """The prices the due orders execute at: the fill point's, or this bar's one-off
        price (which also sizes the order, in `fill_prices`, when `sized`)."""
        exec_prices = dict(fill_prices)
        for asset, (price, _, sized) in self.overrides.items():
            if price is not None and asset in fill_prices:
                exec_prices[asset] = price
                if sized:
                    fill_prices[asset] = price
        return exec_prices

    def fee(self, asset: str, cash: float, fee: float) -> tuple[float, float]:
        """(cash, fee) after a fill: this bar's one-off fee of `asset` replaces the rules'."""
        if not self.overrides:  # (most bars: asked for every fill)
            return cash, fee
        forced = self.overrides.get(asset, (None, None, True))[1]
        if forced is not None:
            return add(cash, fee - forced), forced
        return cash, fee

    @staticmethod
    def charging(rules: Rules) -> Rules:
        """The rules with the fee model the engine charges and sizes buys with: the logged
        model (the rules' fee fields) over `fee_logged`."""
        k = rules.fee_logged
        if k == 1.0:
            return rules
        return rules.with_(fees=rules.fees / k, per_share=rules.per_share / k,
                           min_fee=rules.min_fee / k, fixed_fee=rules.fixed_fee / k)

    @staticmethod
    def logged_fee(fee: float, rules: Rules) -> float:
        """The fee the log shows for a fill that charged `fee`."""
        return fee if rules.fee_logged == 1.0 else fee * rules.fee_logged

    @staticmethod
    def charged_fee(fee: float, rules: Rules) -> float:
        """The fee a fill whose log shows `fee` charged."""
        return fee if rules.fee_logged == 1.0 else fee / rules.fee_logged

    @staticmethod
    def cash_after_fee(cash: float, fee: float, rules: Rules) -> float:
        """The cash after a fill that paid its logged `fee`, when the engine charges
        `fee_charged` times it (the difference given back or taken again)."""
        share = rules.fee_charged
        return cash if share == 1.0 else add(cash, fee * (1.0 - share))

    # Buys against a stale balance

    def start_batch(self, cash: float) -> None:
        self.balance = None
        self.batch_cash = cash  # the cash before the batch's first order

    def buy(self, size: float, price: float, book: Book, headroom: float, rules: Rules
            ) -> tuple[str, str | None, float, float, float, float]:
        """A buy checked against the cash `Rules.cash_check` names: the current cash, the
        cash at the batch's first buy, before the batch (a copy of the holdings taken when the
        day began), or the opening balance; it spends from the current."""
        if rules.cash_check == "current":
            return buy(size, price, book.cash, headroom, rules)
        if self.balance is None:
            self.balance = {"opening": self.opening, "batch_start": self.batch_cash}.get(
                rules.cash_check, book.cash)
        status, reason, size, adjusted, fee, left = buy(size, price, self.balance, headroom,
                                                        rules)
        cash = add(book.cash, -(self.balance - left)) if status == "filled" else book.cash
        return status, reason, size, adjusted, fee, cash

    # Fills booked or logged twice

    @staticmethod
    def book_again(book: Book, fill: Fill, rules: Rules) -> None:
        """Book a logged fill once more (an engine that books its fills twice, or only its
        sells or buys: `Rules.booked_side`), its fee as charged, at most once."""
        _, asset, quantity, price, fee, _ = fill
        if rules.booked_side != "all" and (quantity < 0) != (rules.booked_side == "sells"):
            return
        fee = Faults.charged_fee(fee, rules)
        charged = fee if rules.fee_charged >= 1.0 else fee * rules.fee_charged
        book.cash = add(book.cash, -quantity * price - charged)
        book.move(asset, quantity)

    @classmethod
    def executed(cls, book: Book, fill: Fill, rules: Rules) -> None:
        """A fill just booked: booked again at once when the engine does it as it executes
        (the batch's later orders see it)."""
        if rules.booking in BOOKED_AS_EXECUTED:
            cls.book_again(book, fill, rules)

    @classmethod
    def batch_logged(cls, book: Book, logged: list[Fill], rules: Rules) -> list[Fill]:
        """A batch's fills as logged: booked again after the batch, logged twice."""
        if rules.booking in BOOKED_AFTER_BATCH:
            for fill in logged:
                cls.book_again(book, fill, rules)
        if rules.booking in LOGGED_TWICE:
            return [fill for fill in logged for _ in (0, 1)]
        return logged
