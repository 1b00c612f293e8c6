"""Trades are derived from fills: FIFO round trips that account for every fill's cash flow.

The compiled builder is checked against a plain-loop FIFO written here from the contract,
on random fill sequences, and against the invariants that tie trades back to the fills.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict, deque

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import BacktestConfig, InputError, run_backtest
from engine.results.trades import TRADE_SCHEMA, build_trades
from schemas.backtest import Trades
from tests.builders import START, random_universe, top_k_weights

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
TEXT_COLUMNS = ("asset", "direction", "entry_time", "exit_time", "status")
NUMBER_COLUMNS = ("quantity", "entry_price", "exit_price", "entry_fee", "exit_fee", "pnl",
                  "return")


def fills_frame(rows: list[tuple]) -> pl.DataFrame:
    """Fills from (day, asset, quantity, price, fee) rows, in the given (execution) order."""
    return pl.DataFrame(
        {
            "timestamp": [START + dt.timedelta(days=r[0]) for r in rows],
            "asset": [r[1] for r in rows],
            "quantity": [float(r[2]) for r in rows],
            "price": [float(r[3]) for r in rows],
            "fee": [float(r[4]) for r in rows],
            "order_id": list(range(len(rows))),
        },
        schema={"timestamp": pl.Datetime("us"), "asset": pl.String, "quantity": pl.Float64,
                "price": pl.Float64, "fee": pl.Float64, "order_id": pl.Int64},
    )


def ledger_add(before: float, quantity: float) -> float:
    """The ledger's position update: the sum, snapped to 0 when the two cancel."""
    after = before + quantity
    return 0.0 if abs(after) <= max(1e-9 * max(abs(before), abs(quantity)), 1e-12) else after


def final_positions(fills: pl.DataFrame) -> dict[str, float]:
    held: dict[str, float] = defaultdict(float)
    for asset, quantity in fills.select("asset", "quantity").iter_rows():
        if abs(quantity) > 1e-12:
            held[asset] = ledger_add(held[asset], quantity)
    return held


def fifo_oracle(fills: pl.DataFrame, last_close: dict[str, float]) -> pl.DataFrame:
    """The contract as a plain loop over fills with a queue of lots per asset."""
    lots: dict[str, deque] = defaultdict(deque)
    held: dict[str, float] = defaultdict(float)
    rows = []

    def emit(lot, size, exit_row, exit_time, exit_price, exit_fee):
        entry_fee = lot["fee"] * size / lot["size"]
        pnl = lot["sign"] * size * (exit_price - lot["price"]) - entry_fee - exit_fee
        rows.append({
            "key": (lot["row"], math.inf if exit_row is None else exit_row),
            "asset": lot["asset"], "direction": "long" if lot["sign"] > 0 else "short",
            "entry_time": lot["time"], "exit_time": exit_time, "quantity": size,
            "entry_price": lot["price"], "exit_price": exit_price, "entry_fee": entry_fee,
            "exit_fee": exit_fee, "pnl": pnl, "return": pnl / (size * lot["price"]),
            "status": "open" if exit_row is None else "closed",
        })

    columns = ("timestamp", "asset", "quantity", "price", "fee")
    for row, (time_, asset, quantity, price, fee) in enumerate(fills.select(columns).iter_rows()):
        if abs(quantity) <= 1e-12:
            continue
        before = held[asset]
        after = held[asset] = ledger_add(before, quantity)
        if before == 0 or (before > 0) == (quantity > 0):
            to_close, to_open = 0.0, abs(quantity)
        elif after == 0:
            to_close, to_open = abs(before), 0.0
        elif (after > 0) == (before > 0):
            to_close, to_open = abs(quantity), 0.0
        else:
            to_close, to_open = abs(before), abs(after)
        open_fee = fee * to_open / (to_open + to_close)
        close_fee = fee - open_fee
        everything = to_close > 0 and (after == 0 or to_open > 0)
        left = to_close
        queue = lots[asset]
        while to_close and queue and (everything or left > 1e-9 * to_close):
            lot = queue[0]
            take = lot["left"] if everything else min(lot["left"], left)
            if take > 1e-9 * min(lot["size"], to_close):
                emit(lot, take, row, time_, price, close_fee * take / to_close)
            lot["left"] -= take
            left -= take
            if everything or lot["left"] <= 1e-9 * lot["size"]:
                queue.popleft()
        if to_open:
            queue.append({"row": row, "time": time_, "asset": asset, "price": price,
                          "size": to_open, "left": to_open, "fee": open_fee,
                          "sign": 1.0 if after > 0 else -1.0})
    for asset, queue in lots.items():
        for lot in queue:
            if lot["left"] > 1e-9 * lot["size"]:
                emit(lot, lot["left"], None, None, last_close[asset], 0.0)
    rows.sort(key=lambda r: r.pop("key"))
    return pl.DataFrame(rows, schema=TRADE_SCHEMA)


