"""Parquet IO manager: one file per asset (and partition), written aside and renamed.

A polars frame is stored as `<base_dir>/<asset>[/<partition>].parquet`; a dict of frames
(a backtest's tables) as a folder `<base_dir>/<asset>[/<partition>]/` with one Parquet file
per table, swapped in by one rename. A multi-dimensional partition key (`every21|k25`) is
one folder level per dimension. Reading a partitioned asset from an unpartitioned one gives a
dict of its materialized partitions (empty when none is). (dagster-polars cannot read Parquet
with polars 2, hence this.)
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import polars as pl
from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)

from engine.results.artifacts import replace_directory, write_parquet, write_table
from engine.results.markdown import escape


def markdown_table(frame: pl.DataFrame, rows: int = 5) -> str:
    """The first `rows` rows as a markdown table (for metadata previews), every value
    escaped."""
    head = frame.head(rows)
    cells = [[_cell(v) for v in row] for row in head.iter_rows()]
    lines = ["| " + " | ".join(escape(c) for c in head.columns) + " |",
             "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def image_markdown(png: bytes, alt: str) -> MetadataValue:
    """A PNG as markdown metadata the UI renders as a picture (an inline data URI)."""
    data = base64.b64encode(png).decode()
    return MetadataValue.md(f"![{escape(alt)}](data:image/png;base64,{data})")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(value)


def frame_metadata(frame: pl.DataFrame, path: Path) -> dict[str, object]:
    """Row count, schema, path and a preview of a stored frame."""
    return {
        "rows": MetadataValue.int(frame.height),
        "path": MetadataValue.path(str(path)),
        "schema": MetadataValue.table_schema(TableSchema(
            columns=[TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()])),
        "preview": MetadataValue.md(markdown_table(frame)),
    }


class ParquetIOManager(ConfigurableIOManager):
    """Stores polars frames and dicts of frames as Parquet under `base_dir`."""

    base_dir: str = "out/artifacts"

    def _location(self, context: OutputContext | InputContext, partition: str | None) -> Path:
        """`<base_dir>/<asset>`, then one folder level per partition dimension."""
        path = Path(self.base_dir, *context.asset_key.path)
        return path.joinpath(*str(partition).split("|")) if partition is not None else path

    def handle_output(self, context: OutputContext, obj: object) -> None:
        if obj is None:
            return
        partition = context.partition_key if context.has_partition_key else None
        path = self._location(context, partition)
        if isinstance(obj, pl.DataFrame):
            file = write_table(obj, path.with_suffix(".parquet"))
            context.add_output_metadata(frame_metadata(obj, file))
            return
        if not isinstance(obj, Mapping):
            raise TypeError(f"cannot store {type(obj).__name__} as Parquet")

        def fill(tmp: Path) -> None:
            for name, frame in obj.items():
                write_parquet(frame, tmp / f"{name}.parquet")

        replace_directory(path, fill)
        first_name, first = next(iter(obj.items()))
        context.add_output_metadata({
            **frame_metadata(first, path / f"{first_name}.parquet"),
            "path": MetadataValue.path(str(path)),
            "tables": MetadataValue.md(markdown_table(pl.DataFrame(
                {"table": list(obj), "rows": [frame.height for frame in obj.values()]}),
                rows=len(obj))),
        })

    def load_input(self, context: InputContext) -> object:
        if context.has_asset_partitions and not context.has_partition_key:
            stored = {key: self._location(context, key) for key in context.asset_partition_keys}
            return {key: self._read(path) for key, path in stored.items() if self._exists(path)}
        partition = context.asset_partition_key if context.has_asset_partitions else None
        return self._read(self._location(context, partition))

    @staticmethod
    def _exists(path: Path) -> bool:
        return path.with_suffix(".parquet").is_file() or path.is_dir()

    @staticmethod
    def _read(path: Path) -> object:
        if path.with_suffix(".parquet").is_file():
            return pl.read_parquet(path.with_suffix(".parquet"))
        if path.is_dir():
            return {file.stem: pl.read_parquet(file) for file in sorted(path.glob("*.parquet"))}
        raise FileNotFoundError(f"no artifact at {path} (materialize the upstream asset first)")
