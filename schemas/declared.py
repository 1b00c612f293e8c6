"""A pandera model's declarations read without importing pandera, and checked with polars.

Importing pandera imports pandas (about 0.75 s of CPU) even for its polars models. A model
module's source is run here with small recorders standing in for `pandera.polars`
(`DataFrameModel`, `Field`, the check decorators) and for `polars_engine.DateTime`, so the
class bodies (annotations, `Field(...)` options, `Config`) are read from the one
definition in `schemas/`, not copied. `conforms(frame, module, model)` then evaluates the
declared rules with the same polars expressions pandera's polars backend uses, in one
query.

The result only ever certifies a pass: a frame it does not pass, or a model using anything
outside the subset read here (custom checks, string checks, coercion, `strict="filter"`,
...), is left to pandera, which reports the failure as before. tests/test_schemas_declared.py
checks that every model read here matches pandera's own compiled schema and that both
accept and reject the same frames.
"""

from __future__ import annotations

import builtins
import functools
import importlib.util
import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

CHECKS = {  # Field option -> the builtin check's polars expression (pandera.backends.polars)
    "eq": lambda col, value: col.eq(value),
    "ne": lambda col, value: col.ne(value),
    "gt": lambda col, value: col.gt(value),
    "ge": lambda col, value: col.ge(value),
    "lt": lambda col, value: col.lt(value),
    "le": lambda col, value: col.le(value),
    "isin": lambda col, values: col.is_in(list(values)),
    "notin": lambda col, values: col.is_in(list(values)).not_(),
}
PLAIN_OPTIONS = {"nullable", "unique", "alias", "description", "title", "metadata"}
PLAIN_CONFIG = {"strict", "ordered", "unique", "name", "title", "description"}


class Unreadable(Exception):
    """The model uses something this reader does not evaluate: pandera must check it."""


@dataclass(frozen=True)
class Column:
    """One declared column: its name in the frame, dtype and rules."""

    name: str
    dtype: pl.DataType
    required: bool
    nullable: bool
    unique: bool
    checks: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Model:
    """A model's columns in declared order and its frame-level options."""

    columns: tuple[Column, ...]
    strict: bool
    ordered: bool
    unique: tuple[str, ...]


class _Field:
    """Stands in for `pandera.polars.Field`: records its options."""

    def __init__(self, **options: Any) -> None:
        self.options = options


class _DataFrameModel:
    """Stands in for `pandera.polars.DataFrameModel`."""


class _DateTime:
    """Stands in for `polars_engine.DateTime`: the polars dtype it declares."""

    def __init__(self, time_unit: str = "us", time_zone: str | None = None) -> None:
        self.dtype = pl.Datetime(time_unit, time_zone)

    def __call__(self) -> None:  # typing.Optional accepts callables only
        raise TypeError("a stand-in dtype")


def _custom_check(*_args: Any, **_kwargs: Any):
    """Stands in for `pa.check` and `pa.dataframe_check`: marks the method as a check."""

    def mark(method: Any) -> Any:
        method.__declared_custom_check__ = True
        return method

    return mark


_PANDERA = SimpleNamespace(
    polars=SimpleNamespace(DataFrameModel=_DataFrameModel, Field=_Field,
                           check=_custom_check, dataframe_check=_custom_check,
                           PolarsData=typing.NamedTuple("PolarsData", [
                               ("lazyframe", pl.LazyFrame), ("key", str)])),
    engines=SimpleNamespace(polars_engine=SimpleNamespace(DateTime=_DateTime)),
)


def _import(name: str, globals=None, locals=None, fromlist=(), level=0):
    """`import` inside a model module: pandera's names are the stand-ins, other model
    modules of `schemas` are read the same way, anything else is imported as usual."""
    if name == "pandera" or name.startswith("pandera."):
        found: Any = _PANDERA
        for part in name.split(".")[1:] if fromlist else ():
            found = getattr(found, part)
        return found
    if name.startswith("schemas.") and level == 0:
        module = _read_module(name)
        return module if fromlist else SimpleNamespace(**{name.split(".", 1)[1]: module})
    return builtins.__import__(name, globals, locals, fromlist, level)


