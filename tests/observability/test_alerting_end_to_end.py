"""The availability alert through real servers: `bentoml serve` of digits, scraped by Debian's Prometheus
running the platform's own rules for digits, alerting Debian's Alertmanager running the platform's
own routing, which posts to a webhook receiver in this test.

The fault is one a user can cause: a digits version with a bug that only real inputs reach, moved
behind the alias the service follows. Its author wrote it for intensities in [0, 1] (what it was
logged and tried with): it looks each pixel's intensity level up in a table, and the platform's
preprocessing normalises to about [-1, 1], so a dark pixel indexes below the table. The service's
warm-up forward passes (zeros, at batch 1 and at the largest batch) stay inside it, so the version
loads, warms up and is swapped in; then every real digit fails in the forward pass and the service
answers 500. (A version that cannot run on 8x8 inputs at all is refused by that warm-up and never
served: tests/workloads/serving/test_device.py.) Before the fault, healthy traffic must leave every
alert quiet while the rules evaluate without error.

What differs from the cluster, and only through the named test parameters below: scrape and
evaluation every second (`TEST_INTERVALS`, 30 s there) and Alertmanager's group_wait (`TEST_GROUP_WAIT`,
30 s there), so the test takes seconds where the cluster takes a minute. The rules are
`model_rule_group(digits)` unchanged: the burn-rate alerts have no `for`, and their 1 h and 5 m
windows hold only the seconds of data the test made, so the error ratio they read is the test's.
The service follows its own alias (`ALIAS`), so this test never moves the `production` alias other
tests of the session rely on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import torch
from mlflow.tracking import MlflowClient

from benchmarks.registered_models import register_module
from monitoring.webhook_receiver import WebhookReceiver
from observability.burn_rate import BURN_RATE_WINDOWS
from observability.local_servers import LocalServer, start_alertmanager, start_prometheus
from observability.rules import AVAILABILITY, LATENCY, burn_alert_name, catalogue_rules
from observability.scrape_config import Intervals, prometheus_config
from tests.observability.alertmanager_config import local_alertmanager_config
from tests.observability.promtool import alertmanager_binary, prometheus_binary
from workloads import catalogue
from workloads.serving.local import LocalModelService, start_local_service
from workloads.serving.service import ARRAY_ROUTE
from workloads.serving.settings import ServingVariables

pytestmark = pytest.mark.slow

MODEL = "digits"
ALIAS = "observability-e2e"
TEST_INTERVALS = Intervals(scrape="1s", evaluation="1s")
"""Test only: the cluster scrapes and evaluates every 30 s."""
TEST_GROUP_WAIT = "1s"
"""Test only: the cluster's Alertmanager waits 30 s before a new group's first notification."""
PAGE = burn_alert_name(AVAILABILITY, BURN_RATE_WINDOWS[0])
AVAILABILITY_ALERTS = "ModelAvailability"

WAIT_SECONDS = 45.0


def _example(shape: tuple[int, int]) -> torch.Tensor:
    return torch.rand(4, 1, *shape)


class IntensityLevels(torch.nn.Module):
    """A digits classifier over pixel intensity levels, written for inputs in [0, 1]: `LEVELS`
    embeddings, one per level, indexed by `input * LEVELS`. Zeros and [0, 1) index inside the table;
    the served inputs, normalised to about [-1, 1], index outside it (IndexError), as in the model
    a user registers without trying it on preprocessed images."""

    LEVELS = 16

    def __init__(self, pixels: int, classes: int) -> None:
        super().__init__()
        self.levels = torch.nn.Embedding(self.LEVELS, 4)
        self.head = torch.nn.Linear(4 * pixels, classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        indices = (inputs * self.LEVELS).long().flatten(1)
        return self.head(self.levels(indices).flatten(1))


def _register_healthy() -> str:
    """An untrained digits model from the catalogue, registered as a version of digits."""
    entry = catalogue.get(MODEL)
    return register_module(MODEL, entry.build_model(), _example(entry.image_shape), {"accuracy": 0.1})


def _register_failing_on_real_inputs() -> str:
    """`IntensityLevels` for digits, logged with inputs in [0, 1) as its author tried it."""
    entry = catalogue.get(MODEL)
    height, width = entry.image_shape
    module = IntensityLevels(height * width, len(entry.class_names))
    return register_module(MODEL, module, _example(entry.image_shape), {"accuracy": 0.1})


def _wait(condition: Callable[[], Any], what: str, servers: list[Any]) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    logs = "\n".join(f"--- {server.log_path}\n{server.log_tail()}" for server in servers)
    raise AssertionError(f"{what} within {WAIT_SECONDS:.0f} s\n{logs}")


class Traffic:
    """One digit to /classify_array every 50 ms from a thread; counts the answers by status."""

    def __init__(self, url: str) -> None:
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._url = url
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        image = [[8 * ((row + column) % 2) for column in range(8)] for row in range(8)]
        with requests.Session() as session:
            while not self._stop.is_set():
                status = session.post(f"{self._url}{ARRAY_ROUTE}", json={"image": image}, timeout=30).status_code
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=35)


def _firing(prometheus: LocalServer) -> set[str]:
    result = prometheus.get_json("/api/v1/query", query='ALERTS{alertstate="firing"}')["data"]["result"]
    return {series["metric"]["alertname"] for series in result}


def _value(prometheus: LocalServer, expr: str) -> float | None:
    result = prometheus.get_json("/api/v1/query", query=expr)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _rule_health(prometheus: LocalServer) -> dict[str, str]:
    groups = prometheus.get_json("/api/v1/rules")["data"]["groups"]
    return {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}


def _notified(receiver: WebhookReceiver, alert: str) -> list[dict[str, Any]]:
    return [
        attachment
        for message in list(receiver.messages)
        for attachment in message.get("attachments", [])
        if alert in attachment.get("title", "")
    ]


@pytest.fixture
def digits_on_own_alias(
    tracking_client_environment: dict[str, str], tmp_path: Path
) -> Iterator[tuple[LocalModelService, str]]:
    """`bentoml serve` of digits following ALIAS, which names a healthy version; yields the failing one."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in tracking_client_environment.items():
            patch.setenv(name, value)
        healthy, broken = _register_healthy(), _register_failing_on_real_inputs()
        client = MlflowClient()
        client.set_registered_model_alias(MODEL, ALIAS, healthy)
        environment = {
            **tracking_client_environment,
            "BENTOML_HOME": str(tmp_path / "bentoml-home"),  # its own multiprocess metrics folder
            "MLOPS_PREDICTIONS_STORE": str(tmp_path / "predictions"),
            "MLOPS_LABELS_STORE": str(tmp_path / "labels"),
            ServingVariables.MODEL_ALIAS: ALIAS,
            ServingVariables.ALIAS_POLL_SECONDS: "1",
        }
        service = start_local_service(MODEL, environment=environment, log_path=tmp_path / "service.log")
        try:
            service.wait_until_ready()
            yield service, broken
        finally:
            service.stop()
            client.delete_registered_model_alias(MODEL, ALIAS)


