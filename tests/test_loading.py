"""Loading prices and weights: good files round-trip; every bad input is a one-line
InputError naming the file, the column and the first offending data rows (1-based)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandera.errors
import polars as pl
import pytest

from engine.data import loading
from engine.data.loading import load_orders, load_prices, load_signals, load_weights, read_table
from engine.data.market import Market
from engine.data.synthetic import generate_market, momentum_scores
from engine.errors import InputError
from engine.research.weights import top_k_weights
from schemas.market import Bars, Weights

NAN = float("nan")


@pytest.fixture(scope="module")
def prices() -> pl.DataFrame:
    return generate_market(n_assets=8, n_days=40, seed=2)


@pytest.fixture(scope="module")
def weights(prices) -> pl.DataFrame:
    return top_k_weights(momentum_scores(prices, lookback=5), k=3, every=5)


def edit(frame: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    """`frame` with data row `row` (1-based) of `column` set to `value`."""
    index = pl.int_range(pl.len()) + 1
    return frame.with_columns(
        pl.when(index == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


def write_csv(frame: pl.DataFrame, tmp_path: Path, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    frame.write_csv(path)
    return path


def message(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as raised:
        call(*args, **kwargs)
    text = str(raised.value)
    assert "\n" not in text
    return text


# Good input


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pq"])
def test_prices_round_trip_through_files(prices, weights, tmp_path, suffix):
    price_path, weight_path = tmp_path / f"p{suffix}", tmp_path / f"w{suffix}"
    if suffix == ".csv":
        prices.write_csv(price_path)
        weights.write_csv(weight_path)
    else:
        prices.write_parquet(price_path)
        weights.write_parquet(weight_path)
    loaded = load_prices(price_path)
    assert loaded.equals(prices)
    assert load_weights(str(weight_path), loaded).equals(weights)
    assert load_weights(weight_path, price_path).equals(weights)


def test_frames_pass_through_unchanged(prices, weights):
    assert load_prices(prices).equals(prices)
    assert load_weights(weights, prices).equals(weights)


def test_dates_datetimes_of_any_unit_and_iso_strings_become_microsecond_datetimes(prices):
    expected = prices.filter(pl.col("asset") == "A0001")
    as_date = expected.with_columns(pl.col("timestamp").cast(pl.Date))
    as_ns = expected.with_columns(pl.col("timestamp").cast(pl.Datetime("ns")))
    as_text = expected.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%d"))
    for frame in (as_date, as_ns, as_text):
        assert load_prices(frame).equals(expected)


@pytest.mark.parametrize("layout", ["%m/%d/%Y", "%d/%m/%Y", "%m-%d-%Y %H:%M", "%d.%m.%Y"])
def test_numeric_dates_are_read_in_the_one_order_that_reads_every_row(prices, tmp_path,
                                                                      layout):
    """A column with a day above 12 says whether it is month-first or day-first; polars'
    own inference would read 01/04/2010 day-first in a month-first file."""
    text = prices.with_columns(pl.col("timestamp").dt.strftime(layout))
    assert load_prices(write_csv(text, tmp_path)).equals(prices)


def test_numeric_dates_that_read_both_ways_are_refused(prices, tmp_path):
    early = prices.filter(pl.col("timestamp").dt.day() <= 12)
    text = early.with_columns(pl.col("timestamp").dt.strftime("%m/%d/%Y"))
    assert message(load_prices, write_csv(text, tmp_path)).startswith(
        "prices.csv: column 'timestamp': dates read both month-first and day-first (no day "
        "above 12 says which); write them as ISO dates (2020-01-31), found '01/04/2010' at "
        "rows 1, 2, 3, 4, 5")


def test_integer_prices_and_asset_codes_are_cast(prices):
    frame = pl.DataFrame({
        "timestamp": [dt.date(2024, 1, 2)] * 2, "asset": [7, 8],
        "open": [10, 20], "high": [11, 21], "low": [9, 19], "close": [10, 20],
        "volume": [100, 200],
    })
    loaded = load_prices(frame)
    assert loaded["asset"].to_list() == ["7", "8"]
    assert loaded.schema["close"] == pl.Float64


def test_a_column_of_only_empty_cells_is_empty_numbers(prices):
    """A frame built with None throughout a column has dtype Null: an order table's unused
    price columns load as empty, and prices with no closes at all name the column."""
    market = Market.from_bars(load_prices(prices))
    first = prices.row(0, named=True)
    orders = pl.DataFrame({"timestamp": [first["timestamp"]], "asset": [first["asset"]],
                           "type": ["market"], "quantity": [5], "limit_price": [None],
                           "stop_price": [None], "trail": [None]})
    loaded = load_orders(orders, market)
    assert loaded.schema["stop_price"] == pl.Float64
    assert loaded["stop_price"].null_count() == 1
    text = message(load_prices, prices.with_columns(close=pl.lit(None)))
    assert "column 'close'" in text and "rows 1, 2, 3" in text


def test_extra_columns_are_dropped_and_columns_put_in_order(prices):
    shuffled = prices.with_columns(note=pl.lit("x")).select(
        "note", "close", "asset", "volume", "timestamp", "low", "open", "high"
    )
    assert load_prices(shuffled).equals(prices)


def test_shorts_and_leverage_pass_when_allowed(prices):
    day = prices["timestamp"][0]
    frame = pl.DataFrame({"timestamp": [day, day], "asset": ["A0001", "A0002"],
                          "weight": [1.5, -0.7]})
    loaded = load_weights(frame, prices, allow_short=True, allow_leverage=True)
    assert loaded["weight"].to_list() == [1.5, -0.7]


def test_weights_summing_to_one_within_rounding_pass(prices):
    day = prices["timestamp"][0]
    frame = pl.DataFrame({"timestamp": [day] * 3, "asset": ["A0001", "A0002", "A0003"],
                          "weight": [0.1, 0.2, 0.7]})
    assert load_weights(frame, prices).height == 3


# Files


def test_an_unsupported_file_type_is_rejected(tmp_path):
    path = tmp_path / "prices.xlsx"
    path.write_text("x")
    assert "prices.xlsx: unsupported file type '.xlsx'" in message(read_table, path)


def test_a_missing_file_is_rejected(tmp_path):
    assert "nothere.csv: file not found" in message(load_prices, tmp_path / "nothere.csv")


def test_an_unreadable_parquet_file_is_rejected(tmp_path):
    path = tmp_path / "prices.parquet"
    path.write_bytes(b"not parquet at all")
    assert "prices.parquet: cannot read as Parquet" in message(load_prices, path)


def test_an_empty_file_is_rejected(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("")
    assert message(load_prices, path) == "prices.csv: file is empty"


def test_a_file_without_rows_is_rejected(prices, tmp_path):
    path = write_csv(prices.head(0), tmp_path)
    assert message(load_prices, path) == "prices.csv: no data rows"


def test_errors_name_the_frame_or_the_given_name(prices):
    bad = edit(prices, 3, "close", -1.0)
    assert message(load_prices, bad).startswith("prices: column 'close'")
    assert message(load_prices, bad, name="vendor feed").startswith("vendor feed: column 'close'")


# Columns


def test_a_missing_column_is_named_with_its_likely_misspelling(prices, tmp_path):
    path = write_csv(prices.rename({"close": "Closing"}), tmp_path)
    assert message(load_prices, path) == (
        "prices.csv: missing column 'close' (found 'Closing'?)")


def test_column_names_in_any_case_and_spacing_are_matched(prices, weights, tmp_path):
    path = write_csv(prices.rename({"open": " Open ", "close": "CLOSE", "volume": "Volume",
                                    "timestamp": "Timestamp"}), tmp_path)
    assert load_prices(path).equals(prices)
    named = weights.rename({"weight": "Weight", "asset": "Asset"})
    assert load_weights(write_csv(named, tmp_path, "w.csv"), prices).equals(weights)


def test_a_vendors_file_with_date_ticker_and_adj_close_loads(prices, tmp_path):
    """Date, Ticker, capitalised OHLCV and an Adj Close (dropped), as a download has them."""
    vendor = prices.select(
        pl.col("timestamp").dt.strftime("%Y-%m-%d").alias("Date"),
        pl.col("asset").alias("Ticker"), pl.col("open").alias("Open"),
        pl.col("high").alias("High"), pl.col("low").alias("Low"),
        pl.col("close").alias("Close"), (pl.col("close") * 0.9).alias("Adj Close"),
        pl.col("volume").cast(pl.Int64).alias("Volume"))
    assert load_prices(write_csv(vendor, tmp_path)).equals(prices)


def test_two_columns_that_could_be_one_name_are_refused_naming_both(prices):
    both = prices.rename({"timestamp": "Date"}).with_columns(Time=pl.lit("16:00"))
    assert message(load_prices, both) == (
        "prices: columns 'Date' and 'Time' could each be 'timestamp'; rename the one to use "
        "to 'timestamp'")
    assert load_prices(prices.with_columns(Close=pl.col("close") * 2)).equals(prices)


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_loads(prices, tmp_path, separator):
    path = tmp_path / "prices.csv"
    prices.write_csv(path, separator=separator)
    assert load_prices(path).equals(prices)


def test_blank_lines_at_the_end_of_a_csv_are_not_rows(prices, tmp_path):
    path = write_csv(prices, tmp_path)
    path.write_text(path.read_text() + "\n\n")
    assert load_prices(path).equals(prices)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:4], "", *lines[4:]]) + "\n")
    assert message(load_prices, path) == (
        "prices.csv: column 'timestamp': missing timestamp at rows 4")


def test_an_unnamed_pandas_index_is_named_as_the_likely_timestamp(prices):
    saved = prices.rename({"timestamp": "__index_level_0__"})
    assert message(load_prices, saved) == (
        "prices: missing column 'timestamp' (found '__index_level_0__', a pandas index saved "
        "without a name: name it timestamp before saving)")


def test_a_wide_table_is_refused_saying_so(prices, tmp_path):
    wide = prices.pivot(on="asset", index="timestamp", values="close")
    text = message(load_prices, write_csv(wide, tmp_path))
    assert text.startswith("prices.csv: missing columns 'asset', 'open', 'high', 'low', "
                           "'close', 'volume'; a table with one column per asset is not read")


def test_order_columns_in_another_case_and_spacing_are_matched(prices):
    market = Market.from_bars(load_prices(prices))
    first = prices.row(0, named=True)
    orders = pl.DataFrame({"Timestamp": [first["timestamp"]], "Symbol": [first["asset"]],
                           "Type": ["limit"], "Quantity": [5], "Limit Price": [1.0]})
    loaded = load_orders(orders, market)
    assert loaded["limit_price"].to_list() == [1.0]
    assert loaded["asset"].to_list() == [first["asset"]]


def test_every_missing_column_is_named(prices, tmp_path):
    path = write_csv(prices.drop("high", "volume"), tmp_path)
    assert message(load_prices, path) == "prices.csv: missing columns 'high', 'volume'"


def test_a_misspelt_weight_column_is_suggested(weights, prices, tmp_path):
    path = write_csv(weights.rename({"weight": "weights"}), tmp_path, "w.csv")
    assert message(load_weights, path, prices) == (
        "w.csv: missing column 'weight' (found 'weights'?)"
    )


# Values


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
@pytest.mark.parametrize(("value", "shown"), [(NAN, "NaN"), (None, "null"), (0.0, "0.0"),
                                              (-2.5, "-2.5")])
def test_bad_prices_are_rejected_naming_the_rows(prices, tmp_path, column, value, shown):
    bad = edit(edit(prices, 4, column, value), 9, column, value)
    text = message(load_prices, write_csv(bad, tmp_path))
    assert text == (f"prices.csv: column '{column}': price must be a positive number, "
                    f"found {shown} at rows 4, 9")


@pytest.mark.parametrize(("value", "shown"), [(-1.0, "-1.0"), (NAN, "NaN")])
def test_negative_or_nan_volume_is_rejected(prices, tmp_path, value, shown):
    text = message(load_prices, write_csv(edit(prices, 12, "volume", value), tmp_path))
    assert text == (f"prices.csv: column 'volume': volume must be a non-negative number, "
                    f"found {shown} at rows 12")


def test_zero_volume_is_fine(prices):
    assert load_prices(edit(prices, 2, "volume", 0.0))["volume"][1] == 0.0


def test_text_that_is_not_a_number_is_rejected(prices, tmp_path):
    path = write_csv(edit(prices.with_columns(pl.col("open").cast(pl.String)), 6, "open", "n/a"),
                     tmp_path)
    assert message(load_prices, path) == (
        "prices.csv: column 'open': not a number, found 'n/a' at rows 6"
    )


def test_text_that_is_not_a_timestamp_is_rejected(prices, tmp_path):
    text_times = prices.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%d"))
    path = write_csv(edit(text_times, 7, "timestamp", "yesterday"), tmp_path)
    assert message(load_prices, path) == (
        "prices.csv: column 'timestamp': not a date or ISO timestamp, found 'yesterday' at rows 7"
    )


def test_a_missing_timestamp_or_asset_is_rejected(prices, tmp_path):
    no_time = write_csv(edit(prices, 5, "timestamp", None), tmp_path, "a.csv")
    assert message(load_prices, no_time) == "a.csv: column 'timestamp': missing timestamp at rows 5"
    no_asset = write_csv(edit(prices, 8, "asset", None), tmp_path, "b.csv")
    assert message(load_prices, no_asset) == "b.csv: column 'asset': missing asset name at rows 8"


def test_zoned_timestamps_become_naive_utc(prices):
    aware = prices.with_columns(pl.col("timestamp").dt.replace_time_zone("America/New_York"))
    loaded = load_prices(aware)
    assert loaded["timestamp"][0] == dt.datetime(2010, 1, 4, 5, 0)  # midnight EST = 05:00 UTC
    assert loaded.drop("timestamp").equals(prices.drop("timestamp"))
    assert (loaded["timestamp"] - prices["timestamp"]).unique().to_list() == [
        dt.timedelta(hours=5)]


def test_iso_text_with_offsets_becomes_naive_utc(prices, tmp_path):
    text = prices.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    loaded = load_prices(write_csv(text, tmp_path))
    assert loaded["timestamp"][0] == dt.datetime(2010, 1, 3, 22, 0)
    utc = prices.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert load_prices(utc).equals(prices)


def test_dated_weights_on_zoned_daily_prices_are_refused_saying_when_the_bars_are(
        prices, weights):
    """New York midnights are 05:00 UTC in winter: weights dated by day name no bar, and
    the message says at what time the bars are."""
    zoned = prices.with_columns(pl.col("timestamp").dt.replace_time_zone("America/New_York"))
    text = message(load_weights, weights, load_prices(zoned))
    assert text.startswith("weights: column 'timestamp': timestamp is not a bar of the "
                           "prices (the prices' bars are at 05:00; zoned times are read in "
                           "UTC), found ")


def test_text_mixing_rows_with_and_without_an_offset_is_rejected(prices, tmp_path):
    text = prices.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    path = write_csv(edit(text, 6, "timestamp", "2010-01-04"), tmp_path)
    assert message(load_prices, path) == (
        "prices.csv: column 'timestamp': mixes timestamps with and without a UTC offset "
        "(give every row an offset, or none), found '2010-01-04' at rows 6")


def test_numeric_timestamps_are_rejected(prices):
    numbers = prices.with_columns(pl.col("timestamp").dt.epoch("d"))
    assert "prices: column 'timestamp': expected dates or ISO timestamps" in message(
        load_prices, numbers
    )


def test_a_close_above_the_high_is_rejected_naming_the_bar(prices, tmp_path):
    row = prices.row(4, named=True)
    bad = edit(prices, 5, "close", row["high"] * 1.5)
    text = message(load_prices, write_csv(bad, tmp_path))
    assert text.startswith("prices.csv: column 'high': high below open or close (inconsistent "
                           "bar; repair_ohlc widens high and low to cover them), found open ")
    assert text.endswith(" at rows 5")


def test_a_low_above_the_high_is_rejected(prices):
    row = prices.row(2, named=True)
    swapped = edit(edit(prices, 3, "low", row["high"]), 3, "high", row["low"])
    assert message(load_prices, swapped).startswith("prices: column 'high': high below open")


def test_an_open_below_the_low_is_rejected(prices):
    row = prices.row(7, named=True)
    text = message(load_prices, edit(prices, 8, "open", row["low"] * 0.9))
    assert text.startswith("prices: column 'low': low above open or close")
    assert text.endswith("at rows 8")


def test_repair_ohlc_widens_high_and_low_to_cover_open_and_close(prices):
    row = prices.row(4, named=True)
    bad = edit(edit(prices, 5, "close", row["high"] * 1.5), 6, "low", 1e6)
    repaired = load_prices(bad, repair_ohlc=True)
    assert repaired["high"][4] == row["high"] * 1.5
    assert repaired["low"][5] == min(prices.row(5, named=True)[c]
                                     for c in ("open", "high", "close"))
    assert Bars.validate(repaired).height == prices.height
    untouched = pl.int_range(pl.len()).is_in([4, 5]).not_()
    assert repaired.filter(untouched).equals(prices.filter(untouched))


def test_the_bars_model_refuses_inconsistent_bars(prices):
    with pytest.raises(pandera.errors.SchemaError, match="consistent_ohlc"):
        Bars.validate(edit(prices, 3, "high", prices["low"][2] * 0.5))


# Keys and order


def test_duplicate_rows_name_both_rows(prices, tmp_path):
    doubled = pl.concat([prices.head(3), prices.slice(2, 1), prices.slice(3)])
    assert message(load_prices, write_csv(doubled, tmp_path)) == (
        "prices.csv: duplicate (timestamp, asset) rows for (2010-01-04, 'A0003') at rows 3, 4"
    )


def test_duplicate_rows_far_apart_are_found_in_unsorted_input(prices, tmp_path):
    doubled = pl.concat([prices.head(20), prices.slice(1, 1)])
    assert message(load_prices, write_csv(doubled, tmp_path)) == (
        "prices.csv: duplicate (timestamp, asset) rows for (2010-01-04, 'A0002') at rows 2, 21"
    )


@pytest.mark.parametrize("order", ["asset", "reversed", "shuffled"])
def test_rows_in_any_order_are_sorted_by_timestamp_then_asset(prices, tmp_path, order):
    reordered = {"asset": prices.sort("asset", "timestamp"), "reversed": prices.reverse(),
                 "shuffled": prices.sample(fraction=1.0, shuffle=True, seed=4)}[order]
    assert not reordered.equals(prices)
    loaded = load_prices(write_csv(reordered, tmp_path))
    assert loaded.equals(load_prices(prices))


def test_a_bad_value_in_unsorted_rows_is_named_at_its_row_in_the_file(prices, tmp_path):
    grouped = edit(prices.sort("asset", "timestamp"), 7, "close", -1.0)
    assert message(load_prices, write_csv(grouped, tmp_path)) == (
        "prices.csv: column 'close': price must be a positive number, found -1.0 at rows 7"
    )


def test_only_the_first_five_rows_are_listed_with_the_total(prices):
    bad = prices.with_columns(pl.lit(-1.0).alias("low"))
    assert message(load_prices, bad).endswith(
        f"at rows 1, 2, 3, 4, 5 ({prices.height} rows in all)"
    )


# Weights


def test_unknown_assets_are_rejected(weights, prices, tmp_path):
    path = write_csv(edit(weights, 2, "asset", "ZZZ"), tmp_path, "w.csv")
    assert message(load_weights, path, prices) == (
        "w.csv: column 'asset': asset not in the prices, found 'ZZZ' at rows 2"
    )


def test_timestamps_that_are_not_bars_are_rejected(weights, prices, tmp_path):
    path = write_csv(edit(weights, 4, "timestamp", dt.datetime(2010, 1, 9)), tmp_path, "w.csv")
    text = message(load_weights, path, prices)
    assert text.startswith("w.csv: column 'timestamp': timestamp is not a bar of the prices, "
                           "found 2010-01-09")
    assert text.endswith("at rows 4")


@pytest.mark.parametrize(("value", "shown"), [(NAN, "NaN"), (None, "null"),
                                              (float("inf"), "inf")])
def test_weights_that_are_not_finite_are_rejected(weights, prices, tmp_path, value, shown):
    path = write_csv(edit(weights, 5, "weight", value), tmp_path, "w.csv")
    assert message(load_weights, path, prices) == (
        f"w.csv: column 'weight': weight must be a finite number, found {shown} at rows 5"
    )


def test_duplicate_weights_are_rejected(weights, prices):
    doubled = pl.concat([weights.head(1), weights])
    assert message(load_weights, doubled, prices).endswith(
        f"duplicate (timestamp, asset) rows for ({weights['timestamp'][0].date()}, "
        f"'{weights['asset'][0]}') at rows 1, 2"
    )


def test_unsorted_weights_and_signals_are_sorted(weights, prices):
    assert load_weights(weights.reverse(), prices).equals(load_weights(weights, prices))
    scores = weights.rename({"weight": "score"})
    assert load_signals(scores.reverse(), prices).equals(load_signals(scores, prices))


def test_negative_weights_need_allow_short(weights, prices):
    short = edit(weights, 3, "weight", -0.1)
    assert message(load_weights, short, prices) == (
        "weights: column 'weight': negative weight (shorts need allow_short), found -0.1 "
        "at rows 3"
    )
    assert load_weights(short, prices, allow_short=True)["weight"][2] == -0.1


def test_weights_above_one_need_allow_leverage_and_name_the_timestamp(weights, prices):
    heavy = edit(weights, 5, "weight", 0.9)
    day = weights["timestamp"][4]
    rows = ", ".join(str(i + 1) for i, t in enumerate(weights["timestamp"]) if t == day)
    assert message(load_weights, heavy, prices) == (
        f"weights: column 'weight': weights at {day.date()} sum to 1.566666667, above 1 "
        f"(leverage needs allow_leverage) at rows {rows}"
    )
    assert load_weights(heavy, prices, allow_leverage=True).height == weights.height


def test_with_shorts_the_gross_sum_is_limited(prices):
    day = prices["timestamp"].unique().sort()[1]
    frame = pl.DataFrame({"timestamp": [day, day], "asset": ["A0001", "A0002"],
                          "weight": [0.8, -0.5]})
    assert "gross weights at 2010-01-05 sum to 1.3" in message(
        load_weights, frame, prices, allow_short=True
    )


def test_empty_weights_are_rejected(weights, prices):
    assert message(load_weights, weights.head(0), prices) == "weights: no data rows"


def test_weights_accept_date_timestamps_against_datetime_prices(weights, prices):
    as_dates = weights.with_columns(pl.col("timestamp").cast(pl.Date))
    assert load_weights(as_dates, prices).equals(weights)


# The pandera models behind the final gate


def test_the_bars_model_accepts_loaded_prices_and_rejects_extras_and_bad_values(prices):
    assert Bars.validate(load_prices(prices)).equals(prices)
    with pytest.raises(pandera.errors.SchemaError):
        Bars.validate(prices.with_columns(note=pl.lit(1)))
    with pytest.raises(pandera.errors.SchemaError):
        Bars.validate(edit(prices, 3, "open", 0.0))
    with pytest.raises(pandera.errors.SchemaError):
        Bars.validate(pl.concat([prices.head(1), prices]))


def test_the_weights_model_rejects_infinite_weights_and_duplicates(weights):
    assert Weights.validate(weights).equals(weights)
    with pytest.raises(pandera.errors.SchemaError):
        Weights.validate(edit(weights, 2, "weight", float("inf")))
    with pytest.raises(pandera.errors.SchemaError):
        Weights.validate(pl.concat([weights.head(1), weights]))


def test_signals_naming_an_unknown_asset_are_refused(tmp_path):
    from engine.data.loading import load_signals
    from engine.data.synthetic import generate_market

    prices = generate_market(n_assets=3, n_days=5, seed=1)
    good = prices.select("timestamp", "asset").with_columns(score=pl.lit(0.5))
    assert load_signals(good, prices).height == prices.height
    path = tmp_path / "signals.csv"
    good.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("NOPE")).otherwise(pl.col("asset"))
        .alias("asset")
    ).write_csv(path)
    with pytest.raises(InputError, match=r"signals.csv: column 'asset': asset not in the prices"
                       r", found 'NOPE' at rows 3"):
        load_signals(path, prices)


@pytest.mark.parametrize("bad_row", [4, 5, 6, 9])
def test_checks_read_in_slices_find_the_first_bad_row_across_slice_edges(
        prices, monkeypatch, bad_row):
    """The check pass reads a table a slice at a time; a row that sorts before the row
    above it is found when the two rows sit on either side of a slice edge."""
    monkeypatch.setattr(loading, "CHECK_SLICE", 4)
    market = Market.from_bars(load_prices(prices))
    stamps = prices["timestamp"].unique().sort().head(10).to_list()
    stamps[bad_row - 1], stamps[bad_row - 2] = stamps[bad_row - 2], stamps[bad_row - 1]
    orders = pl.DataFrame({"timestamp": stamps, "asset": ["A0001"] * 10,
                           "type": [" market "] * 10, "quantity": [1.0] * 10})
    assert message(load_orders, orders, market) == (
        "orders: column 'timestamp': row sorts before the row above it (sort orders by "
        f"timestamp) at rows {bad_row}")
    fine = orders.sort("timestamp")
    assert load_orders(fine, market)["type"].to_list() == ["market"] * 10
    bad_weight = load_weights(weights_on(prices), prices).with_columns(
        weight=pl.when(pl.int_range(pl.len()) == bad_row - 1).then(float("nan"))
        .otherwise(pl.col("weight")))
    assert message(load_weights, bad_weight, prices).endswith(f"at rows {bad_row}")


def weights_on(prices: pl.DataFrame) -> pl.DataFrame:
    """A small weight on every bar of the first two assets."""
    return prices.filter(pl.col("asset").is_in(["A0001", "A0002"])).select(
        "timestamp", "asset", weight=pl.lit(0.1))
