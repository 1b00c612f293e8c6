"""Writing artifacts without losing what is there: write to a temporary path, then rename."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl


def write_atomic(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_parquet(frame: pl.DataFrame, path: str | Path) -> None:
    """Write `frame` as Parquet whose bytes depend only on its content.

    A frame's chunk layout depends on how it was computed (threads, joins), and the writer
    follows it, so equal frames could give different files; one chunk makes artifact hashes
    a usable regression fingerprint.
    """
    frame.rechunk().write_parquet(path, compression="zstd", statistics=True)


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write `frame` as CSV (`.csv`) or Parquet (anything else), atomically."""
    if Path(path).suffix.lower() == ".csv":
        return write_atomic(path, frame.write_csv)
    return write_atomic(path, lambda tmp: write_parquet(frame, tmp))


def to_json(value: dict[str, Any]) -> str:
    """JSON with NaN and infinities written as null (valid JSON for every reader)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), indent=2, sort_keys=False, default=str)


def replace_directory(out_dir: str | Path, fill: Callable[[Path], None]) -> Path:
    """Build a directory with `fill(tmp)`, then swap it in for `out_dir` in one rename.

    If `fill` raises, `out_dir` is left exactly as it was.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        fill(tmp)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
