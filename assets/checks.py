"""Asset checks shown in the UI: ledger identities, engine-reference parity, baselines.

Parity is blocking: when the engine and the reference disagree, nothing downstream runs.
"""

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    MetadataValue,
    asset_check,
)

from assets.resources import ArtifactStore, ExecutionSettings
from engine.results.checks import fill_parity, ledger_problems

Tables = dict[str, pl.DataFrame]


def _ledger_result(tables: Tables, settings: ExecutionSettings) -> AssetCheckResult:
    problems = ledger_problems(tables, settings.config().initial_cash)
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) or "equity, cash and positions agree with the fills",
        metadata={"problems": MetadataValue.int(len(problems))},
    )


@asset_check(asset="backtest_engine", name="ledger_identities")
def engine_ledger(backtest_engine: Tables, settings: ExecutionSettings) -> AssetCheckResult:
    """equity = cash + Σ positions; cash = initial − Σ fills − fees; positions = Σ fills."""
    return _ledger_result(backtest_engine, settings)


@asset_check(asset="backtest_reference", name="ledger_identities")
def reference_ledger(backtest_reference: Tables, settings: ExecutionSettings) -> AssetCheckResult:
    """equity = cash + Σ positions; cash = initial − Σ fills − fees; positions = Σ fills."""
    return _ledger_result(backtest_reference, settings)


@asset_check(asset="backtest_reference", name="engine_parity", blocking=True,
             additional_ins={"backtest_engine": AssetIn("backtest_engine")})
def engine_parity(backtest_reference: Tables, backtest_engine: Tables) -> AssetCheckResult:
    """Engine and reference agree on every fill (quantity, price, fee) and final equity to 1e-9."""
    parity = fill_parity(backtest_engine, backtest_reference)
    return AssetCheckResult(
        passed=parity.ok,
        description=parity.summary(),
        metadata={
            "fills_engine": MetadataValue.int(parity.fills_a),
            "fills_reference": MetadataValue.int(parity.fills_b),
            "matched": MetadataValue.int(parity.matched),
            "final_equity_gap": MetadataValue.float(parity.final_equity_gap),
            **{f"max_gap_{k}": MetadataValue.float(v) for k, v in parity.max_gap.items()},
        },
    )


NO_BASELINE = "no baseline"


def _baseline_result(backtest: str, tables: Tables, store: ArtifactStore) -> AssetCheckResult:
    """One of four states, in the metadata's `state`: `unchanged` (passed), `moved` (failed),
    `inputs changed` (passed, a warning), `no baseline` (not passed, a warning: nothing to
    compare with is not a pass)."""
    accepted = store.load_baseline(backtest)
    current = tables["fingerprint"]["fingerprint"][0]
    if accepted is None:
        return AssetCheckResult(
            passed=False, severity=AssetCheckSeverity.WARN,
            description=f"{NO_BASELINE}: nothing accepted to compare with; run `tradegap "
                        "accept-baseline` once these results are right",
            metadata={"state": MetadataValue.text(NO_BASELINE),
                      "fingerprint": MetadataValue.text(current)})
    baseline, digest = accepted
    if digest != current:
        return AssetCheckResult(
            passed=True, severity=AssetCheckSeverity.WARN,
            description=f"inputs or settings changed ({digest} → {current}); "
                        "accept a new baseline if this is intended",
            metadata={"state": MetadataValue.text("inputs changed"),
                      "fingerprint": MetadataValue.text(current)})
    parity = fill_parity(tables, baseline)
    return AssetCheckResult(
        passed=parity.ok,
        description=("unchanged: " if parity.ok else
                     "results moved while inputs and settings did not: ") + parity.summary(),
        metadata={"state": MetadataValue.text("unchanged" if parity.ok else "moved"),
                  "fingerprint": MetadataValue.text(current),
                  "final_equity_gap": MetadataValue.float(parity.final_equity_gap)},
    )


@asset_check(asset="backtest_engine", name="matches_baseline")
def engine_baseline(backtest_engine: Tables, store: ArtifactStore) -> AssetCheckResult:
    """Results equal the accepted baseline unless the inputs or settings changed."""
    return _baseline_result("backtest_engine", backtest_engine, store)


@asset_check(asset="backtest_reference", name="matches_baseline")
def reference_baseline(backtest_reference: Tables, store: ArtifactStore) -> AssetCheckResult:
    """Results equal the accepted baseline unless the inputs or settings changed."""
    return _baseline_result("backtest_reference", backtest_reference, store)


@asset_check(asset="trade_gap", name="no_unexplained_gap")
def no_unexplained_gap(trade_gap: Tables) -> AssetCheckResult:
    """No comparison shows an unexplained difference or a root cause it should not have."""
    summary = trade_gap["summary"]
    bad = summary.filter(~pl.col("expected"))
    return AssetCheckResult(
        passed=bad.height == 0,
        description=("; ".join(f"{r['pair']}: {r['verdict']} ({r['root_causes']})"
                               for r in bad.iter_rows(named=True))
                     or f"{summary.height} comparisons, all as expected"),
        metadata={"comparisons": MetadataValue.int(summary.height),
                  "unexpected": MetadataValue.int(bad.height)},
    )


@asset_check(asset="trade_gap", name="external_log_explained")
def external_log_explained(trade_gap: Tables) -> AssetCheckResult:
    """Your own engine's log differs from the reference only in ways the analysis explains."""
    summary = trade_gap["summary"].filter(pl.col("pair") == EXTERNAL_NAME)
    if summary.height == 0:
        return AssetCheckResult(passed=True, metadata={"state": MetadataValue.text(
            "not configured: set backtest_external's fills_path in the run config")},
            description="no external fill log configured")
    row = summary.row(0, named=True)
    return AssetCheckResult(
        passed=row["verdict"] in ("identical", "explained"),
        description=f"{row['verdict']}: {row['headline']}",
        metadata={"verdict": MetadataValue.text(row["verdict"]),
                  "equity gap": MetadataValue.float(row["equity_gap"]),
                  "first cause": MetadataValue.text(row["first_cause"] or "none"),
                  "root causes": MetadataValue.text(row["root_causes"])},
    )


EXTERNAL_NAME = "backtest_external vs backtest_reference"
CHECKS = [engine_ledger, reference_ledger, engine_parity, engine_baseline, reference_baseline,
          no_unexplained_gap, external_log_explained]
