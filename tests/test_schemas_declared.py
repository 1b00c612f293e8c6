"""The models' declarations read without pandera (`schemas.declared`) are pandera's own, and
the polars check of them accepts exactly the frames pandera accepts; what it does not
accept is left to pandera, which names the failure."""

from __future__ import annotations

import importlib
import inspect

import pandera.errors
import pandera.polars as pa
import polars as pl
import pytest

from engine import BacktestConfig, market_of, run_backtest, run_orders
from engine.data.synthetic import generate_market, momentum_scores
from engine.research.weights import top_k_weights
from schemas.declared import CHECKS, Unreadable, conforms, declared, layout

MODULES = ("schemas.backtest", "schemas.market", "schemas.signals", "schemas.gap",
           "schemas.reports", "schemas.sweep")
CUSTOM_CHECKS = {("schemas.market", "Bars"), ("schemas.market", "Weights")}
PANDERA_CHECKS = {"eq": "equal_to", "ne": "not_equal_to", "gt": "greater_than",
                  "ge": "greater_than_or_equal_to", "lt": "less_than",
                  "le": "less_than_or_equal_to", "isin": "isin", "notin": "notin"}
TABLES = ("fills", "orders", "positions", "equity", "trades")


def models() -> list[tuple[str, str]]:
    """Every pandera model defined in the schema modules, as (module, name)."""
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        found += [(name, model) for model, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, pa.DataFrameModel) and cls.__module__ == name]
    return found


def pandera_view(module: str, model: str) -> dict:
    """What pandera compiles the model to: columns with dtype, flags and checks."""
    schema = getattr(importlib.import_module(module), model).to_schema()
    return {"strict": schema.strict, "ordered": schema.ordered,
            "unique": tuple(schema.unique or ()),
            "columns": [(name, str(column.dtype.type), column.required, column.nullable,
                         column.unique, [(check.name, list(check.statistics.values()))
                                         for check in column.checks])
                        for name, column in schema.columns.items()]}


def declared_view(module: str, model: str) -> dict:
    read = declared(module, model)
    return {"strict": read.strict, "ordered": read.ordered, "unique": read.unique,
            "columns": [(column.name, str(column.dtype), column.required, column.nullable,
                         column.unique, [(PANDERA_CHECKS[key], [value])
                                         for key, value in column.checks])
                        for column in read.columns]}


@pytest.mark.parametrize(("module", "model"), models(), ids=lambda x: x)
def test_each_model_reads_as_pandera_compiles_it_or_is_left_to_pandera(module, model):
    if (module, model) in CUSTOM_CHECKS:
        with pytest.raises(Unreadable, match="custom check"):
            declared(module, model)
        assert not conforms(pl.DataFrame(), module, model)
        return
    assert declared_view(module, model) == pandera_view(module, model)


@pytest.mark.parametrize(("module", "model"), models(), ids=lambda x: x)
def test_each_models_layout_is_its_pandera_columns_in_order(module, model):
    columns = pandera_view(module, model)["columns"]
    assert [(name, str(dtype)) for name, dtype in layout(module, model).items()] == [
        (name, dtype) for name, dtype, *_ in columns]


def test_the_loaders_outputs_are_in_their_models_layout():
    from engine.data.loading import load_orders, load_prices, load_signals, load_weights

    prices = generate_market(n_assets=4, n_days=30, seed=2)
    market = market_of(prices)
    scores = momentum_scores(prices)
    day = prices["timestamp"].unique().sort()[3]
    orders = pl.DataFrame({"timestamp": [day], "asset": ["A0001"], "type": ["market"],
                           "quantity": [1.0]})
    for frame, module, model in (
            (load_prices(prices), "schemas.market", "Bars"),
            (load_weights(top_k_weights(scores, k=2, every=5), market), "schemas.market",
             "Weights"),
            (load_signals(scores, market), "schemas.signals", "Scores"),
            (load_orders(orders, market), "schemas.market", "OrderRows")):
        assert frame.schema == layout(module, model), model


def test_every_check_option_read_has_its_pandera_builtin():
    assert set(CHECKS) == set(PANDERA_CHECKS)


