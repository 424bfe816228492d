"""The configuration of a Prometheus outside the cluster (the local loop's, the tests'), scraping what
the cluster's ServiceMonitors scrape, as the rules expect it.

In the cluster, a model service's series get `job="serve-<model>"` and keep their own labels
(`honorLabels`, infra/model_monitoring.py); the Pushgateway's keep the `job` and `model` the daily
jobs pushed them with (`honorLabels`, infra/pushgateway.py). Static targets with `honor_labels`
under the same job names give the same series, so the same rules (observability/rules.py, rendered
without a namespace: nothing outside a cluster has one) read them unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from observability.targets import ModelTargets

PUSHGATEWAY_JOB = "pushgateway"
"""The scrape job of the Pushgateway; the series keep the `job` each daily job pushed with."""


@dataclass(frozen=True)
class Intervals:
    scrape: str
    evaluation: str


CLUSTER_INTERVALS = Intervals(scrape="30s", evaluation="30s")
"""What the cluster's Prometheus uses (infra/monitoring_values.py, infra/model_monitoring.py)."""


def prometheus_config(
    services: Mapping[str, str],
    intervals: Intervals = CLUSTER_INTERVALS,
    pushgateway: str | None = None,
    alertmanager: str | None = None,
) -> dict[str, Any]:
    """`services`: model -> `host:port` of its service; `pushgateway`, `alertmanager`: `host:port` or None."""
    jobs = [_job(ModelTargets(model).deployment, address) for model, address in services.items()]
    if pushgateway:
        jobs.append(_job(PUSHGATEWAY_JOB, pushgateway))
    config: dict[str, Any] = {
        "global": {"scrape_interval": intervals.scrape, "evaluation_interval": intervals.evaluation},
        "scrape_configs": jobs,
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def _job(name: str, address: str) -> dict[str, Any]:
    return {
        "job_name": name,
        "honor_labels": True,
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [address]}],
    }
