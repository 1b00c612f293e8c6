"""Peer engines in the pipeline: each installed peer beside the engine under its profile.

For every peer that is installed (vectorbt and backtrader with the dev extra, zipline and
nautilus_trader in their side environments) two assets run on the same data and weights:
`backtest_<peer>`, the real peer, and `backtest_engine_<peer>`, our engine under the
peer's profile; `trade_gap` compares them and the check `parity_with_engine` requires them
equal. Peers run on the first `PeerSettings.max_assets` assets (by name) to keep the
nightly run short, in the concurrency pool `peer_engines` so that they do not oversubscribe
the cores (the instance sets the pool's limit). A peer that is not installed is never left
out silently: `peer_engines` lists every peer, whether it runs, and how to install the
missing ones, and warns in the run's log.
"""

import importlib.util

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    ConfigurableResource,
    MetadataValue,
    asset,
    asset_check,
)

from assets.backtests import engine_tables, finish
from assets.groups import PEERS
from assets.resources import ExecutionSettings
from assets.types import BacktestTables, PeerEnginesFrame
from engine import BacktestConfig, run_backtest
from engine.data.market import Market
from engine.results.checks import fill_parity
from engine.results.derive import derive_tables

PEERS_KNOWN = ("vectorbt", "backtrader", "zipline", "nautilus")
PEER_POOL = "peer_engines"
INSTALL = {
    "vectorbt": "pip install 'vectorbt==1.2.0' 'vectorbt-rust==1.2.0' (or pip install -e '.[dev]')",
    "backtrader": "pip install 'backtrader==1.9.78.123' (or pip install -e '.[dev]')",
    "zipline": "python -m engine.peers.zipline --setup (a side environment: zipline-reloaded "
               "needs pandas < 3)",
    "nautilus": "python -m engine.peers.nautilus --setup (a side environment: nautilus_trader "
                "1.221.0 needs pandas < 3)",
}


class PeerSettings(ConfigurableResource):
    """How much of the universe the peer comparisons run on."""

    max_assets: int = 100


def installed_peers() -> list[str]:
    """The peers this environment can run."""
    from engine.peers import nautilus, zipline

    found = [name for name in ("vectorbt", "backtrader") if importlib.util.find_spec(name)]
    for name, module, package in (("zipline", zipline, "zipline"),
                                  ("nautilus", nautilus, "nautilus_trader")):
        if importlib.util.find_spec(package) or (module.SIDE_ENV / ".tradegap-ready").exists():
            found.append(name)
    return found


def peer_config(peer: str, settings: ExecutionSettings) -> BacktestConfig:
    """The peer's profile with the pipeline's cash (and percentage fees where it has them)."""
    shared = {"initial_cash": settings.initial_cash}
    if peer != "zipline":
        shared["fees"] = settings.fees
    return BacktestConfig.for_profile(peer, **shared)


def universe(bars: pl.DataFrame, weights: pl.DataFrame, max_assets: int):
    """Bars and weights of the first `max_assets` assets by name."""
    keep = bars["asset"].unique().sort().head(max_assets).implode()
    return (bars.filter(pl.col("asset").is_in(keep)),
            weights.filter(pl.col("asset").is_in(keep)))


def run_peer(peer: str, bars: pl.DataFrame, weights: pl.DataFrame, config: BacktestConfig):
    if peer == "vectorbt":
        from engine.peers.vectorbt import run_vectorbt as run
    elif peer == "backtrader":
        from engine.peers.backtrader import run_backtrader as run
    elif peer == "nautilus":
        from engine.peers.nautilus import run_nautilus as run
    else:
        from engine.peers.zipline import run_zipline as run
    return run(bars, weights, config)


