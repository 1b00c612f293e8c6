"""`make run`: materialize the main graph in-process on the embedded default data.

Prints one line per step as it finishes, then a summary: metrics per backtest, the parity
verdict and where the artifacts are. The run writes into a copy of the artifact folder
beside it, swapped in when every step succeeded, so the folder always holds one run's
artifacts whole. Runs launched from the UI or the schedule write into the folder itself (one
at a time: `pipelines.jobs.ARTIFACTS_TAG`).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import polars as pl
from dagster import AssetCheckSeverity, DagsterInstance, Definitions, logger

from pipelines.failures import bad_input, innermost, root_cause

SHOWN = ("STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION")


class _Progress(logging.Handler):
    """Print step successes, failures and check results as they happen."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.perf_counter()
        self.checks: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", {})
        event = meta.get("dagster_event")
        elapsed = time.perf_counter() - self.start
        if event is None and record.levelno >= logging.WARNING and meta.get("orig_message"):
            print(f"  [{elapsed:5.1f}s] {meta.get('step_key') or 'run'} warning: "
                  f"{meta['orig_message']}", flush=True)
        if event is None or event.event_type_value not in SHOWN:
            return
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            verdict = ("passed" if data.passed else
                       "warning" if data.severity == AssetCheckSeverity.WARN else "FAILED")
            label = f"check {data.asset_key.to_user_string()}:{data.check_name} {verdict}"
            self.checks.add(event.step_key)
        elif event.step_key in self.checks:
            return
        elif event.event_type_value == "STEP_SUCCESS":
            label = f"{event.step_key} done"
        else:
            label = f"{event.step_key} FAILED: {root_cause(event.event_specific_data.error)}"
        print(f"  [{elapsed:5.1f}s] {label}", flush=True)


@logger(description="One line per finished step or check, for the terminal.")
def progress_logger(_) -> logging.Logger:
    log = logging.Logger("tradegap.progress", level=logging.DEBUG)
    log.addHandler(_Progress())
    return log


EXIT_STEP_FAILED = 1
EXIT_CHECK_FAILED = 3


def run_main_job(base: Path, external_fills: str | None = None,
                 run_config: dict | None = None, config_name: str = "run config") -> int:
    """Run `nightly_regression` in-process with artifacts under `base`; its exit code.

    0 when every step succeeded and no ERROR-severity check failed; `EXIT_STEP_FAILED` when a
    step failed; `EXIT_CHECK_FAILED` when every step ran but an ERROR check failed (each is
    named on stderr); an InputError when every failed step failed on bad input. `base` must
    be new, empty or a tradegap artifact folder, and is locked for the run
    (`pipelines.lock`). The run writes into a copy of `base` beside it, swapped in when every
    step succeeded (`artifacts.update_directory`): a run that fails or is stopped leaves
    `base` exactly as it was. `external_fills` is your engine's fill log, compared with the
    reference; `run_config` (`pipelines.run_config.user_run_config`: the user's files and
    settings) is merged in, and refused as bad input (named `config_name`) before anything
    is written when the job does not take it.
    """
    from engine.results.artifacts import claim_output, mark_folder
    from pipelines.lock import artifact_lock
    from pipelines.run_config import merge, user_inputs

    claim_output(base, "artifacts", inputs=(external_fills, *user_inputs(run_config or {})))
    config = merge(run_config or {}, {"loggers": {"progress": {}}, **(
        {"ops": {"backtest_external": {"config": {"fills_path": external_fills}}}}
        if external_fills else {})})
    _check_config(_job_into(base), config, config_name)
    base.mkdir(parents=True, exist_ok=True)
    mark_folder(base, "artifacts")
    with artifact_lock(base):
        start = time.perf_counter()
        print(f"tradegap: running nightly_regression in-process into {base}/", flush=True)
        result = _run_aside(base, config)
        elapsed = time.perf_counter() - start
        return report_outcome(result, base, elapsed)


def _job_into(folder: Path):
    """`nightly_regression` with its artifacts (IO manager, store, alerts) under `folder`."""
    from pipelines.definitions import ASSETS, CHECKS, resources
    from pipelines.jobs import nightly_regression

    defs = Definitions(assets=ASSETS, asset_checks=CHECKS, jobs=[nightly_regression],
                       resources=resources(str(folder)), loggers={"progress": progress_logger})
    return defs.resolve_job_def("nightly_regression")


class _Unfinished(Exception):
    """A run in which a step failed or was stopped: its artifacts are not swapped in."""

    def __init__(self, result) -> None:
        super().__init__("a step failed or was stopped")
        self.result = result


