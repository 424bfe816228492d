"""Every metric the alerting rules (observability/) read from a model service is one that a real
`bentoml serve` of digits exports, with the labels and the latency bucket the rules select on.

Here rather than in tests/observability: it needs this folder's session service, and a second
tracking server, training run and `bentoml serve` would cost the suite a minute for nothing.
kube-state-metrics' names cannot be scraped on this machine: they are recorded facts
(`observability.metrics.KUBE_STATE_METRICS`, each with its upstream source) and left out.
"""

from __future__ import annotations

import re

import requests

from observability import metrics
from observability.objectives import objectives
from observability.rules import catalogue_rules
from observability.targets import MODEL_ROUTES
from tests.workloads.serving.conftest import MODEL, DigitsVersions
from tests.workloads.serving.images import png_bytes
from workloads import catalogue
from workloads.serving.local import LocalModelService
from workloads.serving.service import ARRAY_ROUTE, IMAGE_ROUTE

_SELECTED = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]")
"""A metric name in a PromQL expression: an identifier followed by its selector or its range."""


def _queried_names() -> set[str]:
    document = catalogue_rules(catalogue.CATALOGUE.values())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    return {name for rule in rules for name in _SELECTED.findall(rule["expr"])} - recorded


def _exported(text: str) -> dict[str, list[str]]:
    """name -> the label sets of its samples, from the Prometheus text format."""
    samples: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            name = name.split(" ")[0]
            samples.setdefault(name, []).append(rest.rpartition("}")[0] if rest else "")
    return samples


def test_the_rules_read_only_the_names_the_generator_declares() -> None:
    recorded_facts = {metric.name for metric in metrics.KUBE_STATE_METRICS}
    # The daily jobs' names are checked against a real push (tests/monitoring/test_job_metrics.py).
    assert _queried_names() - set(metrics.JOB_METRICS) == set(metrics.SERVICE_METRICS) | recorded_facts
    for fact in metrics.KUBE_STATE_METRICS:
        assert fact.source.startswith("https://github.com/kubernetes/kube-state-metrics/blob/"), fact
    assert (IMAGE_ROUTE, ARRAY_ROUTE) == MODEL_ROUTES


def test_a_real_service_exports_every_scraped_name_the_rules_and_dashboards_query(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    image = digits_versions.data.test_images[0]
    # A labelled series appears on the first request that uses its labels: one request per route.
    answered = [
        requests.post(f"{digits_service.url}{ARRAY_ROUTE}", json={"image": image.tolist()}, timeout=30),
        requests.post(
            f"{digits_service.url}{IMAGE_ROUTE}", files={"image": ("d.png", png_bytes(image), "image/png")}, timeout=30
        ),
    ]
    assert [response.status_code for response in answered] == [200, 200]
    exported = _exported(requests.get(f"{digits_service.url}/metrics", timeout=10).text)

    missing = sorted(name for name in metrics.DASHBOARD_SERVICE_METRICS if name not in exported)
    assert not missing, f"the rules or dashboards query {missing}, which `bentoml serve` does not export"
    for route in MODEL_ROUTES:
        requests_of_route = [labels for labels in exported[metrics.REQUESTS_TOTAL] if f'endpoint="{route}"' in labels]
        assert any('http_response_code="200"' in labels for labels in requests_of_route), route
        # The GPU models' autoscaler selects the in-flight gauge by the same route label (infra/model_service.py).
        assert any(f'endpoint="{route}"' in labels for labels in exported[metrics.REQUESTS_IN_PROGRESS]), route
    bucket = f'le="{objectives(catalogue.get(MODEL)).latency_bucket}"'
    assert any(bucket in labels for labels in exported[metrics.REQUEST_DURATION_BUCKET]), bucket
    # Every bucket the catalogue may choose is one the service really has.
    for seconds in metrics.DURATION_BUCKETS_SECONDS:
        assert any(f'le="{seconds!r}"' in labels for labels in exported[metrics.REQUEST_DURATION_BUCKET]), seconds
