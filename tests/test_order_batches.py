"""An order table read a batch of rows at a time (`OrderTable.read`, what `run_orders`
does) places exactly the orders of the table loaded whole, and a bad table gets the same
one-line error; batches are made a few rows long here so that every check spans them."""

from __future__ import annotations

import datetime as dt
import mmap

import numpy as np
import polars as pl
import pytest

from engine import BacktestConfig, InputError
from engine.backtest import market_of, run_orders
from engine.core import loop
from engine.core.kernels.loop import ROW_STEP
from engine.core.loop import simulate
from engine.core.strategy import OrderTable, _releasable, release_rows
from engine.data import loading
from engine.data.loading import load_orders, load_orders_into
from engine.results.tables import TABLES, BacktestResult

T0 = dt.datetime(2024, 1, 1)
N_BARS, ASSETS = 12, ("A0", "A1", "A2")


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    monkeypatch.setattr(loading, "ORDER_BATCH", 4)


@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(3)
    rows = []
    for t in range(N_BARS):
        for a, asset in enumerate(ASSETS):
            open_, close = 100 + 5 * a + rng.normal(size=2)
            rows.append((T0 + dt.timedelta(days=t), asset, open_, max(open_, close) + 3,
                         min(open_, close) - 3, close, 1e6))
    return market_of(pl.DataFrame(rows, orient="row", schema=[
        "timestamp", "asset", "open", "high", "low", "close", "volume"]))


def orders(n: int = 23, **extra) -> pl.DataFrame:
    """`n` rows of every order type on random assets, sorted by timestamp, with OCO labels
    that recur across batches, ids, and expiries in bars and as timestamps."""
    rng = np.random.default_rng(n)
    kinds = np.array(["market", "limit", "stop", "stop_limit", "trailing_stop"])
    kind = kinds[rng.integers(0, len(kinds), n)]
    bars = np.sort(rng.integers(0, N_BARS - 2, n))
    resting = kind != "market"
    until = [None if not r else (str(int(rng.integers(1, 4))) if rng.random() < 0.5 else
                                 (T0 + dt.timedelta(days=int(b) + 2)).isoformat())
             for r, b in zip(resting, bars, strict=True)]
    frame = pl.DataFrame({
        "timestamp": [T0 + dt.timedelta(days=int(b)) for b in bars],
        "asset": rng.choice(np.array(ASSETS), n),
        "type": kind,
        "quantity": rng.choice(np.array([-5.0, 3.0, 10.0]), n),
        "limit_price": np.where(np.isin(kind, ["limit", "stop_limit"]),
                                rng.uniform(95, 112, n), np.nan),
        "stop_price": np.where(np.isin(kind, ["stop", "stop_limit"]),
                               rng.uniform(95, 112, n), np.nan),
        "trail": np.where(kind == "trailing_stop", 0.03, np.nan),
        "valid_until": until,
        "group": [rng.choice(["g1", "g2", None, None]) if r else None for r in resting],
        "id": [f"o{i}" if rng.random() < 0.5 else None for i in range(n)],
    }).with_columns(pl.col("limit_price", "stop_price", "trail").fill_nan(None))
    return frame.with_columns(**extra) if extra else frame


def tables(result: BacktestResult) -> dict[str, pl.DataFrame]:
    return {name: getattr(result, name) for name in TABLES}


def whole(market, source) -> dict[str, pl.DataFrame]:
    """The tables of the table loaded whole (`load_orders`) and placed by `OrderTable`."""
    table = OrderTable(load_orders(source, market))
    return tables(BacktestResult(simulate(market, table, BacktestConfig())))


def batches_of(market, source) -> list[tuple[int, int, int]]:
    """(first row, rows, table rows) of each batch `load_orders_into` hands over."""
    seen = []
    load_orders_into(source, market, lambda b, first, n: seen.append((first, b.height, n)))
    return seen


