"""The Alertmanager configuration the cluster's Alertmanager runs, rebuilt from the platform's objects
for a local Alertmanager: infra/alert_routing.py's top-level configuration with its AlertmanagerConfig
(route and Slack-compatible receiver) merged in the way the operator merges it.

What the operator does at v0.93.0 (`pkg/alertmanager/amcfg.go`, read at tag v0.93.0): each
AlertmanagerConfig's route becomes a first-level child of the root route, placed before the root's
own children, with `continue: true` (the `continueToNextRoute` enforcer); its receiver names are
prefixed `<namespace>/<name>/` (`makeNamespacedString`); the Secret reference of a Slack `apiURL`
is replaced by the Secret's value (`convertSlackConfig`). With `alertmanagerConfigMatcherStrategy:
None` no namespace matcher is added. Here the Secret's value is the test's webhook receiver.
"""

from __future__ import annotations

import copy
from typing import Any

from infra.alert_routing import alertmanager_config, route_spec, webhook_receiver

ROUTING_OBJECT = "models/model-alerts"
"""`<namespace>/<name>` of the AlertmanagerConfig (infra/alert_routing.py creates `model-alerts`)."""


def _receiver_name(name: str) -> str:
    return f"{ROUTING_OBJECT}/{name}"


def _matchers(matchers: list[dict[str, str]]) -> list[str]:
    return [f'{matcher["name"]}{matcher.get("matchType", "=")}"{matcher["value"]}"' for matcher in matchers]


def _route(spec: dict[str, Any], group_wait: str | None) -> dict[str, Any]:
    route: dict[str, Any] = {"receiver": _receiver_name(spec["receiver"])}
    if "groupBy" in spec:
        route["group_by"] = spec["groupBy"]
    for source, target in (("groupWait", "group_wait"), ("groupInterval", "group_interval")):
        if source in spec:
            route[target] = group_wait if source == "groupWait" and group_wait else spec[source]
    if "repeatInterval" in spec:
        route["repeat_interval"] = spec["repeatInterval"]
    if spec.get("matchers"):
        route["matchers"] = _matchers(spec["matchers"])
    if spec.get("routes"):
        route["routes"] = [_route(child, group_wait) for child in spec["routes"]]
    return route


def _slack_receiver(spec: dict[str, Any], webhook_url: str) -> dict[str, Any]:
    configs = [
        {"api_url": webhook_url, "send_resolved": slack["sendResolved"], "title": slack["title"], "text": slack["text"]}
        for slack in spec["slackConfigs"]
    ]
    return {"name": _receiver_name(spec["name"]), "slack_configs": configs}


def local_alertmanager_config(webhook_url: str, test_group_wait: str | None = None) -> dict[str, Any]:
    """The merged configuration, posting to `webhook_url`.

    `test_group_wait` replaces the route's group_wait (30 s in the cluster: how long Alertmanager
    collects a new group's alerts before the first notification) so a test need not wait it out;
    everything else is the platform's own configuration.
    """
    config = copy.deepcopy(alertmanager_config())
    models = _route(route_spec(), test_group_wait)
    models["continue"] = True
    config["route"]["routes"] = [models, *config["route"]["routes"]]
    if test_group_wait:
        config["route"]["group_wait"] = test_group_wait
    config["receivers"] = [*config["receivers"], _slack_receiver(webhook_receiver(), webhook_url)]
    return config
