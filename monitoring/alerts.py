"""Alerts (Slack-compatible webhook and/or SNS) and the cooldown that de-duplicates them.

Kinds: `drift` (the dataset drifted), `skipped` (the window had no traffic: a separate kind, never
"no drift"), `retrain` (a training run was submitted) and `quality` (measured accuracy fell below
validation accuracy: `monitoring.quality_job`). Each (model, kind) fires at most once per cooldown,
so a quality alert neither suppresses nor is suppressed by a drift alert. The state lives in the
reports store (`<reports>/<model>/alert-state.json`), so the CronJob's pods stay stateless; the
CronJob forbids concurrent runs of one model's job, so a plain read-modify-write is enough.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitoring.errors import AlertError
from monitoring.store import Store

LOG = logging.getLogger("mlops.drift")
STATE_FILE = "alert-state.json"
DRIFT = "drift"
SKIPPED = "skipped"
RETRAIN = "retrain"
QUALITY = "quality"
WEBHOOK_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Alert:
    model: str
    kind: str
    title: str
    text: str
    link: str | None

    def message(self) -> str:
        link = f"\nReport: {self.link}" if self.link else ""
        return f"{self.title}\n{self.text}{link}"


class CooldownState:
    """Last time each kind fired for one model, persisted in the reports store."""

    def __init__(self, store: Store, model: str) -> None:
        self.store = store
        self.key = f"{model}/{STATE_FILE}"
        raw = store.read_if_present(self.key)
        self.state: dict[str, Any] = json.loads(raw) if raw else {}

    def last(self, kind: str) -> datetime | None:
        entry = self.state.get(kind)
        return datetime.fromisoformat(entry["at"]) if entry else None

    def active_until(self, kind: str, hours: float, now: datetime) -> datetime | None:
        """When the cooldown of `kind` ends, if it is still running at `now`."""
        last = self.last(kind)
        if last is None:
            return None
        until = last + timedelta(hours=hours)
        return until if now < until else None

    def record(self, kind: str, now: datetime, **details: Any) -> None:
        self.state[kind] = {"at": now.isoformat(), **details}
        self.store.write(
            self.key, (json.dumps(self.state, indent=2, sort_keys=True) + "\n").encode(), "application/json"
        )


def post_webhook(url: str, alert: Alert) -> None:
    body = json.dumps({"text": alert.message()}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        if response.status >= 300:
            raise AlertError(f"webhook answered HTTP {response.status}")


def publish_sns(topic_arn: str, alert: Alert) -> None:
    import boto3

    client = boto3.client("sns", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SNS") or None)
    client.publish(TopicArn=topic_arn, Subject=alert.title[:100], Message=alert.message())


def send(alert: Alert, webhook_url: str | None, sns_topic_arn: str | None) -> list[str]:
    """Send on every configured channel; returns the channels that took it. Raises AlertError only
    when every configured channel failed (one failing channel must not hide the alert)."""
    delivered: list[str] = []
    failures: list[str] = []
    if webhook_url:
        try:
            post_webhook(webhook_url, alert)
            delivered.append("webhook")
        except (urllib.error.URLError, OSError, AlertError) as error:
            failures.append(f"webhook: {error}")
    if sns_topic_arn:
        try:
            publish_sns(sns_topic_arn, alert)
            delivered.append("sns")
        except Exception as error:  # botocore raises many types; the message is what matters
            failures.append(f"sns: {error}")
    for failure in failures:
        LOG.error("alert delivery failed (%s)", failure)
    if failures and not delivered:
        raise AlertError("; ".join(failures))
    return delivered


def now_utc() -> datetime:
    return datetime.now(tz=UTC)
