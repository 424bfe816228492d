"""The generated dashboards: what Grafana needs to load them, stable JSON, and queries that read only
names the platform knows (the service's, kube-state-metrics' facts, the rules' recorded series)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from typing import Any

import pytest

from observability import metrics
from observability.dashboards import (
    DATASOURCE,
    OVERVIEW_UID,
    dashboard_json,
    model_dashboard,
    model_uid,
    overview_dashboard,
)
from observability.rules import catalogue_rules
from workloads import catalogue
from workloads.catalogue_entry import ServiceLevel
from workloads.serving.local import REPOSITORY_ROOT

_SELECTED = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]")
"""A metric name in a PromQL expression, as tests/workloads/serving/test_alert_metric_names.py reads them."""


def _dashboards() -> list[dict[str, Any]]:
    entries = list(catalogue.CATALOGUE.values())
    return [*(model_dashboard(entry, "models") for entry in entries), overview_dashboard(entries, "models")]


def _queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _known_names() -> set[str]:
    recorded = {
        rule["record"]
        for group in catalogue_rules(catalogue.CATALOGUE.values())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    facts = {metric.name for metric in (*metrics.KUBE_STATE_METRICS, *metrics.DCGM_METRICS)}
    return set(metrics.DASHBOARD_SERVICE_METRICS) | facts | recorded | set(metrics.JOB_METRICS)


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_every_query_reads_only_known_names(dashboard: dict[str, Any]) -> None:
    known = _known_names()
    for expr in _queries(dashboard):
        names = set(_SELECTED.findall(expr))
        assert names, f"no metric name found in {expr}"
        assert names <= known, f"{expr} reads {sorted(names - known)}"


def test_the_model_dashboard_covers_traffic_latency_capacity_and_burn_rates() -> None:
    queries = " ".join(_queries(model_dashboard(catalogue.get("digits"), "models")))
    for name in (
        metrics.REQUESTS_TOTAL,
        metrics.REQUEST_DURATION_BUCKET,
        metrics.REQUESTS_IN_PROGRESS,
        metrics.DEPLOYMENT_SPEC_REPLICAS.name,
        metrics.DEPLOYMENT_AVAILABLE_REPLICAS.name,
        "model:request_errors:ratio_rate3d",
        "model:request_slow:ratio_rate1h",
    ):
        assert name in queries, name
    for name in metrics.JOB_METRICS:  # the drift share and accuracy by day, and what decided
        assert name in queries, name
    assert 'job="serve-digits"' in queries and 'namespace="models"' in queries
    assert 'model="surface-defects"' not in queries


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_grafana_can_load_it(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40 and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert graphs
    for panel in graphs:
        assert panel["datasource"] == DATASOURCE
        assert panel["targets"] and set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs)
    assert json.loads(dashboard_json(dashboard)) == dashboard


def test_uids_are_stable_and_distinct() -> None:
    entry = catalogue.get("digits")
    assert dashboard_json(model_dashboard(entry)) == dashboard_json(model_dashboard(entry))
    assert model_dashboard(entry)["uid"] == model_uid("digits") == "mlops-model-digits"
    uids = [dashboard["uid"] for dashboard in _dashboards()]
    assert len(set(uids)) == len(uids) and OVERVIEW_UID in uids
    with pytest.raises(ValueError, match="longer than"):
        model_uid("m" * 40)


def test_objectives_are_drawn_as_thresholds() -> None:
    strict = dataclasses.replace(
        catalogue.get("digits"), service_level=ServiceLevel(availability=0.999, latency_p99_ms=250)
    )
    panels = {panel["title"]: panel for panel in model_dashboard(strict)["panels"]}

    def threshold(title: str) -> float:
        return panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]

    assert threshold("Error ratio (5xx) vs budget") == pytest.approx(0.001)
    assert threshold("Latency p50 / p99 vs objective") == 0.25
    overview = {panel["title"]: panel for panel in overview_dashboard([strict])["panels"]}
    steps = overview["digits availability (3d)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[1]["value"] == 0.999


def test_the_overview_graphs_every_model_s_drift_share_and_accuracy() -> None:
    queries = _queries(overview_dashboard(catalogue.CATALOGUE.values(), "models"))
    for model in catalogue.names():
        for name, job in (
            (metrics.DRIFT_DRIFTED_SHARE, metrics.DRIFT_JOB),
            (metrics.QUALITY_ACCURACY, metrics.QUALITY_JOB),
        ):
            assert f'{name}{{job="{job}",model="{model}"}}' in queries, (model, name)


def test_an_overview_without_models_has_no_empty_row() -> None:
    assert [panel["title"] for panel in overview_dashboard([])["panels"]] == [
        "Models",
        "Request rate",
        "Error ratio (5xx)",
        "p99 latency",
    ]


def test_importing_the_dashboards_imports_nothing_heavy() -> None:
    probe = (
        "import sys, observability.dashboards; "
        "heavy = sorted(name for name in ('torch', 'bentoml', 'mlflow', 'pulumi') if name in sys.modules); "
        "sys.exit(1 if heavy else 0)"
    )
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPOSITORY_ROOT, check=False).returncode == 0


def test_a_model_on_a_gpu_pool_also_shows_its_replicas_gpus_from_dcgm() -> None:
    entry = catalogue.get("surface-defects")
    on_gpu = model_dashboard(entry, "models", on_gpu=True)
    test_every_query_reads_only_known_names(on_gpu)
    test_grafana_can_load_it(on_gpu)
    gpu_queries = [expr for expr in _queries(on_gpu) if any(metric.name in expr for metric in metrics.DCGM_METRICS)]
    assert {metric.name for metric in metrics.DCGM_METRICS} <= set(_SELECTED.findall(" ".join(gpu_queries)))
    for expr in gpu_queries:
        # The exporter labels a GPU's series with the pod holding it: the model's replicas, in its namespace.
        assert 'pod=~"serve-surface-defects-[a-z0-9]+-[a-z0-9]+"' in expr and 'namespace="models"' in expr
    on_cpu = " ".join(_queries(model_dashboard(entry, "models")))
    assert not any(metric.name in on_cpu for metric in metrics.DCGM_METRICS)
