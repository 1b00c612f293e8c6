"""Artifact files as other users and other processes see them: modes that follow the umask,
folder swaps that stay whole while several processes swap the same folder, an output
replaced by another that says so, and an accumulating folder updated whole."""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import InputError, OutputReplaced
from engine.results import artifacts
from engine.results.artifacts import (
    MARKER,
    replace_directory,
    update_directory,
    write_atomic,
    write_output,
    write_table,
)
from tests.dagster_server import ROOT

FILES = ("a.txt", "b.txt", "c.txt")
SWAPPERS = 4
SWAPS = 400


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask 022", "umask 002"])
def test_outputs_get_the_modes_the_umask_gives(umask, tmp_path):
    prices, weights, out = tmp_path / "prices.parquet", tmp_path / "w.csv", tmp_path / "run"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in (["generate", "--prices", str(prices), "--weights", str(weights),
                     "--assets", "10", "--days", "60", "--top", "3", "--every", "5"],
                    ["backtest", "--prices", str(prices), "--weights", str(weights),
                     "--out", str(out)]):
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", *command], cwd=tmp_path,
                              env=environment, capture_output=True, text=True,
                              preexec_fn=lambda: os.umask(umask))
        assert done.returncode == 0, done.stderr
    files, folders = 0o666 & ~umask, 0o777 & ~umask
    assert (mode(prices), mode(weights)) == (files, files)
    assert mode(out) == folders
    assert {path.name: mode(path) for path in out.iterdir()} == {
        path.name: files for path in out.iterdir()}


def test_write_table_and_replace_directory_follow_the_umask_in_process(tmp_path):
    import polars as pl

    previous = os.umask(0o002)
    try:
        table = write_table(pl.DataFrame({"x": [1]}), tmp_path / "market_data.parquet")
        folder = replace_directory(tmp_path / "backtest",
                                   lambda tmp: (tmp / "f.txt").write_text("x"))
    finally:
        os.umask(previous)
    assert (mode(table), mode(folder), mode(folder / "f.txt")) == (0o664, 0o775, 0o664)


def _swap_many(out: str, worker: int, swaps: int, exchange: bool) -> None:
    """Swap in `swaps` complete versions of `out`, each file naming the version."""
    if not exchange:
        artifacts._exchange = lambda first, second: False
    for number in range(swaps):
        version = f"{worker}-{number}"

        def fill(tmp: Path, version: str = version) -> None:
            for name in FILES:
                (tmp / name).write_text(version)

        replace_directory(out, fill)


def _read_whole(out: Path) -> str | None:
    """The version `out` holds, read through one handle on the folder; None when the
    folder was swapped out while being read (its files are being removed)."""
    handle = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = sorted(os.listdir(handle))
        versions = set()
        for name in names:
            file = os.open(name, os.O_RDONLY, dir_fd=handle)
            try:
                versions.add(os.read(file, 100).decode())
            finally:
                os.close(file)
        if os.stat(out).st_ino != os.fstat(handle).st_ino:
            return None
    except FileNotFoundError:
        return None
    finally:
        os.close(handle)
    assert names == list(FILES), f"incomplete folder in place: {names}"
    assert len(versions) == 1, f"mixed versions in place: {versions}"
    return versions.pop()


@pytest.mark.parametrize("exchange", [True, False],
                         ids=["exchanged in one step", "moved aside under unique names"])