def _run_aside(base: Path, config: dict):
    """The job's result, run into a copy of `base` that replaces it only when every step
    succeeded (an ERROR check that failed is a verdict on whole artifacts: they are kept)."""
    from engine.results.artifacts import update_directory

    finished = []

    def fill(tmp: Path) -> None:
        result = _job_into(tmp).execute_in_process(instance=DagsterInstance.ephemeral(),
                                                   raise_on_error=False, run_config=config)
        if not result.success or _step_failures(result):
            raise _Unfinished(result)
        finished.append(result)

    try:
        update_directory(base, fill)
    except _Unfinished as unfinished:
        return unfinished.result
    return finished[0]


def _step_failures(result) -> list:
    return [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]


def report_outcome(result, base: Path, elapsed: float) -> int:
    """Print the summary or what failed; the exit code of the run. Raises InputError when
    every failed step failed on bad input (one line, as the other commands say it)."""
    from engine.errors import InputError

    failures = _step_failures(result)
    stopped = [event.step_key for event in failures
               if innermost(event.event_specific_data.error).cls_name == INTERRUPTED]
    left = f"{base} is as it was before the run (nothing of this run was kept)"
    if stopped:
        print(f"tradegap: the run was stopped during {', '.join(stopped)} after "
              f"{elapsed:.1f}s; {left}", file=sys.stderr)
        raise KeyboardInterrupt
    bad = [bad_input(event.event_specific_data.error) for event in failures]
    if bad and None not in bad:
        source, _, problem = "; ".join(dict.fromkeys(bad)).partition(": ")
        raise InputError(source, problem)
    failed_steps = [(event.step_key, root_cause(event.event_specific_data.error))
                    for event in failures]
    if failed_steps or not result.success:
        for step, cause in failed_steps:
            print(f"tradegap: step {step} failed: {cause}", file=sys.stderr)
        print(f"tradegap: the run failed after {elapsed:.1f}s; {left}", file=sys.stderr)
        return EXIT_STEP_FAILED
    print_summary(result, base, elapsed)
    failed_checks = [evaluation for evaluation in result.get_asset_check_evaluations()
                     if not evaluation.passed
                     and evaluation.severity == AssetCheckSeverity.ERROR]
    for evaluation in failed_checks:
        print(f"tradegap: check {evaluation.asset_key.to_user_string()}:"
              f"{evaluation.check_name} failed (ERROR): {evaluation.description}",
              file=sys.stderr)
    return EXIT_CHECK_FAILED if failed_checks else 0


def _check_config(job, config: dict, name: str) -> None:
    """Refuse a run config the job does not take, in one line naming its first error (less
    the whole schema Dagster appends)."""
    from dagster import DagsterInvalidConfigError, validate_run_config

    from engine.errors import InputError

    try:
        validate_run_config(job, config)
    except DagsterInvalidConfigError as error:
        first = error.errors[0].message if error.errors else str(error)
        first = first.split(" Expected:")[0].strip()
        raise InputError(name, f"not a run config of nightly_regression: {first}") from None


INTERRUPTED = "DagsterExecutionInterruptedError"  # a step stopped by Ctrl-C or SIGTERM


def print_summary(result, base: Path, elapsed: float) -> None:
    """Metrics per backtest, the parity verdict and the artifact locations."""
    summary = pl.read_parquet(base / "performance_summary.parquet")
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   float_precision=4, tbl_width_chars=120):
        print(summary)
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.check_name == "engine_parity":
            verdict = "PASSED" if evaluation.passed else "FAILED"
            print(f"parity engine vs reference: {verdict}: {evaluation.description}")
        if evaluation.check_name == "matches_baseline":
            print(f"baseline {evaluation.asset_key.to_user_string()}: "
                  f"{evaluation.description}")
    peers = base / "peer_engines.parquet"
    if peers.is_file():
        for row in pl.read_parquet(peers).filter(~pl.col("installed")).iter_rows(named=True):
            print(f"WARNING: peer {row['peer']} is not installed and did not run; install: "
                  f"{row['install']}")
    gaps = base / "trade_gap" / "summary.parquet"
    if gaps.is_file():
        for row in pl.read_parquet(gaps).iter_rows(named=True):
            print(f"trade gap {row['pair']}: {row['verdict']} "
                  f"(equity gap {row['equity_gap']:+,.2f}; root causes: {row['root_causes']})")
    print(f"artifacts: {base.resolve()}  (equity plot: {base / 'performance_summary.png'}; "
          f"gap reports: {base / 'trade_gap_reports'})")
    print(f"finished in {elapsed:.1f}s")