def assert_same_trades(ours: pl.DataFrame, theirs: pl.DataFrame, scale: float) -> None:
    assert ours.height == theirs.height, (ours, theirs)
    for column in TEXT_COLUMNS:
        assert ours[column].equals(theirs[column]), column
    for column in NUMBER_COLUMNS:
        a, b = ours[column].to_numpy(), theirs[column].to_numpy()
        atol = 1e-9 * (scale if column in ("pnl", "entry_fee", "exit_fee") else 1.0)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=atol, err_msg=column)


def notional(fills: pl.DataFrame) -> float:
    return max(1.0, float((fills["quantity"] * fills["price"]).abs().sum() + fills["fee"].sum()))


# Random fill sequences: deltas (whole and tenths, which leave float dust), flattening
# fills, half exits and reversals across zero; several fills may share a timestamp.
moves = st.one_of(
    st.integers(-30, 30).filter(bool).map(float),
    st.integers(-300, 300).filter(bool).map(lambda x: x / 10),
    st.sampled_from(["flat", "half", "reverse"]),
)
steps = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(["A", "B", "C"]), moves,
              st.integers(1, 400).map(lambda x: x / 4), st.sampled_from([0.0, 0.5, 1.25])),
    min_size=1, max_size=40,
)
closes = st.fixed_dictionaries({a: st.integers(1, 400).map(lambda x: x / 4) for a in "ABC"})


def fills_from_steps(step_list: list[tuple]) -> pl.DataFrame:
    held: dict[str, float] = defaultdict(float)
    day, rows = 0, []
    for gap, asset, move, price, fee in step_list:
        day += gap
        position = held[asset]
        quantity = {"flat": -position, "half": -position / 2, "reverse": -2 * position}.get(
            move, move) if isinstance(move, str) else move
        if abs(quantity) <= 1e-12:
            continue
        held[asset] = ledger_add(position, quantity)
        rows.append((day, asset, quantity, price, fee))
    return fills_frame(rows)


@SETTINGS
@given(step_list=steps, last_close=closes)
def test_compiled_trades_equal_the_plain_fifo_loop(step_list, last_close):
    fills = fills_from_steps(step_list)
    ours = build_trades(fills, last_close, None)
    assert_same_trades(ours, fifo_oracle(fills, last_close), notional(fills))


@pytest.mark.slow
@SETTINGS
@given(step_list=steps, last_close=closes)
def test_trades_account_for_every_fill(step_list, last_close):
    fills = fills_from_steps(step_list)
    trades = build_trades(fills, last_close, None)
    held = final_positions(fills)

    flows = float((-(fills["quantity"] * fills["price"]) - fills["fee"]).sum())
    marked = sum(q * last_close[a] for a, q in held.items())
    assert trades["pnl"].sum() == pytest.approx(flows + marked, rel=1e-9,
                                                abs=1e-9 * notional(fills))

    signed = trades.filter(pl.col("status") == "open").group_by("asset").agg(
        (pl.col("quantity") * pl.when(pl.col("direction") == "long").then(1.0).otherwise(-1.0))
        .sum()
    )
    open_by_asset = dict(signed.iter_rows())
    for asset, position in held.items():
        assert open_by_asset.get(asset, 0.0) == pytest.approx(position, rel=1e-9, abs=1e-9)

    assert (trades["quantity"] > 0).all()
    Trades.validate(trades)


def test_long_round_trip():
    fills = fills_frame([(0, "A", 10, 100, 1.0), (1, "A", -10, 110, 2.0)])
    trade = build_trades(fills, {"A": 120.0}, None).row(0, named=True)
    assert trade["direction"] == "long" and trade["status"] == "closed"
    assert trade["quantity"] == 10 and trade["entry_price"] == 100 and trade["exit_price"] == 110
    assert trade["pnl"] == pytest.approx(10 * 10 - 1 - 2)
    assert trade["return"] == pytest.approx(97 / 1000)


def test_partial_exits_close_the_oldest_lot_first():
    fills = fills_frame([(0, "A", 10, 100, 1.0), (1, "A", 5, 110, 1.0), (2, "A", -12, 120, 1.2)])
    trades = build_trades(fills, {"A": 130.0}, None)
    assert trades.select("entry_price", "quantity", "status").rows() == [
        (100.0, 10.0, "closed"), (110.0, 2.0, "closed"), (110.0, 3.0, "open"),
    ]
    assert trades["exit_fee"].to_list() == pytest.approx([1.0, 0.2, 0.0])
    assert trades["entry_fee"].to_list() == pytest.approx([1.0, 0.4, 0.6])
    assert trades["exit_price"][2] == 130.0 and trades["exit_time"][2] is None


