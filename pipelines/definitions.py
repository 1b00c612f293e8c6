"""The code location: assets, checks, jobs, schedule and resources, assembled."""

from __future__ import annotations

import os

from dagster import Definitions, load_assets_from_modules

from assets import backtests, data, gap, reports, signals, sweeps
from assets.checks import CHECKS
from pipelines.io_manager import ParquetIOManager
from pipelines.jobs import nightly_regression, nightly_schedule, parameter_sweep, sweep_report
from pipelines.resources import ArtifactStore, ExecutionSettings

ARTIFACTS = os.environ.get("TRADEGAP_ARTIFACTS", "out/artifacts")


def resources(base_dir: str = ARTIFACTS) -> dict[str, object]:
    """Resources for artifacts under `base_dir` (the only setting that varies by place)."""
    return {
        "io_manager": ParquetIOManager(base_dir=base_dir),
        "store": ArtifactStore(base_dir=base_dir),
        "settings": ExecutionSettings(),
    }


ASSETS = load_assets_from_modules([data, signals, backtests, reports, sweeps, gap])

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[nightly_regression, parameter_sweep, sweep_report],
    schedules=[nightly_schedule],
    resources=resources(),
)