@pytest.mark.parametrize("kind", ["frame", "parquet", "csv"])
def test_a_table_read_in_batches_places_the_orders_of_the_whole_table(market, kind,
                                                                       tmp_path):
    source = orders()
    if kind != "frame":
        path = tmp_path / f"orders.{kind}"
        getattr(source, f"write_{kind}")(path)
        source = path
    assert len(batches_of(market, source)) > 3
    batched = tables(run_orders(market, source))
    for name, frame in whole(market, source).items():
        assert batched[name].equals(frame), name
    assert batched["orders"].height == 23 and batched["fills"].height > 0
    assert batched["orders"]["group"].drop_nulls().n_unique() > 1


def test_a_bracket_table_is_read_whole_and_places_the_same_orders(market):
    source = orders()
    rows = source.rows(named=True)
    entry = next(i for i, r in enumerate(rows[:8]) if r["type"] in ("market", "limit")
                 and r["id"] is not None)
    child = next(i for i in range(12, 23) if rows[i]["asset"] == rows[entry]["asset"]
                 and rows[i]["type"] != "market")
    source = source.with_columns(
        parent=pl.Series([rows[entry]["id"] if i == child else None for i in range(23)]),
        group=pl.when(pl.int_range(23) == child).then(None).otherwise(pl.col("group")))
    assert batches_of(market, source)[-1] == (0, 23, 23)
    batched = tables(run_orders(market, source))
    for name, frame in whole(market, source).items():
        assert batched[name].equals(frame), name


@pytest.mark.parametrize("change", ["unsorted", "duplicate_id", "bad_type", "zoned"])
def test_a_bad_table_read_in_batches_gets_the_whole_table_s_error(market, change):
    source = orders()
    stamps, ids = source["timestamp"].to_list(), source["id"].to_list()
    if change == "unsorted":  # each batch in order, the fifth row before the fourth
        stamps[4] = stamps[3] - dt.timedelta(days=1)
        source = source.with_columns(timestamp=pl.Series(stamps))
    elif change == "duplicate_id":  # the same id in two batches
        ids[2] = ids[17] = "twice"
        source = source.with_columns(id=pl.Series(ids))
    elif change == "bad_type":  # only in the last batch
        source = source.with_columns(type=pl.Series([*source["type"].to_list()[:-1], "lmt"]))
    else:  # the first batch's timestamps with a UTC offset, the others without
        text = [t.isoformat() + ("+00:00" if i < 4 else "") for i, t in enumerate(stamps)]
        source = source.with_columns(timestamp=pl.Series(text))
    with pytest.raises(InputError) as expected:
        load_orders(source, market)
    with pytest.raises(InputError) as raised:
        run_orders(market, source)
    assert str(raised.value) == str(expected.value)
    assert "\n" not in str(raised.value)


def test_released_rows_read_as_zeros_and_the_rest_is_kept():
    rows = _releasable((5000, 6), np.int32)
    rows[:] = 7
    plain = np.full((5000, 6), 7, dtype=np.int32)
    release_rows(rows, 2000)
    release_rows(plain, 2000)
    freed = 2000 * 24 // mmap.PAGESIZE * mmap.PAGESIZE // 4  # values in whole pages only
    values = rows.reshape(-1)
    assert freed > 6000 and not values[:freed].any()
    assert (values[freed:] == 7).all() and (plain == 7).all()


@pytest.mark.slow
def test_a_run_frees_the_rows_it_placed_and_places_the_same_orders(market, monkeypatch):
    n = ROW_STEP + 50_000
    rng = np.random.default_rng(0)
    bars = np.sort(rng.integers(0, N_BARS - 1, n))
    kind = np.where(np.arange(n) % 1000 == 0, "limit", "market")
    source = pl.DataFrame({
        "timestamp": [T0 + dt.timedelta(days=int(b)) for b in range(N_BARS)],
    })["timestamp"].gather(bars).to_frame().with_columns(
        asset=pl.Series(rng.choice(np.array(ASSETS), n)), type=pl.Series(kind),
        quantity=pl.Series(rng.choice(np.array([-1.0, 1.0]), n)),
        limit_price=pl.Series(np.where(kind == "limit", 101.0, np.nan)).fill_nan(None))
    monkeypatch.setattr(loading, "ORDER_BATCH", 1 << 17)
    freed = []
    monkeypatch.setattr(loop, "release_rows", lambda rows, before: (
        freed.append(before), release_rows(rows, before)))
    batched = tables(run_orders(market, source))
    assert max(freed) >= ROW_STEP
    monkeypatch.setattr(loop, "release_rows", lambda rows, before: None)
    for name, frame in tables(run_orders(market, source)).items():
        assert batched[name].equals(frame), name