@pytest.fixture(scope="module")
def results():
    """A weights run with every risk rule and an order-table run: every optional column."""
    prices = generate_market(n_assets=8, n_days=80, seed=3)
    market = market_of(prices)
    weights = top_k_weights(momentum_scores(prices), k=3, every=5)
    rules = BacktestConfig(fees=0.001, stop_loss=0.02, take_profit=0.03, trailing_stop=0.04,
                           max_bars=6)
    days = prices["timestamp"].unique().sort()
    close = float(prices.filter(pl.col("asset") == "A0001")["close"][3])
    orders = pl.DataFrame({
        "timestamp": [days[3]] * 4, "asset": ["A0001"] * 4,
        "type": ["market", "limit", "stop", "trailing_stop"],
        "quantity": [10.0, 5.0, -3.0, -4.0],
        "limit_price": [None, close * 0.99, None, None],
        "stop_price": [None, None, close * 0.95, None],
        "trail": [None, None, None, 0.03]})
    return [run_backtest(market, weights, rules), run_orders(market, orders, BacktestConfig())]


def passes_pandera(frame: pl.DataFrame, model: str) -> bool:
    try:
        getattr(importlib.import_module("schemas.backtest"), model).validate(frame, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError):
        return False
    return True


OTHER_DTYPE = {pl.Float64: pl.Float32, pl.Int64: pl.Int32, pl.String: pl.Categorical}


def variants(frame: pl.DataFrame, model: str) -> dict[str, pl.DataFrame]:
    """The frame, and the frame broken in every way pandera's view of the model suggests."""
    schema = getattr(importlib.import_module("schemas.backtest"), model).to_schema()
    cases = {"as built": frame, "empty": frame.head(0),
             "extra column": frame.with_columns(pl.lit(1).alias("extra")),
             "columns reversed": frame.select(frame.columns[::-1])}
    first = pl.int_range(pl.len()) == 0
    for name, column in schema.columns.items():
        if name not in frame.columns:
            continue
        col, dtype = pl.col(name), frame.schema[name]

        def first_row(value, col=col, name=name):
            return frame.with_columns(pl.when(first).then(value).otherwise(col).alias(name))

        cases[f"{name} dropped"] = frame.drop(name)
        cases[f"{name} null"] = first_row(pl.lit(None, dtype))
        if dtype.is_float():
            for value in (float("nan"), float("inf"), float("-inf")):
                cases[f"{name} {value}"] = first_row(pl.lit(value, dtype))
        for check in column.checks:
            for value in check.statistics.values():
                if isinstance(value, list):
                    cases[f"{name} not in {check.name}"] = first_row(pl.lit("unheard of"))
                else:
                    for shift in (0, -1, 1):
                        cases[f"{name} {check.name} {value}{shift:+}"] = first_row(
                            pl.lit(value + shift, dtype))
        if frame.height > 1:
            cases[f"{name} repeated"] = frame.with_columns(
                pl.when(pl.int_range(pl.len()) == 1).then(col.first()).otherwise(col)
                .alias(name))
        if dtype == pl.Datetime("us"):
            cases[f"{name} ns"] = frame.with_columns(col.cast(pl.Datetime("ns")))
            cases[f"{name} zoned"] = frame.with_columns(col.dt.replace_time_zone("UTC"))
        elif type(dtype) in OTHER_DTYPE:
            cases[f"{name} {OTHER_DTYPE[type(dtype)]}"] = frame.with_columns(
                col.cast(OTHER_DTYPE[type(dtype)]))
    return cases


@pytest.mark.parametrize("table", TABLES)
def test_the_polars_check_accepts_exactly_what_pandera_accepts(results, table):
    model = table.capitalize()
    frames = [getattr(result, table) for result in results]
    assert all(conforms(frame, "schemas.backtest", model) for frame in frames)
    frame = max(frames, key=lambda frame: (frame.width, frame.height))  # optional columns
    assert frame.height > 1
    verdicts = {"pass": 0, "fail": 0}
    for case, broken in variants(frame, model).items():
        expected = passes_pandera(broken, model)
        assert conforms(broken, "schemas.backtest", model) == expected, (table, case)
        verdicts["pass" if expected else "fail"] += 1
    assert verdicts["fail"] > 10 and verdicts["pass"] >= 2


def test_save_reports_a_broken_table_through_pandera_and_writes_nothing(results, tmp_path):
    result = results[0]
    fills = result.fills
    result.__dict__["fills"] = fills.with_columns(pl.lit(-1.0).alias("price"))
    try:
        with pytest.raises(pandera.errors.SchemaErrors, match="greater_than"):
            result.save(tmp_path / "out")
    finally:
        result.__dict__["fills"] = fills
    assert not (tmp_path / "out").exists()
