"""LEAN and Interactive Brokers logs built to their published layouts, the reading rules
(sides, symbols, times, partial fills) and the one-line errors for bad logs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from engine.backtest import run_backtest, run_orders
from engine.core.config import BacktestConfig
from engine.errors import InputError
from engine.logs import LogOptions, read_log
from pipelines.cli import main
from tests.native_logs import small_market

pytestmark = pytest.mark.slow

FILLS = ["timestamp", "asset", "quantity", "price", "fee"]
SETTINGS = ("--shares", "integer", "--fees", "0.0005")


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """Prices, weights, and the fills of the engine on them (integer shares, 10 bp)."""
    folder = tmp_path_factory.mktemp("market")
    prices, weights = small_market()
    prices = prices.with_columns(pl.col("open", "high", "low", "close").round(2))
    prices.write_parquet(folder / "prices.parquet")
    weights.write_parquet(folder / "weights.parquet")
    fills = run_backtest(prices, weights, BacktestConfig(shares="integer", fees=0.001)).fills
    return folder, prices, fills.select(FILLS)


def summary_of(tmp: Path, folder: Path, log: Path, *flags: str) -> dict:
    out = tmp / f"out-{log.name}"
    assert main(["explain", "--fills", str(log), "--prices", str(folder / "prices.parquet"),
                 "--out", str(out), *flags]) == 0
    summary = json.loads((out / "gap_summary.json").read_text())
    return {k: v for k, v in summary.items() if k not in ("a", "b")}


def assert_same_diagnosis(tmp: Path, folder: Path, native: Path, own: pl.DataFrame,
                          *flags: str) -> dict:
    own_file = tmp / "own.parquet"
    own.write_parquet(own_file)
    decisions = flags or ("--weights", str(folder / "weights.parquet"), *SETTINGS)
    by_native = summary_of(tmp, folder, native, *decisions)
    assert by_native == summary_of(tmp, folder, own_file, *decisions)
    reference = tmp / "reference"
    assert main(["backtest", "--prices", str(folder / "prices.parquet"), *decisions,
                 "--out", str(reference)]) == 0
    gaps = []
    for log in (native, own_file):
        out = tmp / f"gap-{log.name}"
        assert main(["gap", "--a", str(reference), "--b", str(log), "--prices",
                     str(folder / "prices.parquet"), "--out", str(out)]) == 0
        found = json.loads((out / "gap_summary.json").read_text())
        gaps.append({k: v for k, v in found.items() if k not in ("a", "b")})
    assert gaps[0] == gaps[1]
    return by_native


def at(day: dt.datetime, hour: int, minute: int) -> dt.datetime:
    return day + dt.timedelta(hours=hour, minutes=minute)


def test_lean_result_orders_json(market, tmp_path):
    folder, _, fills = market
    orders = {}
    for i, (t, asset, q, p, _) in enumerate(fills.iter_rows(), start=1):
        orders[str(i)] = {
            "type": 0, "id": i, "contingentId": 0, "brokerId": [str(i)],
            "symbol": {"value": asset, "id": f"{asset} R735QTJ8XC9X", "permtick": asset},
            "price": p, "priceCurrency": "USD",
            "time": at(t, 14, 30).isoformat() + "Z",
            "lastFillTime": at(t, 14, 31).isoformat() + "Z",
            "quantity": q, "status": 3, "tag": "", "properties": {"timeInForce": {}},
            "securityType": 1, "direction": 0 if q > 0 else 1, "value": q * p,
        }
    orders[str(len(orders) + 1)] = {**orders["1"], "id": len(orders) + 1, "status": 5}
    native = tmp_path / "1234567.json"
    native.write_text(json.dumps({"orders": orders, "totalPerformance": {}}))
    own = fills.with_columns(fee=pl.lit(0.0))  # LEAN's orders carry no fees
    summary = assert_same_diagnosis(tmp_path, folder, native, own)
    assert "fee" in {f["cause"] for f in summary["faults"]}
    orders["2"]["status"] = 2
    native.write_text(json.dumps({"orders": orders}))
    with pytest.raises(InputError, match=r"1234567.json: column 'status': read as LEAN result "
                       r"orders: an order partially filled .* \(order 2\) at rows 2$"):
        read_log(native, market[1])


def test_lean_order_events_json_with_partial_fills(market, tmp_path):
    folder, _, fills = market
    events, own = [], []
    for i, (t, asset, q, p, fee) in enumerate(fills.iter_rows(), start=1):
        base = {"algorithmId": "abc", "orderId": i, "symbol": f"{asset} R735QTJ8XC9X",
                "symbolValue": asset, "symbolPermtick": asset, "quantity": q,
                "fillPriceCurrency": "USD", "isAssignment": False}
        when = at(t, 14, 31).replace(tzinfo=dt.UTC).timestamp()
        events.append({**base, "id": f"abc-{i}-1", "orderEventId": 1, "time": when - 60,
                       "status": "submitted", "fillPrice": 0.0, "fillQuantity": 0.0,
                       "direction": "buy" if q > 0 else "sell"})
        half = float(int(q / 2))
        parts = [(half, fee / 2), (q - half, fee - fee / 2)] if half else [(q, fee)]
        for k, (part, paid) in enumerate(parts, start=2):
            events.append({**base, "id": f"abc-{i}-{k}", "orderEventId": k, "time": when,
                           "status": "filled" if k == len(parts) + 1 else "partiallyFilled",
                           "fillPrice": p, "fillQuantity": part, "orderFeeAmount": paid,
                           "orderFeeCurrency": "USD",
                           "direction": "buy" if q > 0 else "sell"})
            own.append((t, asset, part, p, paid))
    native = tmp_path / "1234567-order-events.json"
    native.write_text(json.dumps(events))
    read = read_log(native, market[1])
    assert read.format.name == "lean_events" and read.fills.height == len(own)
    assert_same_diagnosis(tmp_path, folder, native,
                          pl.DataFrame(own, schema=FILLS, orient="row"))


def test_lean_trades_csv(market, tmp_path):
    folder, prices, _ = market
    stamps = prices["timestamp"].unique().sort()
    orders = pl.DataFrame({
        "timestamp": [stamps[1], stamps[2], stamps[3], stamps[6], stamps[9], stamps[12],
                      stamps[14]],
        "asset": ["A0001", "A0002", "A0003", "A0001", "A0002", "A0003", "A0004"],
        "type": ["market"] * 7, "quantity": [100.0, 50.0, -30.0, -100.0, -50.0, 30.0, 20.0]})
    orders.write_parquet(tmp_path / "orders.parquet")
    fills = run_orders(prices, orders, BacktestConfig(fees=0.001)).fills.select(FILLS)
    trades, own = [], []
    for asset in ["A0001", "A0002", "A0003", "A0004"]:
        legs = fills.filter(pl.col("asset") == asset).rows()
        entry, exit_ = legs[0], legs[1] if len(legs) > 1 else None
        fee = entry[4] + (exit_[4] if exit_ else 0.0)
        trades.append({
            "Entry Time": at(entry[0], 14, 30).isoformat() + "Z", "Symbols": asset,
            "Exit Time": at(exit_[0], 20, 59).isoformat() + "Z" if exit_ else "",
            "Direction": "Buy" if entry[2] > 0 else "Sell", "Entry Price": entry[3],
            "Exit Price": exit_[3] if exit_ else "", "Quantity": abs(entry[2]),
            "P&L": 0.0, "Fees": fee, "MAE": 0.0, "MFE": 0.0, "Drawdown": 0.0,
            "IsWin": 0, "Order Ids": ""})
        own.append((entry[0], asset, entry[2], entry[3], fee / 2))
        if exit_:
            own.append((exit_[0], asset, exit_[2], exit_[3], fee / 2))
    native = tmp_path / "trades.csv"
    pl.DataFrame(trades).write_csv(native)
    own_frame = pl.DataFrame(own, schema=FILLS, orient="row").sort("timestamp",
                                                                   maintain_order=True)
    assert read_log(native, prices).format.name == "lean_trades"
    assert_same_diagnosis(tmp_path, folder, native, own_frame, "--orders",
                          str(tmp_path / "orders.parquet"), "--fees", "0.002")


IB_HEADER = ["ClientAccountID", "CurrencyPrimary", "AssetClass", "Symbol", "Conid",
             "ListingExchange", "TradeID", "DateTime", "TradeDate", "Exchange", "Quantity",
             "TradePrice", "TradeMoney", "Proceeds", "Taxes", "IBCommission",
             "IBCommissionCurrency", "NetCash", "Buy/Sell", "IBOrderID", "LevelOfDetail",
             "OrderType"]


def ib_flex(fills: pl.DataFrame, symbols: dict[str, str] | None = None,
            split: bool = True) -> tuple[str, pl.DataFrame]:
    """A Flex Trades CSV with its BOF/BOS/EOS/EOF records, each fill as two EXECUTION
    rows of one order (its partial fills) plus the ORDER row summing them; and our table
    of the same executions."""
    def quoted(values):
        return ",".join(f'"{v}"' for v in values)

    lines = [quoted(["BOF", "U123", "Trades", "1", "20240101", "20240301", "20240302",
                     "x"]), quoted(["BOS", "TRNT", "Trades"]), quoted(IB_HEADER)]
    own = []
    for i, (t, asset, q, p, fee) in enumerate(fills.iter_rows(), start=1):
        half = float(int(q / 2)) if split else 0.0
        parts = [(half, p - 0.01, fee / 2), (q - half, None, fee - fee / 2)] if half \
            else [(q, p, fee)]
        if half:  # the second part's price keeps the order's average at p
            parts[1] = (q - half, (q * p - half * (p - 0.01)) / (q - half), fee - fee / 2)
        rows = [(part, price, paid, "EXECUTION", f"{9000 + 2 * i + k}")
                for k, (part, price, paid) in enumerate(parts)]
        rows.append((q, p, fee, "ORDER", ""))
        for part, price, paid, level, trade_id in rows:
            money = part * price
            lines.append(quoted([
                "U123", "USD", "STK", (symbols or {}).get(asset, asset), "265598", "NASDAQ",
                trade_id, t.strftime("%Y%m%d") + ";093100", t.strftime("%Y%m%d"), "ISLAND",
                f"{part:g}", repr(price), repr(money), repr(-money), "0", repr(-paid),
                "USD", repr(-money - paid), "BUY" if part > 0 else "SELL", str(1000 + i),
                level, "LMT"]))
            if level == "EXECUTION":
                own.append((t, asset, part, price, paid))
    lines += [quoted(["EOS", "TRNT", str(len(lines) - 3)]), quoted(["EOF", "U123"])]
    return "\n".join(lines) + "\n", pl.DataFrame(own, schema=FILLS, orient="row")


def test_ib_flex_trades_csv(market, tmp_path):
    folder, prices, fills = market
    text, own = ib_flex(fills)
    native = tmp_path / "flex.csv"
    native.write_text(text)
    read = read_log(native, prices)
    assert read.format.name == "ib" and read.fills.height == own.height
    assert read.fills["trigger"].unique().to_list() == ["LMT"]
    summary = assert_same_diagnosis(tmp_path, folder, native, own)
    assert "fee" in {f["cause"] for f in summary["faults"]}


def test_partial_fills_summed_per_order_and_bar(market, tmp_path):
    _, prices, fills = market
    native = tmp_path / "flex.csv"
    native.write_text(ib_flex(fills)[0])
    summed = read_log(native, prices, LogOptions(partials="sum")).fills
    assert summed.height == fills.height
    assert summed.select(FILLS).sort(["timestamp", "asset"]).select(
        "quantity", "fee").equals(fills.sort(["timestamp", "asset"]).select("quantity", "fee"))
    assert (summed.sort(["timestamp", "asset"])["price"]
            - fills.sort(["timestamp", "asset"])["price"]).abs().max() < 1e-9


def test_symbols_mapped_by_file_and_by_exchange_suffix(market, tmp_path):
    _, prices, fills = market
    mapping = {a: f"X{a[-1]}" for a in prices["asset"].unique().to_list()}
    native = tmp_path / "flex.csv"
    native.write_text(ib_flex(fills, mapping)[0])
    with pytest.raises(InputError, match=r"flex.csv: column 'Symbol': read as IB Flex Trades"
                       r" CSV: unknown asset \(map it with --assets map.csv\), found 'X1' at"
                       r" rows 1, 2, 4, 5, 7 \(36 rows in all\)"):
        read_log(native, prices)
    table = tmp_path / "map.csv"
    pl.DataFrame({"symbol": list(mapping.values()), "asset": list(mapping)}).write_csv(table)
    mapped = read_log(native, prices, LogOptions(assets=str(table))).fills
    assert sorted(mapped["asset"].unique()) == sorted(fills["asset"].unique())
    suffixed = fills.with_columns(pl.col("asset") + ".XNAS").rename({"asset": "instrument"})
    frame = suffixed.with_columns(side=pl.when(pl.col("quantity") > 0).then(pl.lit("BUY"))
                                  .otherwise(pl.lit("SELL")), quantity=pl.col("quantity").abs())
    options = LogOptions(columns={"asset": "instrument", "side": "side"})
    read = read_log(frame, prices, options).fills
    assert read.select(FILLS).equals(fills)


def test_intraday_fills_belong_to_their_bar(tmp_path):
    minutes = [dt.datetime(2024, 1, 2, 9, 30) + dt.timedelta(minutes=i) for i in range(5)]
    prices = pl.DataFrame({"timestamp": minutes, "asset": "A", "open": 10.0, "high": 10.2,
                           "low": 9.8, "close": 10.1, "volume": 1e4}).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")))
    log = pl.DataFrame({"timestamp": ["2024-01-02 09:31:20", "2024-01-02 09:34:59"],
                        "asset": ["A", "A"], "quantity": [5.0, -5.0], "price": [10.1, 9.9],
                        "fee": [0.0, 0.0]})
    read = read_log(log, prices).fills
    assert read["timestamp"].to_list() == [minutes[1], minutes[4]]
    late = log.with_columns(pl.lit("2024-01-02 09:35:00").alias("timestamp"))
    with pytest.raises(InputError, match="a fill at a time with no bar, found "
                       "2024-01-02 09:35:00 at rows 1, 2"):
        read_log(late, prices)


def test_numeric_dates_in_a_log_follow_the_loaders_date_rule(tmp_path):
    """Month-first dates read month-first (a day above 12 says so), not by polars'
    day-first guess; a log whose dates read both ways is refused naming its rows."""
    days = [dt.datetime(2024, 2, 1) + dt.timedelta(days=i) for i in range(20)]
    prices = pl.DataFrame({"timestamp": days, "asset": "A", "open": 10.0, "high": 10.2,
                           "low": 9.8, "close": 10.1, "volume": 1e4}).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")))
    log = pl.DataFrame({"timestamp": ["02/03/2024", "02/15/2024"], "asset": ["A", "A"],
                        "quantity": [5.0, -5.0], "price": [10.1, 9.9], "fee": [0.0, 0.0]})
    assert read_log(log, prices).fills["timestamp"].to_list() == [days[2], days[14]]
    early = log.with_columns(pl.Series("timestamp", ["02/03/2024", "02/05/2024"]))
    with pytest.raises(InputError, match=r"read as tradegap fills: dates read both "
                       r"month-first and day-first .*, found '02/03/2024' at rows 1, 2"):
        read_log(early, prices)


def test_a_fill_at_the_session_close_in_utc_belongs_to_that_days_bar(market):
    _, prices, fills = market
    zoned = fills.with_columns(
        (pl.col("timestamp").dt.strftime("%Y-%m-%d") + " 16:00:00-05:00").alias("timestamp"))
    read = read_log(zoned, prices).fills  # 21:00 UTC: the same date
    assert read.select(FILLS).equals(fills)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("ZZZ"))
                              .otherwise(pl.col("Column")).alias("Column")),
     r"vbt.csv: column 'Column': read as vectorbt records_readable: unknown asset \(map it "
     r"with --assets map.csv\), found 'ZZZ' at rows 3"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 1).then(
        pl.lit("2024-01-20")).otherwise(pl.col("Timestamp")).alias("Timestamp")),
     r"column 'Timestamp': read as vectorbt records_readable: a fill on a date with no bar, "
     r"found 2024-01-20 at rows 2"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 4).then(pl.col("Price") * 10)
                              .otherwise(pl.col("Price")).alias("Price")),
     r"column 'Price': read as vectorbt records_readable: price outside its bar's low–high "
     r"range by more than 2.0% \(--price-tolerance\), found [\d.]+ at rows 5"),
    (lambda f: f.with_columns(pl.col("Price") * 100),
     r"column 'Price': read as vectorbt records_readable: scale mismatch \(rescale the log "
     r"or the prices\): the prices are ×100 their bars' closes \(median ratio [\d.]+: cents "
     r"against dollars, another unit, an unadjusted split\?\) at rows 1, 2, 3, 4, 5"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(-pl.col("Size"))
                              .otherwise(pl.col("Size")).alias("Size")),
     r"column 'Side': read as vectorbt records_readable: the side contradicts the quantity's "
     r"sign, found 'Buy' at rows 1"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("Hold"))
                              .otherwise(pl.col("Side")).alias("Side")),
     r"column 'Side': read as vectorbt records_readable: side is neither buy nor sell, "
     r"found 'Hold' at rows 4"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("n/a"))
                              .otherwise(pl.col("Fees").cast(pl.String)).alias("Fees")),
     r"column 'Fees': read as vectorbt records_readable: not a number, found 'n/a' at rows "
     r"6"),
    (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 6).then(pl.lit(""))
                              .otherwise(pl.col("Size").cast(pl.String)).alias("Size")),
     r"column 'Size': read as vectorbt records_readable: missing at rows 7"),
    (lambda f: f.rename({"Side": "Direction"}),
     r"vbt.csv: no known log format has these columns \(Order Id, Column, Timestamp, Size, "
     r"Price, Fees, Direction\): name one with --format"),
])
def test_bad_logs_are_one_line_errors_naming_format_column_and_rows(market, tmp_path, change,
                                                                   message):
    _, prices, fills = market
    vbt = fills.with_row_index("Order Id").select(
        "Order Id", Column="asset", Timestamp=pl.col("timestamp").dt.strftime("%Y-%m-%d"),
        Size=pl.col("quantity").abs(), Price="price", Fees="fee",
        Side=pl.when(pl.col("quantity") > 0).then(pl.lit("Buy")).otherwise(pl.lit("Sell")))
    assert read_log(vbt, prices).fills.select(FILLS).equals(fills)
    path = tmp_path / "vbt.csv"
    change(vbt).write_csv(path)
    with pytest.raises(InputError, match=message) as caught:
        read_log(path, prices)
    assert "\n" not in str(caught.value)


def test_price_tolerance_is_a_setting_and_the_cli_error_is_one_line(market, tmp_path, capsys):
    folder, prices, fills = market
    high = prices.filter(pl.col("timestamp") == fills["timestamp"][0],
                         pl.col("asset") == fills["asset"][0])["high"][0]
    shifted = fills.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(high * 1.03)
                                 .otherwise(pl.col("price")).alias("price"))
    log = tmp_path / "mine.csv"
    shifted.write_csv(log)
    args = ["explain", "--fills", str(log), "--prices", str(folder / "prices.parquet"),
            "--weights", str(folder / "weights.parquet"), "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "mine.csv: column 'price': read as tradegap fills" in err
    assert main([*args, "--price-tolerance", "0.05"]) == 0


def test_forced_format_names_the_missing_column(market, tmp_path):
    _, prices, fills = market
    with pytest.raises(InputError, match="read as nautilus_trader fills report: no column "
                                         "'instrument_id'"):
        read_log(fills, prices, LogOptions(format="nautilus"))


def test_fees_from_several_columns(market):
    _, prices, fills = market
    log = fills.rename({"timestamp": "When", "asset": "Ticker"}).with_columns(
        Commission=-pl.col("fee") / 2, Tax=pl.col("fee") / 2).drop("fee")
    options = LogOptions(columns={"timestamp": "When", "asset": "Ticker",
                                  "fee": "Commission+Tax"})
    read = read_log(log, prices, options).fills
    assert (read["fee"] - fills["fee"]).abs().max() < 1e-9


def test_a_bare_log_as_a_takes_its_rules_from_the_profile_and_settings(market, tmp_path):
    folder, _, _ = market
    common = ["--prices", str(folder / "prices.parquet"), "--weights",
              str(folder / "weights.parquet")]
    stops = ["--profile", "vectorbt", "--stop-loss", "0.02", "--take-profit", "0.03"]
    assert main(["backtest", *common, "--out", str(tmp_path / "a"), *stops]) == 0
    assert main(["backtest", *common, "--out", str(tmp_path / "b"), *stops,
                 "--fees", "0.002"]) == 0
    fills_a = pl.read_parquet(tmp_path / "a" / "fills.parquet")
    assert fills_a.height > 0 and (fills_a["trigger"] != "").any()
    fills_a.select(FILLS).write_parquet(tmp_path / "a.parquet")

    def summary(a: str, *flags: str) -> dict:
        out = tmp_path / f"gap-{len(flags)}-{Path(a).name}"
        assert main(["gap", "--a", a, "--b", str(tmp_path / "b"), *common, "--out", str(out),
                     *flags]) == 0
        found = json.loads((out / "gap_summary.json").read_text())
        return {k: v for k, v in found.items() if k not in ("a", "b")}

    from_folder = summary(str(tmp_path / "a"))
    assert summary(str(tmp_path / "a.parquet"), "--a-profile", "vectorbt", "--stop-loss",
                   "0.02", "--take-profit", "0.03") == from_folder
    assert {f["cause"] for f in from_folder["faults"]} == {"fee"}


def test_gap_reads_two_logs_in_two_forms_each_with_its_own_columns(market, tmp_path, capsys):
    folder, prices, fills = market
    a_log, b_log = tmp_path / "a.csv", tmp_path / "b.csv"
    fills.rename({"asset": "symbol", "price": "px"}).write_csv(a_log)
    weights = pl.read_parquet(folder / "weights.parquet")
    halved = run_backtest(prices, weights, BacktestConfig(shares="integer", fees=0.0005)).fills
    halved.select(FILLS).rename({"asset": "instrument", "fee": "commission"}).with_columns(
        side=pl.when(pl.col("quantity") > 0).then(pl.lit("BUY")).otherwise(pl.lit("SELL")),
        quantity=pl.col("quantity").abs()).write_csv(b_log)
    common = ["gap", "--a", str(a_log), "--b", str(b_log), "--prices",
              str(folder / "prices.parquet"), "--weights", str(folder / "weights.parquet"),
              "--a-profile", "tradegap", "--shares", "integer", "--fees", "0.001"]
    shared = ["--out", str(tmp_path / "shared"), "--columns",
              "asset=instrument,side=side,fee=commission"]
    assert main([*common, *shared]) == 2
    assert capsys.readouterr().err.strip().startswith(
        f"tradegap: error: {a_log.name}: column 'commission': read as the columns given "
        "(--columns): no column 'commission' for fee (columns: row, timestamp, symbol,")
    out = tmp_path / "per-side"
    assert main([*common, "--out", str(out), "--a-columns", "asset=symbol,price=px",
                 "--b-columns", "asset=instrument,side=side,fee=commission"]) == 0
    summary = json.loads((out / "gap_summary.json").read_text())
    assert {f["cause"] for f in summary["faults"]} == {"fee"}


def test_signals_are_the_pipelines_top_k_weights(market, tmp_path):
    folder, prices, fills = market
    scores = prices.select("timestamp", "asset", score=(pl.col("close") * 7.0) % 1.0)
    scores.write_parquet(tmp_path / "scores.parquet")
    from engine.research.weights import top_k_weights

    top_k_weights(scores, k=2, every=4).write_parquet(tmp_path / "weights.parquet")
    fills.write_parquet(tmp_path / "mine.parquet")
    by_signals = summary_of(tmp_path, folder, tmp_path / "mine.parquet", "--signals",
                            str(tmp_path / "scores.parquet"), "--top", "2", "--every", "4")
    (tmp_path / "out-mine.parquet").rename(tmp_path / "first")
    by_weights = summary_of(tmp_path, folder, tmp_path / "mine.parquet", "--weights",
                            str(tmp_path / "weights.parquet"))
    assert by_signals == by_weights and by_signals["verdict"] != "identical"


def test_numbers_are_checked_on_the_files_own_rows(market, tmp_path):
    _, prices, fills = market
    text, _ = ib_flex(fills)
    lines = text.splitlines()
    cells = lines[4].split(",")  # the first fill's second execution (data row 2)
    cells[IB_HEADER.index("IBCommission")] = '"0.35"'  # a rebate: negative as a fee
    lines[4] = ",".join(cells)
    native = tmp_path / "flex.csv"
    native.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"flex.csv: column 'IBCommission': read as IB Flex "
                       r"Trades CSV: fee must be a non-negative cost, found -0.35 at rows 2$"):
        read_log(native, prices)
