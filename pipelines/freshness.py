"""Freshness of the nightly outputs: a missed night is visible in the UI, and alerted.

`nightly_regression` starts at 02:00 UTC; its outputs (both backtests, the performance
summary and the trade gaps) must each have been materialized in the 24 hours before
04:00 UTC. One `FreshnessPolicy` says so: the UI shows each output's freshness state from
it (Dagster's freshness daemon), and the `nightly_freshness_alert` sensor applies the same
rule to send one alert per missed deadline (open-source Dagster does not alert on
policies). An output never materialized has no freshness state, as in Dagster's rule.
"""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    FreshnessPolicy,
    SensorEvaluationContext,
    SkipReason,
    map_asset_specs,
    sensor,
)
from dagster._time import get_current_datetime
from dagster._utils.schedules import get_latest_completed_cron_tick

from pipelines.alerts import AlertChannel

NIGHTLY_CRON = "0 2 * * *"
DEADLINE_CRON = "0 4 * * *"
WINDOW = dt.timedelta(hours=24)
TIMEZONE = "UTC"
NIGHTLY_OUTPUTS = ("backtest_engine", "backtest_reference", "performance_summary", "trade_gap")

POLICY = FreshnessPolicy.cron(deadline_cron=DEADLINE_CRON, lower_bound_delta=WINDOW,
                              timezone=TIMEZONE)


def with_freshness_policy(assets: list) -> list:
    """`assets` with the nightly freshness policy on each nightly output."""
    outputs = {AssetKey(name) for name in NIGHTLY_OUTPUTS}
    return list(map_asset_specs(
        lambda spec: spec.replace_attributes(freshness_policy=POLICY)
        if spec.key in outputs else spec, assets))


def last_deadline(now: dt.datetime) -> dt.datetime:
    """The latest deadline (04:00 UTC) at or before `now`."""
    return get_latest_completed_cron_tick(POLICY.deadline_cron, now, POLICY.timezone)


def is_stale(materialized_at: float, deadline: dt.datetime) -> bool:
    """Whether a materialization at `materialized_at` (epoch seconds) missed `deadline`: it
    is older than the window that ends there."""
    return materialized_at < (deadline - POLICY.lower_bound_delta).timestamp()


@sensor(name="nightly_freshness_alert", default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=300,
        description="Alert once per missed deadline of the nightly outputs' freshness policy.")
def nightly_freshness_alert(context: SensorEvaluationContext, alerts: AlertChannel):
    """Alert for each nightly output that missed the latest deadline (once per deadline)."""
    deadline = last_deadline(get_current_datetime(POLICY.timezone))
    if context.cursor == deadline.isoformat():
        return SkipReason(f"already checked the deadline of {deadline.isoformat()}")
    stale = {}
    for name in NIGHTLY_OUTPUTS:
        event = context.instance.get_latest_materialization_event(AssetKey(name))
        if event is not None and is_stale(event.timestamp, deadline):
            stale[name] = dt.datetime.fromtimestamp(event.timestamp, dt.UTC).isoformat(
                timespec="seconds")
    if stale:
        alerts.send("missed_night", f"nightly outputs missed the {deadline.isoformat()} "
                    "deadline", {
                        "deadline": deadline.isoformat(),
                        "window": f"materialized in the {POLICY.lower_bound_delta} before",
                        "last_materialized": stale,
                    })
    context.update_cursor(deadline.isoformat())
    return SkipReason(f"{len(stale)} stale nightly outputs at {deadline.isoformat()}")
