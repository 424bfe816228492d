"""Where the model alerts go: the drift alerts' webhook and the stack's SNS topic, grouped so that one
outage is one page.

Two halves, because Alertmanager runs in the monitoring namespace while the webhook URL is in Secret
`drift-alerts` of the models namespace (infra/drift_monitor.py), and a pod can mount Secrets of its
own namespace only:

- the top-level configuration (a chart value, `alertmanager_config`): grouping defaults, a `null`
  root receiver, and the inhibition;
- an AlertmanagerConfig object in the models namespace (`AlertRouting`) with the route and the
  webhook receiver: the operator reads the Secret there and writes the URL into the generated
  configuration, so it never passes through Pulumi. Without that Secret the operator skips the
  object (prometheus-operator v0.93.0 `selectAlertmanagerConfigs`), as the drift job skips its
  webhook: the alerts still show in Alertmanager and Grafana, nothing is posted;
- a second AlertmanagerConfig, `model-alerts-sns`, with the same route to the stack's SNS topic
  (infra/alert_topic.py), which the drift jobs publish to as well: it names no Secret, so it applies
  whether or not the webhook's Secret exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.monitoring_job import ALERTS_SECRET
from infra.pod_security import PLATFORM_LABEL, PLATFORM_LABEL_VALUE
from observability.rules import DAILY_JOB_STALE_ALERTS

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
    (a page) also silences the request, shedding and traffic tickets. The daily jobs' staleness is
    a different system (their CronJobs) and is never inhibited by a serving page.
    """
    return {
        "source_matchers": ['severity="page"'],
        "target_matchers": ['severity="ticket"', f'alertname!~"{"|".join(DAILY_JOB_STALE_ALERTS)}"'],
        "equal": ["model"],
    }


def _matcher(name: str, value: str, match_type: str = "=") -> dict[str, str]:
    return {"name": name, "value": value, "matchType": match_type}


def route_spec(receiver: str = RECEIVER) -> dict[str, Any]:
    """An AlertmanagerConfig's route: the model alerts (severity page or ticket) to `receiver`."""
    severities = "|".join(REPEAT_INTERVALS)
    return {
        "receiver": receiver,
        "groupBy": GROUP_BY,
        "groupWait": GROUP_WAIT,
        "groupInterval": GROUP_INTERVAL,
        "matchers": [_matcher("severity", severities, "=~")],
        "routes": [
            {"receiver": receiver, "matchers": [_matcher("severity", severity)], "repeatInterval": interval}
            for severity, interval in REPEAT_INTERVALS.items()
        ],
    }


WEBHOOK_TEXT = "{{ range .Alerts }}{{ .Annotations.summary }}\nRunbook: {{ .Annotations.runbook }}\n{{ end }}"


def webhook_receiver() -> dict[str, Any]:
    return {
        "name": RECEIVER,
        "slackConfigs": [
            {
                "apiURL": {"name": ALERTS_SECRET, "key": WEBHOOK_KEY},
                "sendResolved": True,
                "title": "[{{ .Status }}] {{ .CommonLabels.severity }} {{ .CommonLabels.alertname }} "
                "{{ .CommonLabels.model }}",
                "text": WEBHOOK_TEXT,
            }
        ],
    }


SNS_RECEIVER = "model-alerts-sns"
# SNS caps an e-mail subject at 100 characters: alert name and model fit, the summary goes in the body.
SNS_SUBJECT = "[{{ .Status }}] {{ .CommonLabels.severity }} {{ .CommonLabels.alertname }} {{ .CommonLabels.model }}"


def sns_receiver(topic_arn: pulumi.Input[str], region: str) -> dict[str, Any]:
    """SNS through Alertmanager's own integration (AlertmanagerConfig `snsConfigs`, prometheus-operator
    v0.93.0 `SNSConfig`: topicARN, sigv4.region, subject, message, sendResolved). No keys in `sigv4`:
    Alertmanager signs with its IRSA role (infra/monitoring_stack.py)."""
    return {
        "name": SNS_RECEIVER,
        "snsConfigs": [
            {
                "topicARN": topic_arn,
                "sigv4": {"region": region},
                "sendResolved": True,
                "subject": SNS_SUBJECT,
                "message": WEBHOOK_TEXT,
            }
        ],
    }


@dataclass(frozen=True)
class AlertRoutingArgs:
    namespace: str
    """The models namespace, where Secret `drift-alerts` lives."""
    waits_for: tuple[pulumi.Resource, ...]
    """The monitoring stack (its CRDs) and the namespace."""
    sns_topic_arn: pulumi.Input[str] | None = None
    """The stack's alert topic; None: the webhook only."""
    region: str = ""
    """The topic's region (Alertmanager's SNS client needs it: pods cannot read instance metadata)."""


class AlertRouting(pulumi.ComponentResource):
    """The AlertmanagerConfigs that send the model alerts to the drift alerts' webhook and to SNS.

    Two objects, not one receiver with both integrations: the operator skips a whole object whose
    Secret is missing, and SNS must not wait on the webhook's Secret. The operator puts each object's
    route before the top-level ones with `continue: true` (v0.93.0 `amcfg.go`), so an alert reaches both.
    """

    def __init__(self, name: str, args: AlertRoutingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:AlertRouting", name, None, opts)
        self._config(f"{name}-config", "model-alerts", {"route": route_spec(), "receivers": [webhook_receiver()]}, args)
        if args.sns_topic_arn is not None:
            sns = {"route": route_spec(SNS_RECEIVER), "receivers": [sns_receiver(args.sns_topic_arn, args.region)]}
            self._config(f"{name}-sns", SNS_RECEIVER, sns, args)
        self.register_outputs({})

    def _config(self, resource_name: str, name: str, spec: dict[str, Any], args: AlertRoutingArgs) -> None:
        k8s.apiextensions.CustomResource(
            resource_name,
            api_version=ALERTMANAGER_CONFIG_API,
            kind="AlertmanagerConfig",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                labels={PLATFORM_LABEL: PLATFORM_LABEL_VALUE, "app.kubernetes.io/name": name},
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.waits_for)),
        )
