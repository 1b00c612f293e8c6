"""Resources: the execution settings every backtest shares, and the artifact folder."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
from dagster import ConfigurableResource

from engine.core.config import BacktestConfig


class ExecutionSettings(ConfigurableResource):
    """How orders execute (docs/semantics.md); one instance feeds every backtest asset."""

    initial_cash: float = 1_000_000.0
    fill: str = "next_open"
    fees: float = 0.001
    per_share: float = 0.0
    min_fee: float = 0.0
    fixed_fee: float = 0.0
    slippage: float = 0.0
    shares: str = "fractional"
    cash_policy: str = "shrink"
    allow_short: bool = False

    def config(self) -> BacktestConfig:
        """The engine's settings object (validated)."""
        return BacktestConfig.from_dict(
            {name: getattr(self, name) for name in type(self).model_fields})


BASELINE_TABLES = ("fills", "equity")


def fingerprint(*frames: pl.DataFrame, settings: dict) -> str:
    """A digest of a backtest's inputs and settings: equal digests mean equal inputs."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for frame in frames:
        digest.update(str(frame.shape).encode())
        digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()[:16]


class ArtifactStore(ConfigurableResource):
    """The artifact folder: extra files (plots) and the accepted baselines of each backtest.

    Baselines (fills and equity, with the input fingerprint) live in `base_dir/baselines`.
    """

    base_dir: str = "out/artifacts"

    def write_file(self, name: str, content: bytes) -> Path:
        """Write `content` to `base_dir/name` atomically."""
        from engine.results.artifacts import write_atomic

        return write_atomic(Path(self.base_dir, name), lambda tmp: Path(tmp).write_bytes(content))

    def baseline_folder(self, backtest: str) -> Path:
        return Path(self.base_dir, "baselines", backtest)

    def load_baseline(self, backtest: str) -> tuple[dict[str, pl.DataFrame], str] | None:
        """The accepted tables and input fingerprint of `backtest`, or None if none yet."""
        folder = self.baseline_folder(backtest)
        if not (folder / "fingerprint.txt").is_file():
            return None
        tables = {name: pl.read_parquet(folder / f"{name}.parquet") for name in BASELINE_TABLES}
        return tables, (folder / "fingerprint.txt").read_text().strip()

    def accept_baseline(self, backtest: str) -> Path:
        """Copy the current artifact of `backtest` (tables and fingerprint) as its baseline."""
        from engine.results.artifacts import replace_directory

        current = Path(self.base_dir, backtest)
        if not (current / "fingerprint.parquet").is_file():
            raise FileNotFoundError(f"no materialized {backtest} under {self.base_dir}")
        digest = pl.read_parquet(current / "fingerprint.parquet")["fingerprint"][0]

        def fill(tmp: Path) -> None:
            for name in BASELINE_TABLES:
                shutil.copy(current / f"{name}.parquet", tmp / f"{name}.parquet")
            (tmp / "fingerprint.txt").write_text(digest + "\n")

        return replace_directory(self.baseline_folder(backtest), fill)