@functools.cache
def _read_module(name: str) -> SimpleNamespace:
    """Run the model module `name`'s source with the stand-ins; its names."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise Unreadable(f"no source for {name}")
    source = Path(spec.origin).read_text()
    namespace: dict[str, Any] = {
        "__name__": f"{name}.declared", "__file__": spec.origin,
        "__builtins__": {**vars(builtins), "__import__": _import},
    }
    try:
        exec(compile(source, spec.origin, "exec"), namespace)
    except Exception as error:  # a name or option the stand-ins lack: pandera reads it
        raise Unreadable(f"{name}: {error}") from None
    return SimpleNamespace(**namespace)


def _dtype(annotation: Any) -> tuple[pl.DataType, bool]:
    """The polars dtype an annotation declares, and whether the column is required."""
    required = True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) != 1:
            raise Unreadable(f"annotation {annotation!r}")
        annotation, required = args[0], False
    if isinstance(annotation, _DateTime):
        return annotation.dtype, required
    if isinstance(annotation, type) and issubclass(annotation, pl.DataType):
        return annotation(), required
    if isinstance(annotation, pl.DataType):
        return annotation, required
    raise Unreadable(f"annotation {annotation!r}")


def _column(attribute: str, annotation: Any, field: Any) -> Column:
    options = field.options if isinstance(field, _Field) else {}
    if field is not None and not isinstance(field, _Field):
        raise Unreadable(f"{attribute} = {field!r}")
    unknown = set(options) - PLAIN_OPTIONS - set(CHECKS)
    if unknown:
        raise Unreadable(f"{attribute}: {', '.join(sorted(unknown))}")
    dtype, required = _dtype(annotation)
    return Column(
        name=options.get("alias", attribute), dtype=dtype, required=required,
        nullable=bool(options.get("nullable", False)), unique=bool(options.get("unique", False)),
        checks=tuple((key, options[key]) for key in CHECKS if key in options))


@functools.cache
def _declarations(module: str, model: str) -> tuple[dict[str, Column], dict[str, Any], bool]:
    """The columns of `model` in `module` by attribute, its `Config` options, and whether it
    has a custom check. Raises `Unreadable` when a column uses anything not read here."""
    names = _read_module(module)
    cls = getattr(names, model, None)
    if not (isinstance(cls, type) and issubclass(cls, _DataFrameModel)):
        raise Unreadable(f"{module}.{model} is not a model")
    columns: dict[str, Column] = {}
    config: dict[str, Any] = {}
    custom = False
    for klass in reversed(cls.__mro__[:-2]):  # bases first, as pandera inherits fields
        hints = typing.get_type_hints(klass, globalns=vars(names), include_extras=False)
        own = inspect.get_annotations(klass)
        for attribute in own:
            if typing.get_origin(hints[attribute]) is typing.ClassVar:
                continue
            columns[attribute] = _column(attribute, hints[attribute],
                                         klass.__dict__.get(attribute))
        custom = custom or any(
            getattr(v, "__declared_custom_check__", False)
            for value in klass.__dict__.values() for v in (value, getattr(value, "__func__", None)))
        if "Config" in klass.__dict__:
            config.update({key: value for key, value in vars(klass.Config).items()
                           if not key.startswith("__")})
    return columns, config, custom


@functools.cache
def declared(module: str, model: str) -> Model:
    """The declarations of `model` in the schema module `module` (e.g. "schemas.backtest").

    Raises `Unreadable` when the model uses anything not read here."""
    columns, config, custom = _declarations(module, model)
    if custom:
        raise Unreadable(f"{module}.{model} has a custom check")
    unknown = set(config) - PLAIN_CONFIG
    if unknown or config.get("strict", False) not in (True, False):
        raise Unreadable(f"{module}.{model} Config: {sorted(unknown) or config['strict']}")
    return Model(columns=tuple(columns.values()), strict=config.get("strict", False),
                 ordered=config.get("ordered", False),
                 unique=tuple(config.get("unique") or ()))


@functools.cache
def layout(module: str, model: str) -> pl.Schema:
    """The columns `model` declares, in order, with their dtypes: a frame of exactly this
    schema passes the model's column checks (its value checks, custom ones included, aside)."""
    columns = _declarations(module, model)[0].values()
    return pl.Schema({column.name: column.dtype for column in columns})


def _rules(model: Model, frame: pl.DataFrame) -> list[pl.Expr] | None:
    """One boolean expression per declared rule, or None when the layout already fails."""
    present = [column for column in model.columns if column.name in frame.schema]
    names = [column.name for column in model.columns]
    if any(column.required and column.name not in frame.schema for column in model.columns):
        return None
    if model.strict and set(frame.columns) - set(names):
        return None
    if model.ordered and [c for c in frame.columns if c in names] != [c.name for c in present]:
        return None
    if any(not frame.schema[column.name].is_(column.dtype) for column in present):
        return None
    rules = []
    for column in present:
        col = pl.col(column.name)
        if not column.nullable:
            valid = col.is_not_null()
            rules.append((valid & col.is_not_nan() if column.dtype.is_float() else valid).all())
        if column.unique:
            rules.append(col.is_duplicated().any().not_())
        rules.extend((CHECKS[key](col, value) | col.is_null()).all()
                     for key, value in column.checks)
    if model.unique:
        if not set(model.unique) <= set(frame.columns):
            return None
        rules.append(pl.struct(list(model.unique)).is_duplicated().any().not_())
    return rules


def conforms(frame: pl.DataFrame, module: str, model: str) -> bool:
    """True when `frame` passes `module.model` as declared; False when it fails or when the
    model cannot be read here (then only pandera can tell)."""
    try:
        rules = _rules(declared(module, model), frame)
    except Unreadable:
        return False
    if rules is None:
        return False
    if not rules:
        return True
    return all(frame.select(rule.alias(str(i)) for i, rule in enumerate(rules)).row(0))
