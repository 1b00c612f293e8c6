"""The code location: assets, checks, jobs, schedule and resources, assembled."""

from __future__ import annotations

import os

from dagster import Definitions, load_assets_from_modules

from assets import backtests, data, external, signals, sweeps
from assets.checks import CHECKS as CORE_CHECKS
from assets.gap import ENGINE_AND_REFERENCE, EXTERNAL_PAIR, build_trade_gap
from assets.peers import PeerSettings, all_peer_definitions, comparisons, installed_peers
from assets.reports import build_performance_summary
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
        "peers": PeerSettings(),
    }


PEER_NAMES = installed_peers()
PEER_ASSETS, PEER_CHECKS = all_peer_definitions(PEER_NAMES)

ASSETS = [
    *load_assets_from_modules([data, signals, backtests, external, sweeps]),
    *PEER_ASSETS,
    build_performance_summary(
        ["backtest_engine", "backtest_reference", *(a.key.path[-1] for a in PEER_ASSETS)]),
    build_trade_gap(ENGINE_AND_REFERENCE + EXTERNAL_PAIR + comparisons(PEER_NAMES)),
]
CHECKS = [*CORE_CHECKS, *PEER_CHECKS]

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[nightly_regression, parameter_sweep, sweep_report],
    schedules=[nightly_schedule],
    resources=resources(),
)
