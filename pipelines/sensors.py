"""Sensors that alert: a failed run, a failed check (a missed night: `pipelines/freshness.py`).

They run by default wherever the daemon runs (`make ui`, `dg dev`, a deployment) and send
through the `alerts` resource (`pipelines/alerts.py`). When a run of this code location
ends, every check it evaluated that failed with severity ERROR is alerted (parity, ledger
identities, results that moved from their baseline, unexplained trade gaps); a failed run
is alerted too, with its failed steps and the root cause. Warnings (a backtest without an
accepted baseline) show in the UI without an alert. Both are run-status sensors, which
read the event log the same way on SQLite and Postgres, and watch every run of the
instance, whatever started it: the UI, a schedule, a backfill or `dagster job execute`
(which records no code location). A run whose process died is marked failed by the run
monitoring daemon (`pipelines/launcher.py`) and alerted here like any other failure.
"""

from __future__ import annotations

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)

from pipelines.alerts import AlertChannel
from pipelines.failures import root_cause


def failed_checks(instance: DagsterInstance, run_id: str) -> list[dict[str, object]]:
    """The failed checks of severity ERROR that run `run_id` evaluated."""
    failed = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.passed or evaluation.severity != AssetCheckSeverity.ERROR:
            continue
        failed.append({
            "asset": evaluation.asset_key.to_user_string(), "check": evaluation.check_name,
            "run_id": run_id, "description": evaluation.description,
        })
    return failed


def send_check_alerts(alerts: AlertChannel, instance: DagsterInstance, run_id: str) -> int:
    """One alert per failed check of the run; how many were sent."""
    failed = failed_checks(instance, run_id)
    for check in failed:
        alerts.send("check_failure", f"check {check['check']} on {check['asset']} failed", check)
    return len(failed)


@run_failure_sensor(name="run_failure_alert", default_status=DefaultSensorStatus.RUNNING,
                    monitor_all_code_locations=True,
                    description="Alert on every failed run, and on the checks it failed.")
def run_failure_alert(context: RunFailureSensorContext, alerts: AlertChannel) -> None:
    """Send one alert naming the job, the run, its failed steps and the root cause."""
    run = context.dagster_run
    failures = context.get_step_failure_events()
    alerts.send("run_failure", f"run of {run.job_name} failed", {
        "job": run.job_name, "run_id": run.run_id,
        "partition": run.tags.get("dagster/partition"),
        "failed_steps": ", ".join(sorted({event.step_key for event in failures})) or None,
        "error": (root_cause(failures[0].event_specific_data.error) if failures
                  else context.failure_event.message),
    })
    send_check_alerts(alerts, context.instance, run.run_id)


@run_status_sensor(run_status=DagsterRunStatus.SUCCESS, name="check_failure_alert",
                   default_status=DefaultSensorStatus.RUNNING, monitor_all_code_locations=True,
                   description="Alert on every failed check (severity ERROR) of a finished run.")
def check_failure_alert(context: RunStatusSensorContext, alerts: AlertChannel) -> None:
    """Send one alert per failed check of a run that otherwise succeeded."""
    send_check_alerts(alerts, context.instance, context.dagster_run.run_id)


SENSORS = [run_failure_alert, check_failure_alert]
