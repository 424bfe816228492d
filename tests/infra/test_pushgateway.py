"""The Pushgateway over every stack's offline plan: pinned, hardened, scraped with the pushed labels kept,
installed after the stack whose CRDs its ServiceMonitor needs; and the daily jobs are told where it is."""

from __future__ import annotations

from typing import Any

import pytest

from infra.monitoring_names import NAMESPACE, PUSHGATEWAY_NAME, PUSHGATEWAY_URL
from infra.monitoring_values import CONTAINER_SECURITY
from infra.pushgateway import PROMETHEUS_PUSHGATEWAY
from monitoring.settings import DriftVariables
from tests.offline_plans import STACKS, offline_plan

RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest) -> dict[str, Any]:
    return offline_plan(request.param)


def _release(plan: dict[str, Any]) -> dict[str, Any]:
    (release,) = [r for r in plan["resources"] if r["type"] == RELEASE and r["inputs"]["name"] == PUSHGATEWAY_NAME]
    return release


def test_the_release_is_pinned_hardened_and_scraped_with_honor_labels(plan: dict[str, Any]) -> None:
    release = _release(plan)
    inputs = release["inputs"]
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == ("prometheus-pushgateway", "3.8.0", NAMESPACE)
    assert PROMETHEUS_PUSHGATEWAY.version == "3.8.0" and inputs["atomic"] is True
    values = inputs["values"]
    assert values["containerSecurityContext"] == CONTAINER_SECURITY
    assert values["securityContext"]["runAsNonRoot"] is True and values["securityContext"]["runAsUser"] != 0
    assert values["automountServiceAccountToken"] is False
    assert set(values["resources"]) == {"requests", "limits"}
    assert values["serviceMonitor"] == {"enabled": True, "namespace": NAMESPACE, "honorLabels": True, "interval": "30s"}
    assert "mlops-monitoring-release" in release["dependencies"]  # the CRDs of its ServiceMonitor


def test_every_daily_job_gets_the_pushgateway_url(plan: dict[str, Any]) -> None:
    cron_jobs = [r for r in plan["resources"] if r["type"] == "kubernetes:batch/v1:CronJob"]
    # The drift and quality jobs push; the labelling queue has no results to push.
    jobs = [job for job in cron_jobs if not job["inputs"]["metadata"]["name"].startswith("labelling-")]
    assert jobs and len(jobs) < len(cron_jobs)
    for job in jobs:
        (container,) = job["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        variables = {variable["name"]: variable.get("value") for variable in container["env"]}
        assert variables[DriftVariables.PUSHGATEWAY_URL] == PUSHGATEWAY_URL, job["name"]
