"""Alerts: one message per failed run, failed check or missed night, through configured
channels.

Every alert is appended as one JSON line to `<artifacts>/alerts/alerts.jsonl` (offline, and
the record of what was sent). When the environment names them, it also goes to:

- Slack: `TRADEGAP_ALERT_SLACK_WEBHOOK`, an incoming-webhook URL (the text is posted);
- email: `TRADEGAP_ALERT_SMTP_HOST` with `TRADEGAP_ALERT_SMTP_TO` (comma-separated), and
  optionally `_PORT` (587), `_FROM`, `_USER`, `_PASSWORD` and `_STARTTLS` (`true`).

A channel that fails is noted in the JSON line and raises after the others were tried, so
the sensor's tick shows the failure in the UI.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import urllib.request
from email.message import EmailMessage
from pathlib import Path

from dagster import ConfigurableResource, EnvVar

ENV_PREFIX = "TRADEGAP_ALERT_"
SECRETS = ("SLACK_WEBHOOK", "SMTP_PASSWORD")
TIMEOUT_SECONDS = 20


class AlertDeliveryError(RuntimeError):
    """An alert was recorded in the alerts file but a configured channel refused it."""


class AlertChannel(ConfigurableResource):
    """Where alerts go: the alerts file always; Slack and email when configured."""

    alerts_file: str
    slack_webhook: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str = "tradegap@localhost"
    smtp_to: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True

    def send(self, kind: str, subject: str, details: dict[str, object]) -> dict[str, object]:
        """Record the alert, then deliver it to every configured channel; the record."""
        record: dict[str, object] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "kind": kind, "subject": subject, **details,
        }
        text = f"tradegap {kind}: {subject}\n" + "\n".join(
            f"{key}: {value}" for key, value in details.items())
        failures = []
        for channel, deliver in (("slack", self._slack), ("email", self._email)):
            try:
                if deliver(subject, text):
                    record.setdefault("sent_to", []).append(channel)
            except (OSError, smtplib.SMTPException) as error:
                failures.append(f"{channel}: {error}")
        if failures:
            record["delivery_errors"] = failures
        path = Path(self.alerts_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as alerts:
            alerts.write(json.dumps(record, default=str) + "\n")
        if failures:
            raise AlertDeliveryError("; ".join(failures))
        return record

    def _slack(self, subject: str, text: str) -> bool:
        if not self.slack_webhook:
            return False
        request = urllib.request.Request(
            self.slack_webhook, data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
            return True

    def _email(self, subject: str, text: str) -> bool:
        if not (self.smtp_host and self.smtp_to):
            return False
        message = EmailMessage()
        message["Subject"] = f"[tradegap] {subject}"
        message["From"] = self.smtp_from
        message["To"] = self.smtp_to
        message.set_content(text)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
            if self.smtp_starttls:
                smtp.starttls()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password or "")
            smtp.send_message(message)
        return True


def alert_channel(base_dir: str | Path) -> AlertChannel:
    """The channel the environment configures, with the alerts file under `base_dir`.

    Secrets are passed as `EnvVar`s, so the UI shows their names, never their values.
    """
    settings: dict[str, object] = {"alerts_file": str(Path(base_dir, "alerts", "alerts.jsonl"))}
    for field, info in AlertChannel.model_fields.items():
        name = ENV_PREFIX + field.upper()
        if field == "alerts_file" or name not in os.environ:
            continue
        if field.upper() in SECRETS:
            settings[field] = EnvVar(name)
        elif info.annotation in (bool, "bool"):
            settings[field] = os.environ[name].strip().lower() in ("1", "true", "yes")
        elif info.annotation in (int, "int"):
            settings[field] = int(os.environ[name])
        else:
            settings[field] = os.environ[name]
    return AlertChannel(**settings)