def peer_definitions(peer: str) -> tuple[list, list]:
    """The two backtest assets and the parity check of one peer."""

    def backtest(context, market_data, target_weights, settings, peers, run_tables):
        bars, weights = universe(market_data, target_weights, peers.max_assets)
        config = peer_config(peer, settings)
        return finish(context, run_tables(bars, weights, config), (bars, weights), config)

    def peer_tables(bars, weights, config) -> dict[str, pl.DataFrame]:
        result = run_peer(peer, bars, weights, config)
        return derive_tables(result.fills, result.equity, Market.from_bars(bars),
                             config.initial_cash)

    @asset(name=f"backtest_{peer}", group_name=PEERS, dagster_type=BacktestTables,
           pool=PEER_POOL)
    def peer_backtest(
        context: AssetExecutionContext, market_data: pl.DataFrame,
        target_weights: pl.DataFrame, settings: ExecutionSettings, peers: PeerSettings,
    ) -> dict[str, pl.DataFrame]:
        """The real peer engine on the pipeline's data and weights."""
        return backtest(context, market_data, target_weights, settings, peers, peer_tables)

    @asset(name=f"backtest_engine_{peer}", group_name=PEERS, dagster_type=BacktestTables,
           pool=PEER_POOL)
    def engine_backtest(
        context: AssetExecutionContext, market_data: pl.DataFrame,
        target_weights: pl.DataFrame, settings: ExecutionSettings, peers: PeerSettings,
    ) -> dict[str, pl.DataFrame]:
        """Our engine under the peer's profile, on the same data and weights."""
        return backtest(context, market_data, target_weights, settings, peers,
                        lambda bars, weights, config: engine_tables(
                            run_backtest(bars, weights, config)))

    @asset_check(asset=f"backtest_{peer}", name="parity_with_engine",
                 additional_ins={"engine": AssetIn(f"backtest_engine_{peer}")})
    def parity(
        peer_tables: dict[str, pl.DataFrame], engine: dict[str, pl.DataFrame]
    ) -> AssetCheckResult:
        """The engine under this peer's profile equals the peer on every fill (1e-9)."""
        result = fill_parity(engine, peer_tables)
        return AssetCheckResult(
            passed=result.ok, description=f"{peer}: {result.summary()}",
            metadata={"matched": MetadataValue.int(result.matched),
                      "final_equity_gap": MetadataValue.float(result.final_equity_gap)})

    return [peer_backtest, engine_backtest], [parity]


def peer_status(installed: list[str]) -> pl.DataFrame:
    """One row per known peer: whether it runs here, and how to install it if not."""
    return pl.DataFrame({
        "peer": list(PEERS_KNOWN),
        "installed": [peer in installed for peer in PEERS_KNOWN],
        "install": [None if peer in installed else INSTALL[peer] for peer in PEERS_KNOWN],
    }, schema={"peer": pl.String, "installed": pl.Boolean, "install": pl.String})


def build_peer_engines(installed: list[str]):
    """The `peer_engines` asset: which peers run beside the engine in this graph."""

    @asset(name="peer_engines", group_name=PEERS, dagster_type=PeerEnginesFrame)
    def peer_engines(context: AssetExecutionContext) -> pl.DataFrame:
        """Which peer engines run here, and how to install the ones that do not."""
        status = peer_status(installed)
        missing = status.filter(~pl.col("installed"))
        for row in missing.iter_rows(named=True):
            context.log.warning(f"peer {row['peer']} is not installed, so its backtests and "
                                f"parity check are not in this graph; install: {row['install']}")
        context.add_output_metadata({
            "running": MetadataValue.text(", ".join(installed) or "none"),
            "missing": MetadataValue.md("\n".join(
                f"- **{r['peer']}**: `{r['install']}`" for r in missing.iter_rows(named=True))
                or "none: every peer runs"),
        })
        return status

    return peer_engines


def all_peer_definitions(peers: list[str]) -> tuple[list, list]:
    """Assets and checks of every peer in `peers`, and the asset that lists them all."""
    assets, checks = [build_peer_engines(peers)], []
    for peer in peers:
        peer_assets, peer_checks = peer_definitions(peer)
        assets += peer_assets
        checks += peer_checks
    return assets, checks


def peer_backtests(peers: list[str]) -> list[str]:
    """The backtest assets of `peers`: each real peer and the engine under its profile."""
    return [name for peer in peers for name in (f"backtest_{peer}", f"backtest_engine_{peer}")]


def comparisons(peers: list[str]) -> list[tuple[str, str, frozenset]]:
    """trade_gap pairs: each peer against the engine under its profile (no cause allowed)."""
    return [(f"backtest_engine_{peer}", f"backtest_{peer}", frozenset()) for peer in peers]
