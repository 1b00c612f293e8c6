"""The corpus manifest: every pair of fill logs, how its B side was made, and what is true.

A is the trusted side: real vectorbt 1.2 (`a="vectorbt"`) or the tradegap engine
(`a="engine"`, complete markets only, where the two are identical). B is one of:
- real vectorbt with other `settings` (`engines.vectorbt`);
- real backtrader's own `order_target_percent` (its profile's settings, A's fees);
- real zipline's `order_target_percent` (A's fees per dollar, or zipline's own costs);
- the corpus loop (`loop.py`, independent of the engine and the reference) with `faults`.

The expectations are what B's construction makes true, stated here (and checked against
B's own records where they depend on the run: `test_gap_corpus.py::test_the_manifest_*`):
- `first_cause`: the causes of the first divergent (timestamp, asset) key: each difference
  of B that, taken away alone, changes B's fill at that key;
- `causes`: every cause among the faults (the analyzer may name no other);
- `verdict`: "explained" when every fault is in the vocabulary, "unexplained" for the
  negative controls;
- `weights`: analyzed with the target weights ("weights"), without them ("inferred":
  decisions inferred from A's book), or both.
The onset (the first fault's first bar) and, for a fault that stops, its end, depend on
the market's dates: `build.onset` and `build.end` compute them from B's construction.

A fault's `asset` may name a role, resolved on A's fills at the fault's first batch:
`?entry` the first asset bought there that A did not hold, `?fill` the first asset filled
there, `?idle` the first asset with a bar there that A neither holds nor trades and that
the decision does not name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.gap_corpus.faults import (
    BookedTwice,
    BookedTwiceAsExecuted,
    BuysFirst,
    CloseFill,
    ColumnOrder,
    ExitsLost,
    ExtraFill,
    FeeRate,
    FeesOutOfCash,
    LoggedTwice,
    LookAhead,
    LostBuy,
    Lots,
    OneOffFee,
    OneOffFill,
    OneOffQuote,
    PartialExit,
    QuantityTimes,
    RowLoggedTwice,
    ShiftTwice,
    SizingBias,
    StalePosition,
    WholeTarget,
    ZeroPosition,
)

BOTH, WEIGHTS, INFERRED = "both", "weights", "inferred"


@dataclass(frozen=True)
class Pair:
    name: str
    market: str
    source: str  # vectorbt | backtrader | zipline | loop
    fault: str  # what B does differently, in words
    form: str  # from the first bar | mid-run | single bar | stops | several
    first_cause: frozenset[str]
    causes: frozenset[str]
    verdict: str = "explained"
    weights: str = BOTH
    a: str = "vectorbt"
    settings: tuple = ()  # vectorbt: (name, value, first rebalance, last rebalance)
    faults: tuple = ()  # loop
    zipline_costs: bool = False
    stops: bool = field(default=False)  # the (first) fault ends before the run does

    @property
    def modes(self) -> tuple[str, ...]:
        return (WEIGHTS, INFERRED) if self.weights == BOTH else (self.weights,)


def _set(*causes: str) -> frozenset[str]:
    return frozenset(causes)


def vectorbt(name, market, cause, fault, form, settings, weights=BOTH):
    return Pair(name, market, "vectorbt", fault, form, _set(cause), _set(cause),
                weights=weights, settings=settings)


def loop(name, market, faults, form, first, causes=None, weights=BOTH, a="vectorbt",
         stops=False):
    fault = "; ".join(f.words for f in faults)
    return Pair(name, market, "loop", fault, form, _set(*first), _set(*(causes or first)),
                weights=weights, a=a, faults=tuple(faults), stops=stops)


def negative(name, market, fault, form, weights=BOTH):
    return Pair(name, market, "loop", fault.words + " (outside the vocabulary)", form,
                _set("unexplained"), _set("unexplained"), verdict="unexplained",
                weights=weights, faults=(fault,))


FIRST, MID, ONE, STOPS, SEVERAL = ("from the first bar", "mid-run", "single bar", "stops",
                                   "several")

PAIRS: list[Pair] = [
    # Real vectorbt with other settings.
    vectorbt("vbt_call_seq_default_tight5", "tight5", "sequencing",
             "call_seq='default' (column order)", FIRST, (("call_seq", "default", None, None),)),
    vectorbt("vbt_call_seq_default_daily", "daily", "sequencing",
             "call_seq='default' (column order)", FIRST, (("call_seq", "default", None, None),),
             weights=WEIGHTS),
    vectorbt("vbt_call_seq_default_tight21", "tight21", "sequencing",
             "call_seq='default' (column order)", FIRST, (("call_seq", "default", None, None),),
             weights=WEIGHTS),
    vectorbt("vbt_granularity_tight5", "tight5", "rounding", "size_granularity=1", FIRST,
             (("size_granularity", 1.0, None, None),)),
    vectorbt("vbt_granularity_from_k_spare21", "spare21", "rounding",
             "size_granularity=1 from rebalance 4", MID, (("size_granularity", 1.0, 4, None),)),
    vectorbt("vbt_granularity_one_row_daily", "daily", "rounding",
             "size_granularity=1 at rebalance 30 only", ONE,
             (("size_granularity", 1.0, 30, 30),), weights=WEIGHTS),
    vectorbt("vbt_update_value_tight5", "tight5", "sizing_basis", "update_value=True", FIRST,
             (("update_value", True, None, None),)),
    vectorbt("vbt_update_value_spare1", "spare1", "sizing_basis", "update_value=True", FIRST,
             (("update_value", True, None, None),), weights=WEIGHTS),
    vectorbt("vbt_update_value_gaps5", "gaps5", "sizing_basis", "update_value=True", FIRST,
             (("update_value", True, None, None),)),
    vectorbt("vbt_close_price_tight5", "tight5", "timing", "price=close (same bar)", FIRST,
             (("price", "close", None, None),)),
    vectorbt("vbt_close_from_k_spare21", "spare21", "timing",
             "price=close from rebalance 3", MID, (("price", "close", 3, None),)),
    vectorbt("vbt_close_one_row_daily", "daily", "timing", "price=close at rebalance 40 only",
             ONE, (("price", "close", 40, 40),), weights=WEIGHTS),
    vectorbt("vbt_fees_spare21", "spare21", "fee", "fees=0.002 instead of 0.001", FIRST,
             (("fees", 0.002, None, None),)),
    vectorbt("vbt_fees_from_k_tight5", "tight5", "fee", "fees=0.002 from rebalance 10", MID,
             (("fees", 0.002, 10, None),)),
    vectorbt("vbt_fees_one_row_daily", "daily", "fee", "fees=0.003 at rebalance 60 only", ONE,
             (("fees", 0.003, 60, 60),), weights=WEIGHTS),
    vectorbt("vbt_fixed_fees_tight21", "tight21", "fee", "fixed_fees=5 per order", FIRST,
             (("fixed_fees", 5.0, None, None),)),
    vectorbt("vbt_slippage_tight5", "tight5", "fill_price", "slippage=0.001", FIRST,
             (("slippage", 0.001, None, None),)),
    vectorbt("vbt_slippage_from_k_spare1", "spare1", "fill_price",
             "slippage=0.0005 from rebalance 50", MID, (("slippage", 0.0005, 50, None),),
             weights=WEIGHTS),
    vectorbt("vbt_slippage_one_row_gaps5", "gaps5", "fill_price",
             "slippage=0.002 at rebalance 20 only", ONE, (("slippage", 0.002, 20, 20),)),
    # Real backtrader's own order_target_percent.
    Pair("bt_spare21", "spare21", "backtrader",
         "backtrader: sized at the decision close, value delta floored to whole shares; "
         "no cash shortfall (no margin refusal)", FIRST,
         _set("sizing_basis", "rounding"), _set("sizing_basis", "rounding")),
    Pair("bt_tight5", "tight5", "backtrader",
         "backtrader: sized at the decision close, value delta floored; the last buy of "
         "each batch refused as margin", FIRST,
         _set("sizing_basis", "rounding"), _set("sizing_basis", "rounding", "cash_limit")),
    Pair("bt_daily", "daily", "backtrader",
         "backtrader, daily: sized at the decision close, floored; margin refusals", FIRST,
         _set("sizing_basis", "rounding"), _set("sizing_basis", "rounding", "cash_limit"),
         weights=WEIGHTS),
    # Real zipline's own order_target_percent.
    Pair("zl_tight21", "tight21", "zipline",
         "zipline: next close, sized at the decision close, truncated, no cash check "
         "(cash goes negative)", FIRST,
         _set("timing", "sizing_basis", "rounding"),
         _set("timing", "sizing_basis", "rounding", "cash_limit"), weights=WEIGHTS),
    Pair("zl_thin_costs", "thin", "zipline",
         "zipline with its own costs on a thin market: next close, 5 bp slippage, $0.001 a "
         "share, 10% of the bar's volume (the first order is cut), truncated, no cash check",
         FIRST, _set("timing", "fill_price", "fee", "volume_limit"),
         _set("timing", "sizing_basis", "rounding", "fill_price", "fee", "volume_limit",
              "cash_limit"), weights=WEIGHTS, zipline_costs=True),
    # Plain loops: duplicates.
    loop("loop_booked_twice_one_batch", "tight5", [BookedTwice(4, 5)], ONE,
         ["duplicate_fill"]),
    loop("loop_booked_twice_first_batch", "spare21", [BookedTwice(0, 1)], FIRST,
         ["duplicate_fill"], a="engine"),
    loop("loop_booked_twice_from_k", "daily", [BookedTwice(20)], MID, ["duplicate_fill"],
         weights=WEIGHTS),
    loop("loop_logged_twice_from_start", "spare21", [LoggedTwice(0)], FIRST,
         ["duplicate_fill"]),
    loop("loop_logged_twice_from_k", "tight5", [LoggedTwice(6)], MID, ["duplicate_fill"],
         a="engine"),
    loop("loop_logged_twice_one_bar", "gaps5", [LoggedTwice(10, 11)], ONE,
         ["duplicate_fill"]),
    loop("loop_booked_as_executed_from_k", "tight5", [BookedTwiceAsExecuted(6)], MID,
         ["duplicate_fill"]),
    loop("loop_booked_as_executed_from_start", "spare21", [BookedTwiceAsExecuted(0)], FIRST,
         ["duplicate_fill"]),
    loop("loop_row_logged_twice_from_k", "tight5", [RowLoggedTwice(6)], MID,
         ["duplicate_fill"]),
    # Accumulation.
    loop("loop_whole_target_from_start", "tight5", [WholeTarget(0)], FIRST, ["accumulation"]),
    loop("loop_whole_target_from_k", "spare1", [WholeTarget(30)], MID, ["accumulation"]),
    loop("loop_exits_lost_from_start", "spare21", [ExitsLost(0)], FIRST, ["accumulation"]),
    loop("loop_exits_lost_from_k", "gaps5", [ExitsLost(12)], MID, ["accumulation"]),
    loop("loop_zero_position_from_start", "tight21", [ZeroPosition(0)], FIRST,
         ["accumulation"]),
    loop("loop_zero_position_from_k", "daily", [ZeroPosition(40)], MID, ["accumulation"],
         a="engine"),
    loop("loop_whole_target_stops", "tight5", [WholeTarget(5, 9)], STOPS, ["accumulation"],
         stops=True),
    # Stale positions.
    loop("loop_stale_from_k", "tight5", [StalePosition(5)], MID, ["stale_position"]),
    loop("loop_stale_from_start", "spare1", [StalePosition(0)], FIRST, ["stale_position"],
         weights=WEIGHTS),
    loop("loop_stale_one_batch", "spare21", [StalePosition(6, 7)], ONE, ["stale_position"]),
    # Timing.
    loop("loop_shift_twice_from_start", "tight5", [ShiftTwice(0)], FIRST, ["timing"]),
    loop("loop_shift_twice_from_k", "daily", [ShiftTwice(30)], MID, ["timing"],
         weights=WEIGHTS),
    loop("loop_look_ahead_from_start", "spare21", [LookAhead(0)], FIRST, ["look_ahead"]),
    loop("loop_look_ahead_one_bar", "tight5", [LookAhead(7, 8)], ONE, ["look_ahead"]),
    loop("loop_close_fill_from_k", "spare1", [CloseFill(40)], MID, ["timing"],
         weights=WEIGHTS),
    # Sequencing.
    loop("loop_buys_first_from_k", "tight5", [BuysFirst(3)], MID, ["sequencing"]),
    loop("loop_column_order_from_k", "daily", [ColumnOrder(25)], MID, ["sequencing"],
         weights=WEIGHTS),
    loop("loop_buys_first_from_start", "tight21", [BuysFirst(0)], FIRST, ["sequencing"],
         a="engine"),
    loop("loop_buys_first_one_batch", "gaps21", [BuysFirst(4, 5)], ONE, ["sequencing"]),
    loop("loop_buys_first_stops", "daily", [BuysFirst(4, 8)], STOPS, ["sequencing"],
         weights=WEIGHTS, stops=True),
    # Fees left out of cash.
    loop("loop_fees_out_of_cash_from_start", "tight5", [FeesOutOfCash(0)], FIRST,
         ["sizing_basis"]),
    loop("loop_fees_out_of_cash_from_k", "spare21", [FeesOutOfCash(5)], MID,
         ["sizing_basis"]),
    loop("loop_fees_out_of_cash_one_batch", "tight5", [FeesOutOfCash(8, 9)], ONE,
         ["sizing_basis"]),
    # One-off prices and fees, fee changes.
    loop("loop_one_off_quote", "tight5", [OneOffQuote(6, 7, asset="?entry")], ONE,
         ["fill_price"]),
    loop("loop_one_off_fill", "spare21", [OneOffFill(4, 5, asset="?entry")], ONE,
         ["fill_price"]),
    loop("loop_one_off_fee", "daily", [OneOffFee(50, 51, asset="?fill")], ONE, ["fee"]),
    loop("loop_fee_rate_from_k", "spare1", [FeeRate(20, rate=0.002)], MID, ["fee"]),
    # Rounding.
    loop("loop_integer_shares_from_start", "spare21", [Lots(0, size=1.0)], FIRST,
         ["rounding"]),
    loop("loop_lots_of_100_from_start", "tight21", [Lots(0, size=100.0)], FIRST,
         ["rounding"]),
    loop("loop_integer_shares_from_k", "tight5", [Lots(5, size=1.0)], MID, ["rounding"]),
    # Several at once.
    loop("loop_booked_twice_then_zero_position", "tight5",
         [BookedTwice(3, 4), ZeroPosition(6)], SEVERAL, ["duplicate_fill"],
         ["duplicate_fill", "accumulation"]),
    loop("loop_fee_change_then_shift", "tight5", [FeeRate(4, rate=0.002), ShiftTwice(8)],
         SEVERAL, ["fee"], ["fee", "timing"]),
    loop("loop_stale_and_buys_first", "tight5", [StalePosition(5), BuysFirst(5)], SEVERAL,
         ["stale_position"], ["stale_position", "sequencing"]),
    # The seed scenario: 500 assets, top 25 at 4% every 21 bars, every fill logged and
    # booked twice, positions read as zero.
    loop("seed_duplicates_and_accumulation", "seed", [LoggedTwice(0), ZeroPosition(0)],
         SEVERAL, ["duplicate_fill"], ["duplicate_fill", "accumulation"], weights=WEIGHTS,
         a="engine"),
    # Negative controls: faults outside the vocabulary.
    negative("neg_sizing_bias_from_k", "spare21", SizingBias(4), MID),
    negative("neg_sizing_bias_tight", "tight5", SizingBias(6), MID, weights=WEIGHTS),
    negative("neg_quantity_times_1_5", "spare1", QuantityTimes(30, 31, asset="?entry"), ONE),
    negative("neg_lost_buy", "spare21", LostBuy(5, 6, asset="?entry"), ONE),
    negative("neg_extra_fill", "gaps5", ExtraFill(8, 9, asset="?idle"), ONE),
    negative("neg_partial_exits_from_k", "spare21", PartialExit(3), MID),
]

BY_NAME = {p.name: p for p in PAIRS}
assert len(BY_NAME) == len(PAIRS), "pair names must be unique"
