"""A full disk or a read-only folder: one line naming the path and the cause, exit 1, and
the previous output untouched.

The disk is a small tmpfs mounted for the test (the tests run as root in their container).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dagster_server import ROOT

pytestmark = pytest.mark.slow

DISK_SIZE = "16m"


def tradegap(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *arguments], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True)


@pytest.fixture
def disk(tmp_path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE at tmp_path/disk."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here: {mounted.stderr.strip()}"
        print(reason)
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("data")
    prices, weights = folder / "prices.parquet", folder / "weights.csv"
    done = tradegap("generate", "--prices", str(prices), "--weights", str(weights),
                    "--assets", "40", "--days", "250", "--top", "8", "--every", "5")
    assert done.returncode == 0, done.stderr
    return prices, weights


def fill_up(disk: Path) -> None:
    """Write until the file system is full."""
    with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def assert_one_line(done: subprocess.CompletedProcess, path: Path, cause: str) -> None:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"tradegap: error: {path}"), lines[0]
    assert lines[0].endswith(f": {cause}"), lines[0]


def test_a_full_disk_is_one_line_exit_1_and_the_output_stays(disk, data):
    prices, weights = data
    out = disk / "run"
    first = tradegap("backtest", "--prices", str(prices), "--weights", str(weights),
                     "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = contents(out)
    fill_up(disk)

    again = tradegap("backtest", "--prices", str(prices), "--weights", str(weights),
                     "--out", str(out), "--fees", "0.002")
    assert_one_line(again, out, "No space left on device")
    assert contents(out) == before
    assert sorted(path.name for path in disk.iterdir()) == ["filler", "run"]

    generated = tradegap("generate", "--prices", str(disk / "prices.parquet"), "--weights",
                         str(disk / "weights.csv"), "--assets", "40", "--days", "250")
    assert_one_line(generated, disk / "prices.parquet", "No space left on device")
    assert sorted(path.name for path in disk.iterdir()) == ["filler", "run"]


def test_a_read_only_folder_is_one_line_exit_1_and_the_output_stays(disk, data):
    prices, weights = data
    out = disk / "run"
    assert tradegap("backtest", "--prices", str(prices), "--weights", str(weights),
                    "--out", str(out)).returncode == 0
    before = contents(out)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    again = tradegap("backtest", "--prices", str(prices), "--weights", str(weights),
                     "--out", str(out), "--fees", "0.002")
    assert_one_line(again, out, "Read-only file system")
    assert contents(out) == before


def test_a_read_only_folder_is_refused_before_the_inputs_are_read(disk, data):
    """The write would fail at the end of the work; the command says so before it starts
    (here before it finds that the prices file is missing)."""
    _, weights = data
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    for out in (disk / "new", disk / "new" / "deeper"):
        refused = tradegap("backtest", "--prices", str(disk / "missing.parquet"), "--weights",
                           str(weights), "--out", str(out))
        assert_one_line(refused, out, "Read-only file system")
    assert list(disk.iterdir()) == []
