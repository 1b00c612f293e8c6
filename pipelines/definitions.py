"""The code location: assets, checks, jobs, schedule, sensors and resources, assembled."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, load_assets_from_modules

from assets import backtests, data, external, signals
from assets.checks import CHECKS as CORE_CHECKS
from assets.gap import ENGINE_AND_REFERENCE, EXTERNAL_PAIR, build_trade_gap
from assets.io_manager import ParquetIOManager
from assets.peers import (
    PeerSettings,
    all_peer_definitions,
    comparisons,
    installed_peers,
    peer_backtests,
)
from assets.reports import build_performance_summary
from assets.resources import ArtifactStore, ExecutionSettings, artifacts_dir
from assets.sweeps import SWEEP_CHUNKS, SweepGrid, sweep_summary
from assets.versions import with_code_versions
from pipelines.alerts import alert_channel
from pipelines.executors import default_executor
from pipelines.freshness import nightly_freshness_alert, with_freshness_policy
from pipelines.jobs import nightly_regression, nightly_schedule, parameter_sweep, sweep_report
from pipelines.sensors import SENSORS


def resources(base_dir: str | Path | None = None) -> dict[str, object]:
    """Resources for artifacts under `base_dir` (default: `artifacts_dir()`)."""
    base = str(base_dir if base_dir is not None else artifacts_dir())
    return {
        "io_manager": ParquetIOManager(base_dir=base),
        "store": ArtifactStore(base_dir=base),
        "settings": ExecutionSettings(),
        "peers": PeerSettings(),
        "sweep_grid": SweepGrid(),
        "alerts": alert_channel(base),
    }


PEER_NAMES = installed_peers()
PEER_ASSETS, PEER_CHECKS = all_peer_definitions(PEER_NAMES)
BACKTESTS = ["backtest_engine", "backtest_reference", *peer_backtests(PEER_NAMES)]

ASSETS = with_freshness_policy(with_code_versions([
    *load_assets_from_modules([data, signals, backtests, external]),
    *PEER_ASSETS,
    build_performance_summary(BACKTESTS),
    build_trade_gap(ENGINE_AND_REFERENCE + EXTERNAL_PAIR + comparisons(PEER_NAMES)),
    *SWEEP_CHUNKS,
    sweep_summary,
]))
CHECKS = [*CORE_CHECKS, *PEER_CHECKS]

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[nightly_regression, parameter_sweep, sweep_report],
    schedules=[nightly_schedule],
    sensors=[*SENSORS, nightly_freshness_alert],
    resources=resources(),
    executor=default_executor(),
)