def test_crossing_zero_closes_the_long_and_opens_a_short_with_the_fee_split():
    fills = fills_frame([(0, "A", 10, 100, 0.0), (1, "A", -15, 90, 3.0)])
    trades = build_trades(fills, {"A": 80.0}, None)
    assert trades.select("direction", "quantity", "status").rows() == [
        ("long", 10.0, "closed"), ("short", 5.0, "open"),
    ]
    assert trades["exit_fee"][0] == pytest.approx(2.0)
    assert trades["entry_fee"][1] == pytest.approx(1.0)
    assert trades["entry_time"][1] == trades["exit_time"][0]
    assert trades["pnl"][1] == pytest.approx(5 * (90 - 80) - 1.0)


def test_short_trade_gains_when_the_price_falls():
    fills = fills_frame([(0, "A", -4, 50, 0.0), (1, "A", 4, 40, 0.0)])
    trade = build_trades(fills, {"A": 40.0}, None).row(0, named=True)
    assert trade["direction"] == "short"
    assert trade["pnl"] == pytest.approx(40.0) and trade["return"] == pytest.approx(0.2)


def test_rows_of_one_timestamp_execute_in_the_given_order():
    fills = fills_frame([(0, "A", 5, 10, 0.0), (0, "A", -5, 11, 0.0), (0, "A", 5, 12, 0.0)])
    trades = build_trades(fills, {"A": 12.0}, None)
    assert trades.select("entry_price", "exit_price", "status").rows() == [
        (10.0, 11.0, "closed"), (12.0, 12.0, "open"),
    ]


def test_float_dust_from_fractional_shares_creates_no_rows():
    fills = fills_frame([
        (0, "A", 0.1, 10, 0.0), (1, "A", 0.2, 10, 0.0), (2, "A", -0.3, 11, 0.0),
        (3, "B", 1 / 3, 10, 0.0), (3, "B", 1 / 3, 10, 0.0), (3, "B", 1 / 3, 10, 0.0),
        (4, "B", -1.0, 12, 0.0),
    ])
    trades = build_trades(fills, {"A": 11.0, "B": 12.0}, None)
    assert trades["status"].to_list() == ["closed"] * 5
    assert trades["quantity"].to_list() == pytest.approx([0.1, 0.2, 1 / 3, 1 / 3, 1 / 3])


def test_residue_of_a_partial_close_creates_no_row():
    fills = fills_frame([
        (0, "A", 0.1, 10, 0.0), (0, "A", 0.2, 10, 0.0), (0, "A", 1.0, 10, 0.0),
        (1, "A", -0.3, 11, 0.0), (2, "A", -1.0, 12, 0.0),
    ])
    trades = build_trades(fills, {"A": 12.0}, None)
    assert trades.select("entry_time", "exit_price").rows() == [
        (START, 11.0), (START, 11.0), (START, 12.0),
    ]
    assert trades["quantity"].to_list() == pytest.approx([0.1, 0.2, 1.0])


def test_a_sell_within_1e_9_of_the_position_flattens_it_like_the_ledger():
    fills = fills_frame([(0, "A", 10, 100, 0.0), (1, "A", -10.000000001, 101, 2.0)])
    trades = build_trades(fills, {"A": 90.0}, None)
    assert trades.select("direction", "quantity", "exit_fee", "status").rows() == [
        ("long", 10.0, 2.0, "closed"),
    ]


def test_positions_restart_from_exact_zero_after_a_flat_point():
    # Summed straight through, 1e6 + 0.1 + 0.2 − 0.3 − 1e6 leaves −1.2e-10, which would turn
    # the later 3e-10 round trip into a spurious open trade; the ledger snaps it to 0.
    fills = fills_frame([
        (0, "A", 1e6, 10, 0.0), (1, "A", 0.1, 10, 0.0), (2, "A", 0.2, 10, 0.0),
        (3, "A", -0.3, 10, 0.0), (4, "A", -1e6, 10, 0.0),
        (5, "A", 3e-10, 10, 0.0), (6, "A", -3e-10, 11, 0.0),
    ])
    trades = build_trades(fills, {"A": 12.0}, None)
    assert (trades["status"] == "closed").all()
    assert trades.row(-1, named=True)["quantity"] == pytest.approx(3e-10, rel=1e-12)


