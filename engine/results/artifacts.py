"""Writing artifacts without losing what is there: write to a temporary path, then rename.

An output folder carries a marker (`MARKER`) naming its kind and the entries it wrote; a
folder is replaced only when it is empty, new, or a tradegap output of the same kind holding
nothing else, so a command never deletes what it did not write.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
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


MARKER = ".tradegap-output.json"


def claim_output(
    out_dir: str | Path, kind: str, inputs: Iterable[str | Path | None] = (),
    force: bool = False,
) -> Path:
    """`out_dir`, absolute, if it may be written as a `kind` output; else an InputError.

    Refused: a folder that contains or is one of `inputs`; an existing file; a non-empty
    folder without the marker; a folder holding entries its marker does not list; a tradegap
    output of another kind unless `force`.
    """
    from engine.errors import InputError

    out = Path(out_dir).resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if source == out or out in source.parents:
            raise InputError(str(out_dir), f"output folder contains the input {given}; "
                             "choose another --out")
    if not out.exists():
        return out
    if not out.is_dir():
        raise InputError(str(out_dir), "output exists and is not a folder")
    entries = {entry.name for entry in out.iterdir()}
    if not entries:
        return out
    if MARKER not in entries:
        raise InputError(str(out_dir), "output folder is not empty and is not a tradegap "
                         "output; choose a new or empty folder (nothing was written)")
    written = json.loads((out / MARKER).read_text())
    if written.get("kind") != kind and not force:
        raise InputError(str(out_dir), f"output folder holds a tradegap {written.get('kind')} "
                         f"output, not a {kind} output; pass --force to replace it")
    foreign = sorted(entries - set(written.get("entries", [])) - {MARKER})
    if foreign and written.get("entries") is not None:
        shown = ", ".join(foreign[:5])
        raise InputError(str(out_dir), f"output folder holds entries tradegap did not write "
                         f"({shown}); move them away first (nothing was written)")
    return out


def write_output(
    out_dir: str | Path, kind: str, fill: Callable[[Path], None],
    inputs: Iterable[str | Path | None] = (), force: bool = False,
) -> Path:
    """Claim `out_dir` for a `kind` output, build it with `fill(tmp)`, mark it, swap it in."""
    out = claim_output(out_dir, kind, inputs, force)

    def fill_and_mark(tmp: Path) -> None:
        fill(tmp)
        entries = sorted(entry.name for entry in tmp.iterdir())
        (tmp / MARKER).write_text(json.dumps({"kind": kind, "entries": entries}) + "\n")

    return replace_directory(out, fill_and_mark)


def mark_folder(folder: str | Path, kind: str) -> None:
    """Write the marker of an output folder whose entries accumulate (the artifact folder)."""
    folder = Path(folder)
    if not (folder / MARKER).is_file():
        write_atomic(folder / MARKER,
                     lambda tmp: Path(tmp).write_text(json.dumps({"kind": kind}) + "\n"))


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
