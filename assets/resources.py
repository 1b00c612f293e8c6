"""Resources: the execution settings every backtest shares, and the artifact folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import typing
from pathlib import Path

import polars as pl
from dagster import ConfigurableResource

from engine.core.config import BacktestConfig

ARTIFACTS_ENV = "TRADEGAP_ARTIFACTS"
DEFAULT_ARTIFACTS = "out/artifacts"


def artifacts_dir(out: str | None = None) -> Path:
    """The artifact folder, absolute: `out/artifacts` when a folder is named on the command
    line, else `$TRADEGAP_ARTIFACTS`, else `out/artifacts` (the same rule for every command
    and the UI)."""
    if out is not None:
        return Path(out, "artifacts").resolve()
    return Path(os.environ.get(ARTIFACTS_ENV) or DEFAULT_ARTIFACTS).resolve()


def settings_fields(config_class: type) -> type[ConfigurableResource]:
    """A resource base with one field per field of the dataclass `config_class`, same defaults.

    The engine's `BacktestConfig` is the one source of settings: a field added there becomes
    a pipeline setting (shown in the UI's launchpad) with the same default, without an edit
    here.
    """
    hints = typing.get_type_hints(config_class)
    namespace: dict[str, object] = {"__annotations__": {}, "__module__": __name__}
    for field in dataclasses.fields(config_class):
        namespace["__annotations__"][field.name] = hints[field.name]
        if field.default is not dataclasses.MISSING:
            namespace[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            namespace[field.name] = field.default_factory()
    return type(f"{config_class.__name__}Fields", (ConfigurableResource,), namespace)


class ExecutionSettings(settings_fields(BacktestConfig)):
    """How orders execute (docs/semantics.md): `BacktestConfig`'s fields and defaults.

    One instance feeds every backtest asset; the defaults are the engine's (and the CLI's).
    """

    def config(self) -> BacktestConfig:
        """The engine's settings object (validated)."""
        return BacktestConfig(**{field.name: getattr(self, field.name)
                                 for field in dataclasses.fields(BacktestConfig)})


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