def test_concurrent_swaps_never_fail_and_leave_one_complete_version(exchange, tmp_path):
    out = tmp_path / "shared"
    _swap_many(str(out), -1, 1, exchange=True)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_swap_many, args=(str(out), worker, SWAPS, exchange))
               for worker in range(SWAPPERS)]
    for process in workers:
        process.start()
    reads, missing, seen = 0, 0, set()
    while any(process.is_alive() for process in workers):
        try:
            version = _read_whole(out)
        except FileNotFoundError:
            missing += 1
            continue
        reads += 1
        if version is not None:
            seen.add(version)
    for process in workers:
        process.join()
    assert [process.exitcode for process in workers] == [0] * SWAPPERS
    assert len(seen) > 1 and reads > 10
    if exchange:
        assert missing == 0, f"{out} was missing {missing} times of {reads + missing}"
    final = _read_whole(out)
    assert final is not None and final.split("-")[1] == str(SWAPS - 1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shared"]


def test_a_file_put_in_an_output_while_it_is_rewritten_is_kept(tmp_path):
    """The folder was claimed before the user saved a note into it; the note moves into
    the new output instead of being deleted with the old one, and a note whose name the
    new output also writes is kept beside it."""
    out = tmp_path / "out"
    write_output(out, "backtest", lambda tmp: (tmp / "a.parquet").write_text("old"))

    def fill(tmp: Path) -> None:
        (out / "notes.md").write_text("mine")  # meanwhile, the user
        (out / "b.parquet").write_text("mine too")
        (tmp / "a.parquet").write_text("new")
        (tmp / "b.parquet").write_text("new")

    write_output(out, "backtest", fill)
    assert (out / "a.parquet").read_text() == "new"
    assert (out / "notes.md").read_text() == "mine"
    assert (out / "b.parquet").read_text() == "new"
    kept = [path for path in out.iterdir() if path.name.startswith("b.parquet.kept-")]
    assert [path.read_text() for path in kept] == ["mine too"]
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("marker", ["{not json", "[1, 2]"])
def test_an_unreadable_marker_is_refused_as_not_ours(tmp_path, marker):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(marker)
    with pytest.raises(InputError, match=f"output folder's {MARKER} is not a tradegap "
                       "marker"):
        write_output(out, "backtest", lambda tmp: (tmp / "a.parquet").write_text("new"))
    assert [path.name for path in out.iterdir()] == [MARKER]


def test_an_output_replaced_by_one_that_finished_after_it_says_so(tmp_path, monkeypatch):
    """Two commands write one folder at once: the first swaps its output in, the second
    swaps its own in right after; the first must not report an output that is not there."""
    out, swap_in = tmp_path / "out", artifacts._swap_in
    swaps = []

    def then_another(tmp: Path, out_dir: Path):
        previous = swap_in(tmp, out_dir)
        swaps.append(tmp)
        if len(swaps) == 1:
            write_output(out, "backtest", lambda tmp: (tmp / "a.parquet").write_text("second"))
        return previous

    monkeypatch.setattr(artifacts, "_swap_in", then_another)
    with pytest.raises(OutputReplaced, match="another tradegap backtest output, written to "
                       "this folder at the same time, finished after this backtest output "
                       "and replaced it"):
        write_output(out, "backtest", lambda tmp: (tmp / "a.parquet").write_text("first"))
    assert len(swaps) == 2
    assert (out / "a.parquet").read_text() == "second"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def tree(folder: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


def artifact_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts"
    (folder / "backtest").mkdir(parents=True)
    (folder / "market_data.parquet").write_text("earlier run")
    (folder / "backtest" / "fills.parquet").write_text("earlier run")
    (folder / "mine.md").write_text("the user's")
    return folder


@pytest.mark.parametrize("stop", [RuntimeError("a step failed"), KeyboardInterrupt()],
                         ids=["failed", "interrupted"])
def test_an_update_that_fails_leaves_the_folder_exactly_as_it_was(tmp_path, stop):
    folder = artifact_folder(tmp_path)
    before = tree(folder)

    def fill(tmp: Path) -> None:
        assert tree(tmp) == before  # a copy of the folder, every file linked
        write_atomic(tmp / "market_data.parquet", lambda t: Path(t).write_text("this run"))
        replace_directory(tmp / "backtest",
                          lambda t: (t / "fills.parquet").write_text("this run"))
        raise stop

    with pytest.raises(type(stop)):
        update_directory(folder, fill)
    assert tree(folder) == before
    assert [path.name for path in tmp_path.iterdir()] == ["artifacts"]


def test_an_update_keeps_what_it_does_not_rewrite_and_what_changed_meanwhile(tmp_path):
    """While the new version is built, the user adds a note, saves a new version of one of
    their files and of one the new version rewrites, and deletes one: all of that holds in
    the folder swapped in."""
    folder = artifact_folder(tmp_path)
    (folder / "old.md").write_text("to delete")

    def fill(tmp: Path) -> None:
        write_atomic(tmp / "market_data.parquet", lambda t: Path(t).write_text("this run"))
        (folder / "notes" / "new.md").parent.mkdir()
        (folder / "notes" / "new.md").write_text("added")
        write_atomic(folder / "mine.md", lambda t: Path(t).write_text("the user's, edited"))
        write_atomic(folder / "market_data.parquet", lambda t: Path(t).write_text("theirs"))
        (folder / "old.md").unlink()

    update_directory(folder, fill)
    after = tree(folder)
    kept = [name for name in after if name.startswith("market_data.parquet.kept-")]
    assert [after.pop(name) for name in kept] == [b"theirs"]
    assert after == {"backtest": None, "backtest/fills.parquet": b"earlier run",
                     "market_data.parquet": b"this run", "mine.md": b"the user's, edited",
                     "notes": None, "notes/new.md": b"added"}
    assert [path.name for path in tmp_path.iterdir()] == ["artifacts"]
