"""Identical runs write byte-identical Parquet artifacts, so a file hash is a fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from engine.data.synthetic import generate_market
from engine.research.features import compute_features
from engine.results.artifacts import write_table
from pipelines.definitions import ASSETS, CHECKS, resources
from tests.test_pipeline import MAIN, SMALL

pytestmark = pytest.mark.slow


def digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*.parquet"))}


def test_features_of_the_default_market_write_the_same_bytes_twice(tmp_path):
    market = generate_market()  # the default size, where polars' chunking varies by run
    first = write_table(compute_features(market), tmp_path / "a.parquet").read_bytes()
    second = write_table(compute_features(market), tmp_path / "b.parquet").read_bytes()
    assert first == second


def test_two_identical_pipeline_runs_write_identical_parquet_files(tmp_path):
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        result = materialize([*ASSETS, *CHECKS], selection=MAIN, run_config=SMALL,
                             resources=resources(str(folder)),
                             instance=DagsterInstance.ephemeral())
        assert result.success
    first, second = (digests(folder) for folder in folders)
    assert len(first) > 40
    assert first == second
