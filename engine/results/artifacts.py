"""Writing artifacts without losing what is there: write to a temporary path, then rename.

Temporary files and folders are created with the modes a plain `open` or `mkdir` would give
(0666 and 0777 less the umask), not `tempfile`'s private 0600 and 0700, so a UI, daemon or
worker running as another user of the group reads the artifacts once they are renamed.

An output folder carries a marker (`MARKER`) naming its kind and the entries it wrote; a
folder is replaced only when it is empty, new, or a tradegap output of the same kind holding
nothing else, so a command never deletes what it did not write; an entry put into it while
the new output was being built is moved into the new one, not deleted with the old. An
output replaced by another written to the same folder at the same time is an
`OutputReplaced`, so its command does not report what is no longer there.

A folder whose entries accumulate (the artifact folder) is updated whole too
(`update_directory`): the new version is built in a copy of it beside it and swapped in, so
a build that fails or is stopped leaves it exactly as it was.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import math
import os
import re
import secrets
import shutil
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from engine.errors import OutputReplaced

OS_ERROR_CODE = re.compile(r"os error (\d+)")
RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths in one step
NAME_ATTEMPTS = 100
ZSTD_LEVEL = 1  # Parquet's zstd at level 1: 2% larger tables than the default 3, 30% less CPU


def _unique_path(near: Path, suffix: str, create: Callable[[Path], None]) -> Path:
    """A fresh hidden path beside `near`, created by `create` (which must refuse to reuse)."""
    for _ in range(NAME_ATTEMPTS):
        candidate = near.with_name(f".{near.name}.{secrets.token_hex(6)}{suffix}")
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(near))


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def os_error(error: Exception, path: str | Path) -> OSError | None:
    """`error` as an OSError naming `path`, or None when it is not a system error: the
    writers' IO failures (polars reports a full disk as a ComputeError ending in "os error
    28") become one cause and one path."""
    code = getattr(error, "errno", None)
    if code is None and (found := OS_ERROR_CODE.search(str(error))):
        code = int(found.group(1))
    return None if code is None else OSError(code, os.strerror(code), str(path))


def write_atomic(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = str(_unique_path(path, ".tmp", _new_file))
    except OSError as error:
        if (mapped := os_error(error, path)) is None:
            raise
        raise mapped from error
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, pl.exceptions.ComputeError) as error:
        Path(tmp).unlink(missing_ok=True)
        if (mapped := os_error(error, path)) is None:
            raise
        raise mapped from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_parquet(frame: pl.DataFrame, path: str | Path) -> None:
    """Write `frame` as Parquet whose bytes depend only on its content.

    A frame's chunk layout depends on how it was computed (threads, joins), and the writer
    follows it, so equal frames could give different files; one chunk makes artifact hashes
    a usable regression fingerprint. The bytes are encoded in memory and written by Python,
    so a failing disk is an OSError with its errno wherever it fails (polars' own writer
    reports a disk that fills while it writes the footer as an invalid file, no errno).
    """
    encoded = io.BytesIO()
    frame.rechunk().write_parquet(encoded, compression="zstd",
                                  compression_level=ZSTD_LEVEL, statistics=True)
    with open(path, "wb") as out:
        out.write(encoded.getbuffer())


def write_parquet_batches(frames: Iterable[pl.DataFrame], path: str | Path) -> None:
    """Write the frames `frames` (one schema, at least one frame) as one Parquet table,
    one row group each, holding only one frame at a time.

    Read back it equals `write_parquet` of the frames concatenated: same columns, types
    and rows, compressed alike (only the row groups fall elsewhere).
    """
    import pyarrow.parquet as pq

    writer = None
    try:
        for frame in frames:
            table = frame.rechunk().to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd",
                                          compression_level=ZSTD_LEVEL,
                                          write_statistics=True)
            writer.write_table(table, row_group_size=max(table.num_rows, 1))
        writer.close()
    except OSError as error:
        if (mapped := os_error(error, path)) is None:
            raise
        raise mapped from error
    finally:
        if writer is not None:
            writer.close()


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
    _check_writable(out)
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
    written = read_marker(out)
    if written is None:
        raise InputError(str(out_dir), f"output folder's {MARKER} is not a tradegap marker; "
                         "choose a new or empty folder (nothing was written)")
    if written.get("kind") != kind and not force:
        raise InputError(str(out_dir), f"output folder holds a tradegap {written.get('kind')} "
                         f"output, not a {kind} output; pass --force to replace it")
    foreign = sorted(entries - set(written.get("entries", [])) - {MARKER})
    if foreign and written.get("entries") is not None:
        shown = ", ".join(foreign[:5])
        raise InputError(str(out_dir), f"output folder holds entries tradegap did not write "
                         f"({shown}); move them away first (nothing was written)")
    return out