def saved_orders(result: BacktestResult, out, release: bool = False) -> pl.DataFrame:
    result.save(out, release=release)
    return pl.read_parquet(out / "orders.parquet")


def test_the_orders_table_written_in_batches_is_the_table_held_whole(market, tmp_path,
                                                                      monkeypatch):
    import pyarrow.parquet as pq

    from engine.results import tables as result_tables
    from engine.results.artifacts import write_parquet

    monkeypatch.setattr(result_tables, "ORDER_BATCH", 4)
    monkeypatch.setattr(result_tables, "WHOLE_ORDERS", 0)
    config = BacktestConfig(stop_loss=0.01)
    table = orders()
    first = table["type"].to_list().index("market")
    table = pl.concat([table[: first + 1], table[first: first + 1].with_columns(id=None),
                       table[first + 1:]])  # two market orders on one asset and bar merge
    streamed = run_orders(market, table, config)
    held = run_orders(market, table, config)
    frame = held.orders
    assert {"merged", "filled"} <= set(frame["status"]) and (frame["origin"] != "user").any()
    saved = saved_orders(streamed, tmp_path / "streamed", release=True)
    assert "orders" not in streamed.__dict__  # never built whole
    with pytest.raises(RuntimeError, match="released"):
        streamed.orders  # noqa: B018 (its records were given back)
    groups = pq.ParquetFile(tmp_path / "streamed" / "orders.parquet").num_row_groups
    assert frame.height > 24 and groups == -(-frame.height // 4)
    write_parquet(frame, tmp_path / "whole.parquet")
    assert saved.equals(pl.read_parquet(tmp_path / "whole.parquet"))
    assert saved.equals(frame) and saved.schema == frame.schema
    assert (pq.read_schema(tmp_path / "streamed" / "orders.parquet")
            == pq.read_schema(tmp_path / "whole.parquet"))
    assert saved_orders(held, tmp_path / "held").equals(frame)
    monkeypatch.setattr(result_tables, "WHOLE_ORDERS", frame.height)
    single = run_orders(market, table, config)
    assert saved_orders(single, tmp_path / "single", release=True).equals(frame)
    assert "orders" not in single.__dict__
    assert pq.ParquetFile(tmp_path / "single" / "orders.parquet").num_row_groups == 1
    assert ((tmp_path / "streamed" / "metrics.json").read_text()
            == (tmp_path / "held" / "metrics.json").read_text())
    from engine.results.metrics import compute_metrics, status_counts

    counted = compute_metrics(held.equity, held.fills, status_counts(frame["status"]),
                              held.trades, initial_cash=config.initial_cash)
    assert streamed.metrics == counted and counted["n_orders"] == frame.height


def test_an_orders_batch_that_breaks_its_schema_leaves_the_output_untouched(
        market, tmp_path, monkeypatch):
    import pandera.errors

    from engine.results import tables as result_tables

    monkeypatch.setattr(result_tables, "ORDER_BATCH", 4)
    monkeypatch.setattr(result_tables, "WHOLE_ORDERS", 0)
    result = run_orders(market, orders())
    build = BacktestResult._orders_of

    def broken(self, ids):
        batch = build(self, ids)
        return batch.with_columns(status=pl.lit("lost")) if ids.start == 12 else batch

    monkeypatch.setattr(BacktestResult, "_orders_of", broken)
    out = tmp_path / "out"
    with pytest.raises(pandera.errors.SchemaErrors, match="lost"):
        result.save(out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