def test_fills_of_at_most_1e_12_shares_trade_nothing():
    fills = fills_frame([(0, "A", 1e-13, 10, 0.0), (1, "A", 2, 10, 0.0), (2, "A", -1e-13, 9, 0.0)])
    trades = build_trades(fills, {"A": 11.0}, None)
    assert trades.select("quantity", "status").rows() == [(2.0, "open")]


def test_last_close_may_be_a_dict_or_a_frame():
    fills = fills_frame([(0, "A", 3, 10, 0.0), (0, "B", -2, 20, 0.0)])
    frame = pl.DataFrame({"asset": ["B", "A"], "close": [18.0, 12.0]})
    assert build_trades(fills, frame, None).equals(
        build_trades(fills, {"A": 12.0, "B": 18.0}, None)
    )


def test_no_fills_give_an_empty_table_with_the_schema():
    trades = build_trades(fills_frame([]), {}, None)
    assert trades.height == 0 and trades.schema == pl.Schema(TRADE_SCHEMA)
    Trades.validate(trades)


def test_a_held_asset_without_a_last_close_is_an_input_error():
    fills = fills_frame([(0, "A", 3, 10, 0.0), (0, "B", 2, 20, 0.0), (1, "B", -2, 21, 0.0)])
    with pytest.raises(InputError, match="A"):
        build_trades(fills, {"B": 21.0}, None)
    assert build_trades(fills, {"A": 11.0}, None).height == 2


def test_fills_out_of_time_order_or_after_end_time_are_input_errors():
    fills = fills_frame([(1, "A", 3, 10, 0.0), (0, "A", -3, 11, 0.0)])
    with pytest.raises(InputError, match="execution order"):
        build_trades(fills, {"A": 11.0}, None)
    fills = fills_frame([(0, "A", 3, 10, 0.0), (5, "A", -3, 11, 0.0)])
    with pytest.raises(InputError, match="end_time"):
        build_trades(fills, {"A": 11.0}, START + dt.timedelta(days=1))


def test_inputs_are_not_mutated():
    fills = fills_frame([(0, "A", 10, 100, 1.0), (1, "A", -15, 110, 2.0)])
    last = pl.DataFrame({"asset": ["A"], "close": [105.0]})
    fills_before, last_before = fills.clone(), last.clone()
    build_trades(fills, last, START + dt.timedelta(days=1))
    assert fills.equals(fills_before) and last.equals(last_before)


def test_trades_of_a_backtest_add_up_to_its_profit_and_final_positions():
    prices, _, _ = random_universe(8, 60, seed=3, missing=0.05)
    weights = top_k_weights(8, 60, 3, 4, seed=3)
    result = run_backtest(prices, weights, BacktestConfig(fees=0.001, fixed_fee=1.0))
    trades = result.validate().trades
    assert trades["pnl"].sum() == pytest.approx(
        result.final_equity - result.config.initial_cash, rel=1e-9, abs=1e-6
    )
    last_bar = result.positions.filter(pl.col("timestamp") == pl.col("timestamp").max())
    open_trades = trades.filter(pl.col("status") == "open").group_by("asset").agg(
        pl.col("quantity").sum()
    )
    assert dict(open_trades.iter_rows()) == pytest.approx(dict(
        last_bar.select("asset", "quantity").iter_rows()
    ))


def test_many_random_fills_leave_open_trades_equal_to_the_positions():
    """20,000 fills on 200 assets (speed is measured in bench/, not here)."""
    rng = np.random.default_rng(7)
    n, assets = 20_000, [f"S{j:03d}" for j in range(200)]
    fills = pl.DataFrame({
        "timestamp": np.sort(rng.integers(0, 10**12, n)).astype("datetime64[us]"),
        "asset": pl.Series(assets).gather(rng.integers(0, len(assets), n)),
        "quantity": np.round(rng.normal(5, 100, n), 3) + 1e-3,
        "price": rng.uniform(10, 200, n),
        "fee": rng.uniform(0, 1, n),
        "order_id": np.arange(n),
    })
    trades = build_trades(fills, dict.fromkeys(assets, 100.0), None)
    assert trades.height >= 0.9 * n and (trades["quantity"] > 0).all()
    expected = fills.group_by("asset").agg(pl.col("quantity").sum())
    got = trades.filter(pl.col("status") == "open").group_by("asset").agg(
        (pl.col("quantity") * pl.when(pl.col("direction") == "long").then(1.0).otherwise(-1.0))
        .sum()
    )
    joined = expected.join(got, on="asset", how="left").fill_null(0.0)
    np.testing.assert_allclose(joined["quantity_right"], joined["quantity"], rtol=1e-6,
                               atol=1e-6)