def read_marker(folder: Path) -> dict | None:
    """The marker of an output folder, or None when it is missing or not one we wrote."""
    try:
        written = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return written if isinstance(written, dict) else None


def _carry_added(previous: Path, out: Path) -> None:
    """Move into the new output `out` the entries of the one it replaced (`previous`) that
    the latter's marker does not list: files put there while the new output was being
    built, which must not be deleted with the old output. A name the new output also
    has is kept beside it as `<name>.kept-<hex>`."""
    written = read_marker(previous)
    listed = written.get("entries") if written is not None else []
    if listed is None:  # a marker of an accumulating folder: nothing to tell apart
        return
    for entry in sorted(previous.iterdir()):
        if entry.name == MARKER or entry.name in listed:
            continue
        target = out / entry.name
        if target.exists() or target.is_symlink():
            target = out / f"{entry.name}.kept-{secrets.token_hex(4)}"
        os.rename(entry, target)


def _check_writable(out: Path) -> None:
    """Raise the OSError a write beside `out` would meet (read-only file system, permission
    denied), before any work rather than after it: the folder the output is built and
    renamed in is its parent, or the nearest ancestor that exists."""
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if os.access(folder, os.W_OK | os.X_OK):
        return
    read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    code = errno.EROFS if read_only else errno.EACCES
    raise OSError(code, os.strerror(code), str(out))


def write_output(
    out_dir: str | Path, kind: str, fill: Callable[[Path], None],
    inputs: Iterable[str | Path | None] = (), force: bool = False,
) -> Path:
    """Claim `out_dir` for a `kind` output, build it with `fill(tmp)`, mark it, swap it in."""
    out = claim_output(out_dir, kind, inputs, force)
    token = secrets.token_hex(8)

    def fill_and_mark(tmp: Path) -> None:
        fill(tmp)
        entries = sorted(entry.name for entry in tmp.iterdir())
        (tmp / MARKER).write_text(json.dumps({"kind": kind, "entries": entries,
                                              "id": token}) + "\n")

    replace_directory(out, fill_and_mark, carry=_carry_added)
    in_place = read_marker(out)
    if in_place is None or in_place.get("id") != token:
        other = in_place.get("kind") if in_place is not None else None
        raise OutputReplaced(out, kind, other)
    return out


