"""Where the model alerts go: the drift alerts' webhook, grouped so that one outage is one page.

Two halves, because Alertmanager runs in the monitoring namespace while the webhook URL is in Secret
`drift-alerts` of the models namespace (infra/drift_monitor.py), and a pod can mount Secrets of its
own namespace only:

- the top-level configuration (a chart value, `alertmanager_config`): grouping defaults, a `null`
  root receiver, and the inhibition;
- an AlertmanagerConfig object in the models namespace (`AlertRouting`) with the route and the
  webhook receiver: the operator reads the Secret there and writes the URL into the generated
  configuration, so it never passes through Pulumi. Without that Secret the operator skips the
  object (prometheus-operator v0.93.0 `selectAlertmanagerConfigs`), as the drift job skips its
  webhook: the alerts still show in Alertmanager and Grafana, nothing is posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.monitoring_job import ALERTS_SECRET
from infra.pod_security import PLATFORM_LABEL, PLATFORM_LABEL_VALUE
from observability.rules import DRIFT_JOB_STALE_ALERT

ALERTMANAGER_CONFIG_API = "monitoring.coreos.com/v1alpha1"
WEBHOOK_KEY = "webhook-url"
RECEIVER = "drift-alerts-webhook"
NULL_RECEIVER = "null"
# The drift job posts Slack-compatible `{"text": ...}` bodies (monitoring/alerts.py); Alertmanager's
# Slack integration posts the same shape to the same URL.
GROUP_BY = ["alertname", "model"]
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"
# A page is repeated while it lasts, every hour; a ticket once a day.
REPEAT_INTERVALS = {"page": "1h", "ticket": "24h"}


def alertmanager_config() -> dict[str, Any]:
    """The top-level Alertmanager configuration: given whole, as Helm replaces lists in values."""
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": GROUP_BY,
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVALS["ticket"],
            "routes": [],
        },
        "inhibit_rules": [inhibit_tickets_while_paging()],
        "receivers": [{"name": NULL_RECEIVER}],
        "templates": [],
    }


def inhibit_tickets_while_paging() -> dict[str, Any]:
    """While a model pages, its tickets wait: they are the same outage seen slower or from the side.

    Equal on `model` only: the page and the ticket of one SLO differ in alertname by window
    (ModelAvailabilityBurn1h pages, ModelAvailabilityBurn1d is the ticket), and a missing replica
    (a page) also silences the request, shedding and traffic tickets. The drift job's staleness is
    a different system (a CronJob) and is never inhibited by a serving page.
    """
    return {
        "source_matchers": ['severity="page"'],
        "target_matchers": ['severity="ticket"', f'alertname!="{DRIFT_JOB_STALE_ALERT}"'],
        "equal": ["model"],
    }


def _matcher(name: str, value: str, match_type: str = "=") -> dict[str, str]:
    return {"name": name, "value": value, "matchType": match_type}


def route_spec() -> dict[str, Any]:
    """The AlertmanagerConfig's route: the model alerts (severity page or ticket) to the webhook."""
    severities = "|".join(REPEAT_INTERVALS)
    return {
        "receiver": RECEIVER,
        "groupBy": GROUP_BY,
        "groupWait": GROUP_WAIT,
        "groupInterval": GROUP_INTERVAL,
        "matchers": [_matcher("severity", severities, "=~")],
        "routes": [
            {"receiver": RECEIVER, "matchers": [_matcher("severity", severity)], "repeatInterval": interval}
            for severity, interval in REPEAT_INTERVALS.items()
        ],
    }


def webhook_receiver() -> dict[str, Any]:
    return {
        "name": RECEIVER,
        "slackConfigs": [
            {
                "apiURL": {"name": ALERTS_SECRET, "key": WEBHOOK_KEY},
                "sendResolved": True,
                "title": "[{{ .Status }}] {{ .CommonLabels.severity }} {{ .CommonLabels.alertname }} "
                "{{ .CommonLabels.model }}",
                "text": "{{ range .Alerts }}{{ .Annotations.summary }}\nRunbook: {{ .Annotations.runbook }}\n{{ end }}",
            }
        ],
    }


@dataclass(frozen=True)
class AlertRoutingArgs:
    namespace: str
    """The models namespace, where Secret `drift-alerts` lives."""
    waits_for: tuple[pulumi.Resource, ...]
    """The monitoring stack (its CRDs) and the namespace."""


class AlertRouting(pulumi.ComponentResource):
    """The AlertmanagerConfig that sends the model alerts to the drift alerts' webhook."""

    def __init__(self, name: str, args: AlertRoutingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:AlertRouting", name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-config",
            api_version=ALERTMANAGER_CONFIG_API,
            kind="AlertmanagerConfig",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="model-alerts",
                namespace=args.namespace,
                labels={PLATFORM_LABEL: PLATFORM_LABEL_VALUE, "app.kubernetes.io/name": "model-alerts"},
            ),
            spec={"route": route_spec(), "receivers": [webhook_receiver()]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.waits_for)),
        )
        self.register_outputs({})
