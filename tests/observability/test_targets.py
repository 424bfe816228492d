"""The names the rules select are the objects the infrastructure creates (dev's offline plan)."""

from __future__ import annotations

from observability.targets import ModelTargets
from tests.offline_plans import offline_plan
from workloads import catalogue


def test_deployments_services_and_cronjobs_are_named_as_the_rules_expect() -> None:
    names: dict[str, set[str]] = {}
    for resource in offline_plan("dev")["resources"]:
        kind = resource["type"].rsplit(":", 1)[-1]
        name = (resource.get("inputs") or {}).get("metadata", {}).get("name")
        if name:
            names.setdefault(kind, set()).add(name)
    for model in catalogue.names():
        targets = ModelTargets(model)
        assert targets.deployment in names["Deployment"]
        assert targets.deployment in names["Service"], "the ServiceMonitor's default job label is the Service's name"
        assert targets.cronjob in names["CronJob"]
        assert targets.quality_cronjob in names["CronJob"]