def mark_folder(folder: str | Path, kind: str) -> None:
    """Write the marker of an output folder whose entries accumulate (the artifact folder)."""
    folder = Path(folder)
    if not (folder / MARKER).is_file():
        write_atomic(folder / MARKER,
                     lambda tmp: Path(tmp).write_text(json.dumps({"kind": kind}) + "\n"))


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_cwd = -100
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second),
                 RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _swap_in(tmp: Path, out_dir: Path) -> Path | None:
    """Put the folder `tmp` at `out_dir`; the path where what was there now is (for the
    caller to carry from and delete), or None when nothing was.

    Where the system can exchange two paths, `out_dir` always exists and always holds one
    complete version, even while other processes swap the same folder. Elsewhere the old
    copy is moved aside under a name of its own, so concurrent swaps never collide.
    """
    while True:
        try:
            os.rename(tmp, out_dir)
            return None
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        try:
            if _exchange(tmp, out_dir):
                return tmp
        except FileNotFoundError:
            continue  # another swap moved it aside: try again
        old = out_dir.with_name(f".{out_dir.name}.{secrets.token_hex(6)}.old")
        try:
            os.rename(out_dir, old)
        except FileNotFoundError:
            continue  # another swap moved it aside: try again
        try:
            os.rename(tmp, out_dir)
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                os.rename(old, out_dir)
                raise
            # another swap put its complete copy in place meanwhile; it stands
        return old


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back (delivered on leaving) where the system can."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def replace_directory(out_dir: str | Path, fill: Callable[[Path], None],
                      carry: Callable[[Path, Path], None] | None = None) -> Path:
    """Build a directory with `fill(tmp)`, then swap it in for `out_dir` in one rename.

    If `fill` raises, `out_dir` is left exactly as it was. Concurrent swaps of one folder
    are safe: each ends with one complete version in place. `carry(previous, out_dir)`
    may move entries of the replaced folder into the new one before it is deleted.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = _unique_path(out_dir, "", lambda candidate: candidate.mkdir())
    except OSError as error:
        if (mapped := os_error(error, out_dir)) is None:
            raise
        raise mapped from error
    previous = None
    try:
        try:
            fill(tmp)
        except OSError as error:  # name the file as it would have been, not the temporary
            if error.errno is None or not error.filename:
                raise
            inside = Path(error.filename)
            if inside.is_relative_to(tmp):
                inside = out_dir / inside.relative_to(tmp)
            raise OSError(error.errno, error.strerror, str(inside)) from error
        with _signals_held():  # an interrupt must not delete what `carry` is to keep
            previous = _swap_in(tmp, out_dir)
            if previous is not None and carry is not None:
                carry(previous, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if previous is not None and previous != tmp:
            shutil.rmtree(previous, ignore_errors=True)
    return out_dir


Identity = tuple[int, int]  # (device, inode): which file a path is


def _identity(path: Path) -> Identity | None:
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _link_tree(source: Path, target: Path) -> dict[str, tuple[Identity, Identity]]:
    """Fill the empty folder `target` with the tree of `source`: folders made anew, files and
    symlinks hard-linked (copied where the system refuses a link), so a file of `target`
    written by rename leaves `source` as it was. Each file's relative path, with the
    identities of the source and of what `target` holds."""
    seeded = {}
    for root, folders, files in os.walk(source):
        here = Path(root)
        into = target / here.relative_to(source)
        for name in list(folders):
            if (here / name).is_symlink():  # linked as a file, not followed
                folders.remove(name)
                files.append(name)
            else:
                (into / name).mkdir()
        for name in files:
            origin, copy = here / name, into / name
            identity = _identity(origin)
            if identity is None:
                continue  # removed meanwhile
            try:
                os.link(origin, copy, follow_symlinks=False)
            except OSError:
                if origin.is_symlink():
                    os.symlink(os.readlink(origin), copy)
                else:
                    shutil.copy2(origin, copy)
            seeded[str(copy.relative_to(target))] = (identity, _identity(copy))
    return seeded


def _kept_name(target: Path) -> Path:
    return target.with_name(f"{target.name}.kept-{secrets.token_hex(4)}")


def _carry_changed(previous: Path, out: Path,
                   seeded: dict[str, tuple[Identity, Identity]]) -> None:
    """Bring into the new version `out` what changed in the folder it replaced (`previous`)
    since `out` was seeded from it: an added or rewritten entry moves in (beside the new
    version's as `<name>.kept-<hex>` where that was rewritten too), and an entry removed
    from it is removed from `out` unless the new version rewrote it."""
    present = set()
    for root, folders, files in os.walk(previous):
        here = Path(root)
        into = out / here.relative_to(previous)
        for name in list(folders):
            if (here / name).is_symlink() or not (into / name).is_dir() \
                    or (into / name).is_symlink():
                folders.remove(name)
                files.append(name)
        for name in files:
            origin, target = here / name, into / name
            key = str(target.relative_to(out))
            present.add(key)
            was, linked = seeded.get(key, (None, None))
            if _identity(origin) == was:
                continue  # as it was seeded: the new version holds it or rewrote it
            if _identity(target) not in (None, linked):
                target = _kept_name(target)  # the new version wrote this name too
            os.replace(origin, target)
    for key, (_, linked) in seeded.items():
        if key not in present and _identity(out / key) == linked:
            (out / key).unlink()  # removed from the folder while the new version was built


def update_directory(out_dir: str | Path, fill: Callable[[Path], None]) -> Path:
    """Build a new version of the folder `out_dir` with `fill(tmp)`, `tmp` starting as a copy
    of it (hard links), then swap it in as `replace_directory` does.

    What `fill` does not rewrite stays as it was, and what `fill` rewrites it must write by
    rename (`write_atomic`, `replace_directory`: a write into a linked file would change
    `out_dir` too). If `fill` raises or is interrupted, `out_dir` is left exactly as it was
    and `tmp` is removed. What changed in `out_dir` meanwhile is carried into the new version
    (`_carry_changed`), so nothing put there is lost.
    """
    out = Path(out_dir).resolve()
    seeded: dict[str, tuple[Identity, Identity]] = {}

    def seed_and_fill(tmp: Path) -> None:
        if out.is_dir():
            seeded.update(_link_tree(out, tmp))
        fill(tmp)

    return replace_directory(out, seed_and_fill,
                             carry=lambda previous, new: _carry_changed(previous, new, seeded))