def test_a_failing_version_fires_the_availability_page_and_reaches_the_webhook(
    digits_on_own_alias: tuple[LocalModelService, str], tmp_path: Path
) -> None:
    service, broken = digits_on_own_alias
    prometheus_executable, alertmanager_executable = prometheus_binary(), alertmanager_binary()
    rules = catalogue_rules([catalogue.get(MODEL)])  # the cluster's group for digits, without a namespace
    with (
        WebhookReceiver(path="/hooks/alerts") as receiver,
        start_alertmanager(
            alertmanager_executable, tmp_path / "alertmanager", local_alertmanager_config(receiver.url, TEST_GROUP_WAIT)
        ) as alertmanager,
        start_prometheus(
            prometheus_executable,
            tmp_path / "prometheus",
            prometheus_config(
                {MODEL: service.url.removeprefix("http://")}, TEST_INTERVALS, alertmanager=alertmanager.address
            ),
            rules,
        ) as prometheus,
    ):
        servers: list[Any] = [prometheus, alertmanager, service]
        traffic = Traffic(service.url)
        try:
            # Healthy: the latency SLI is recorded from real requests, every rule evaluates, nothing fires.
            latency = f'{LATENCY.record}5m{{model="{MODEL}"}}'
            _wait(lambda: _value(prometheus, latency) is not None, "the latency SLI was not recorded", servers)
            time.sleep(3)  # several evaluations of every rule on healthy traffic
            health = _rule_health(prometheus)
            assert set(health.values()) == {"ok"}, health
            # Only the availability alerts: a loaded machine may slow a request past the 1 s threshold.
            assert not {alert for alert in _firing(prometheus) if alert.startswith(AVAILABILITY_ALERTS)}
            assert not _notified(receiver, AVAILABILITY_ALERTS), receiver.messages

            MlflowClient().set_registered_model_alias(MODEL, ALIAS, broken)
            _wait(lambda: PAGE in _firing(prometheus), f"{PAGE} did not fire", servers)
            notified = _wait(lambda: _notified(receiver, PAGE), f"the webhook got no {PAGE} notification", servers)
        finally:
            traffic.stop()

    assert traffic.statuses.get(200, 0) > 0 and traffic.statuses.get(500, 0) > 0, traffic.statuses
    assert set(traffic.statuses) <= {200, 500}, traffic.statuses
    # The fault is the one the docstring names: the version passed its warm-up, then real digits failed.
    log = service.log_text()
    assert f"-> v{broken}, swapped in" in log, service.log_tail()
    assert "IndexError: index out of range" in log, service.log_tail()
    (group,) = {attachment["title"] for attachment in notified}
    assert group.startswith("[firing]") and f"page {PAGE} {MODEL}" in group, group
    assert "availability error budget burning 14.4x too fast" in notified[0]["text"]
    assert "Runbook: " in notified[0]["text"]
