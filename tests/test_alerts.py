"""Alerts: a failed run, a failed check and a missed night each send one alert, through the
alerts file (always), a Slack webhook or SMTP email (when configured).

Failures are real: a run on bad prices, a run whose reference drifts from the engine. The
sensors are evaluated as the daemon evaluates them, against a persistent instance; Slack
and SMTP are servers on the loopback address.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    EnvVar,
    build_sensor_context,
)
from dagster._core.test_utils import freeze_time

from pipelines.alerts import AlertChannel, AlertDeliveryError, alert_channel
from pipelines.definitions import defs, resources
from pipelines.freshness import NIGHTLY_OUTPUTS, nightly_freshness_alert
from tests.test_pipeline import SMALL, drift_the_reference

pytestmark = pytest.mark.slow


def read_alerts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def instance(tmp_path) -> Iterator[DagsterInstance]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with DagsterInstance.local_temp(str(home)) as persistent:
        yield persistent


@pytest.fixture
def alerts(tmp_path) -> AlertChannel:
    return AlertChannel(alerts_file=str(tmp_path / "alerts" / "alerts.jsonl"))


def test_a_failed_run_sends_one_alert_naming_the_step_and_the_cause(tmp_path, instance, alerts):
    sensor = defs.resolve_sensor_def("run_failure_alert")
    first = sensor.evaluate_tick(build_sensor_context(
        instance=instance, definitions=defs, resources={"alerts": alerts}))
    bad = tmp_path / "prices.csv"
    bad.write_text("timestamp,asset,open,high,low,close,volume\n2024-01-02,A,1,0.5,1,1,1\n")
    run = defs.resolve_job_def("nightly_regression").execute_in_process(
        instance=instance, raise_on_error=False, resources=resources(str(tmp_path / "a")),
        run_config={"ops": {"market_data": {"config": {"prices_paths": [str(bad)]}}}})
    assert not run.success
    assert read_alerts(Path(alerts.alerts_file)) == []

    sensor.evaluate_tick(build_sensor_context(
        instance=instance, definitions=defs, resources={"alerts": alerts},
        cursor=first.cursor))
    [alert] = read_alerts(Path(alerts.alerts_file))
    assert alert["kind"] == "run_failure"
    assert (alert["job"], alert["run_id"], alert["failed_steps"]) == (
        "nightly_regression", run.run_id, "market_data")
    assert alert["error"].startswith("InputError: prices.csv: column 'high': high below open")


def test_a_failed_check_sends_an_alert_and_a_warning_does_not(tmp_path, instance, alerts,
                                                               monkeypatch):
    drift_the_reference(monkeypatch)
    sensors = {name: defs.resolve_sensor_def(name)
               for name in ("check_failure_alert", "run_failure_alert")}
    cursors = {name: sensor.evaluate_tick(build_sensor_context(
        instance=instance, definitions=defs, resources={"alerts": alerts})).cursor
        for name, sensor in sensors.items()}
    run = defs.resolve_job_def("nightly_regression").execute_in_process(
        instance=instance, raise_on_error=False, run_config=SMALL,
        resources=resources(str(tmp_path / "a")))
    failed = {(e.asset_key.to_user_string(), e.check_name, e.severity.value)
              for e in run.get_asset_check_evaluations() if not e.passed}
    assert {("backtest_reference", "engine_parity", "ERROR"),
            ("backtest_engine", "matches_baseline", "WARN")} <= failed

    for name, sensor in sensors.items():  # the run's outcome decides which sensor reports
        sensor.evaluate_tick(build_sensor_context(
            instance=instance, definitions=defs, resources={"alerts": alerts},
            cursor=cursors[name]))
    sent = {(a["asset"], a["check"]): a for a in read_alerts(Path(alerts.alerts_file))
            if a["kind"] == "check_failure"}
    # the drifted fills break parity and the reference's own ledger; the warning stays quiet
    assert set(sent) == {("backtest_reference", "engine_parity"),
                         ("backtest_reference", "ledger_identities")}
    parity = sent["backtest_reference", "engine_parity"]
    assert parity["run_id"] == run.run_id
    assert "fills" in parity["description"]


def test_a_missed_night_sends_one_alert_per_deadline(instance, alerts):
    day = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    with freeze_time(day + dt.timedelta(hours=2, minutes=30)):  # the 02:00 run finished
        for name in NIGHTLY_OUTPUTS:
            instance.report_runless_asset_event(AssetMaterialization(name))

    def evaluate(at: dt.datetime, cursor: str | None) -> str | None:
        with freeze_time(at):
            context = build_sensor_context(instance=instance, resources={"alerts": alerts},
                                           cursor=cursor)
            nightly_freshness_alert(context)
        return context.cursor

    cursor = evaluate(day + dt.timedelta(hours=5), None)
    assert read_alerts(Path(alerts.alerts_file)) == []  # fresh for the 04:00 deadline
    cursor = evaluate(day + dt.timedelta(days=1, hours=5), cursor)  # the next night missed
    [alert] = read_alerts(Path(alerts.alerts_file))
    assert alert["kind"] == "missed_night"
    assert alert["deadline"] == "2026-03-11T04:00:00+00:00"
    assert set(alert["last_materialized"]) == set(NIGHTLY_OUTPUTS)
    assert alert["last_materialized"]["trade_gap"] == "2026-03-10T02:30:00+00:00"
    evaluate(day + dt.timedelta(days=1, hours=6), cursor)
    assert len(read_alerts(Path(alerts.alerts_file))) == 1  # once per deadline


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def test_a_slack_webhook_receives_the_alert_text(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    channel = AlertChannel(alerts_file=str(tmp_path / "alerts.jsonl"), slack_webhook=url)
    try:
        record = channel.send("run_failure", "run of nightly_regression failed",
                              {"run_id": "r1"})
    finally:
        server.server_close()
    assert record["sent_to"] == ["slack"]
    [posted] = _Webhook.received
    assert posted["text"].startswith("tradegap run_failure: run of nightly_regression failed")
    assert "run_id: r1" in posted["text"]
    assert read_alerts(tmp_path / "alerts.jsonl")[0]["sent_to"] == ["slack"]


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for one message: greet, accept, store the DATA."""

    messages: ClassVar[list[bytes]] = []

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.split(b" ")[0].strip().upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                lines = []
                while (body := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(body)
                type(self).messages.append(b"".join(lines))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_an_smtp_server_receives_the_alert_email(tmp_path):
    server = socketserver.TCPServer(("127.0.0.1", 0), _Smtp)
    threading.Thread(target=server.handle_request, daemon=True).start()
    channel = AlertChannel(alerts_file=str(tmp_path / "alerts.jsonl"), smtp_host="127.0.0.1",
                           smtp_port=server.server_address[1], smtp_to="desk@example.org",
                           smtp_starttls=False)
    try:
        record = channel.send("check_failure", "check engine_parity failed", {"run_id": "r2"})
    finally:
        server.server_close()
    assert record["sent_to"] == ["email"]
    [raw] = _Smtp.messages
    email = message_from_bytes(raw)
    assert email["Subject"] == "[tradegap] check engine_parity failed"
    assert email["To"] == "desk@example.org"
    assert "run_id: r2" in email.get_payload()


def test_an_unreachable_channel_is_recorded_and_raised(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    channel = AlertChannel(alerts_file=str(tmp_path / "alerts.jsonl"),
                           slack_webhook=f"http://127.0.0.1:{closed}/hook")
    with pytest.raises(AlertDeliveryError, match="slack"):
        channel.send("run_failure", "run failed", {})
    [record] = read_alerts(tmp_path / "alerts.jsonl")
    assert record["delivery_errors"][0].startswith("slack:")


def test_the_environment_configures_the_channels_and_keeps_secrets_out_of_config(
    tmp_path, monkeypatch,
):
    monkeypatch.setenv("TRADEGAP_ALERT_SLACK_WEBHOOK", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("TRADEGAP_ALERT_SMTP_HOST", "mail.internal")
    monkeypatch.setenv("TRADEGAP_ALERT_SMTP_PORT", "2525")
    monkeypatch.setenv("TRADEGAP_ALERT_SMTP_STARTTLS", "false")
    monkeypatch.setenv("TRADEGAP_ALERT_SMTP_PASSWORD", "s3cret")
    channel = alert_channel(tmp_path)
    assert channel.alerts_file == str(tmp_path / "alerts" / "alerts.jsonl")
    assert (channel.smtp_host, channel.smtp_port, channel.smtp_starttls) == (
        "mail.internal", 2525, False)
    raw = channel.model_dump()
    assert raw["slack_webhook"] == EnvVar("TRADEGAP_ALERT_SLACK_WEBHOOK")
    assert raw["smtp_password"] == EnvVar("TRADEGAP_ALERT_SMTP_PASSWORD")


def test_alert_sensors_run_by_default():
    for name in ("run_failure_alert", "check_failure_alert", "nightly_freshness_alert"):
        assert defs.resolve_sensor_def(name).default_status.value == "RUNNING"
