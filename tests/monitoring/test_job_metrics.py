"""The daily jobs' results on a real Pushgateway (Debian's `prometheus-pushgateway`): a real drift job run
pushes them, the quality job's measurements too, and every name the rules and dashboards read from
the jobs (`observability.metrics.JOB_METRICS`) is among what the Pushgateway then exports, under the
`job` and `model` they select on. A real Prometheus scraping that Pushgateway with the platform's
rules for digits fires the accuracy alert on a degraded version. A push that fails is one log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cli.local_traffic import shift_images as shifted
from monitoring.job import run_job
from monitoring.job_metrics import QUALITY_JOB, push_results, quality_registry
from monitoring.performance_estimate import Calibration
from monitoring.quality_job import measure_quality
from monitoring.quality_settings import QualitySettings
from monitoring.settings import DriftVariables
from observability import metrics
from observability.local_servers import LocalServer, start_prometheus, start_pushgateway
from observability.rules import ACCURACY_DEGRADED_ALERT, catalogue_rules
from observability.scrape_config import Intervals, prometheus_config
from tests.monitoring.conftest import MODEL, RegisteredDigits, write_prediction_log
from tests.monitoring.quality_logs import CLASSES, answers, log_request, send_labels
from tests.monitoring.test_drift_job import NOW
from tests.observability.promtool import prometheus_binary, pushgateway_binary
from workloads import catalogue
from workloads.local_process import free_loopback_port
from workloads.tracking.local import LocalTrackingServer

pytestmark = pytest.mark.slow

DRIFT_NAMES = {name for name in metrics.JOB_METRICS if name.startswith("mlops_drift_")}
QUALITY_NAMES = set(metrics.JOB_METRICS) - DRIFT_NAMES


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[LocalServer]:
    with start_pushgateway(pushgateway_binary(), tmp_path / "pushgateway") as server:
        # A fresh gateway holds nothing: no group another gateway was sent (Debian's default persistence file).
        assert server.get_json("/api/v1/metrics")["data"] == []
        yield server


def _pushed(gateway: LocalServer) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> (labels, value) of every sample the Pushgateway exports."""
    text = requests.get(f"{gateway.url}/metrics", timeout=10).text
    exported: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exported.setdefault(sample.name, []).append((sample.labels, sample.value))
    return exported


def _of(exported: dict[str, list[tuple[dict[str, str], float]]], name: str, job: str) -> list[tuple[dict, float]]:
    return [(labels, value) for labels, value in exported.get(name, []) if labels.get("job") == job]


def test_a_drift_run_pushes_every_name_the_rules_and_dashboards_read(
    tracking_environment: LocalTrackingServer,
    registered_digits: RegisteredDigits,
    stores: dict[str, Path],
    pushgateway: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = "2026-11-19"
    images = shifted(registered_digits.images)
    write_prediction_log(stores["predictions"], day, images, registered_digits.weights, registered_digits.version)
    monkeypatch.setenv(DriftVariables.PUSHGATEWAY_URL, pushgateway.url)

    result = run_job(MODEL, day, now=NOW)

    assert result.status == "drift" and result.exit_code == 0, result.summary
    exported = _pushed(pushgateway)
    for name in sorted(DRIFT_NAMES):
        series = _of(exported, name, metrics.DRIFT_JOB)
        assert series and all(labels["model"] == MODEL for labels, _ in series), (name, exported.get(name))
    ((_, verdict),) = _of(exported, metrics.DRIFT_DATASET_DRIFT, metrics.DRIFT_JOB)
    assert verdict == 1.0
    comparison = result.summary.as_dict()
    deciding = {labels["signal"] for labels, value in _of(exported, metrics.DRIFT_SIGNAL_DECIDING, metrics.DRIFT_JOB)
                if value == 1.0}  # fmt: skip
    assert deciding == set(comparison["deciding_signals"]) and deciding
    ((_, share),) = _of(exported, metrics.DRIFT_DRIFTED_SHARE, metrics.DRIFT_JOB)
    assert share == pytest.approx(comparison["drifted_share"])


def test_a_degraded_version_s_push_fires_the_accuracy_alert_in_a_real_prometheus(
    tmp_path: Path, pushgateway: LocalServer
) -> None:
    settings = QualitySettings(
        predictions_store=str(tmp_path / "predictions"),
        labels_store=str(tmp_path / "labels"),
        reports_store=str(tmp_path / "reports"),
    )
    day = NOW.date().replace(day=19)
    for version, correct, wrong in (("7", 30, 20), ("8", 49, 1)):  # 60 % and 98 % against 98 % validated
        predicted, truth = answers(correct=correct, wrong=wrong)
        request = log_request(Path(settings.predictions_store), day, predicted, version)
        send_labels(Path(settings.labels_store), request, truth, received=NOW)
    summary = measure_quality(MODEL, day, NOW, settings, {"7": 0.98, "8": 0.98}.get, _validated_calibration)

    assert push_results(pushgateway.url, QUALITY_JOB, MODEL, quality_registry(summary)) is None

    exported = _pushed(pushgateway)
    for name in sorted(QUALITY_NAMES):
        versions = {labels["model_version"] for labels, _ in _of(exported, name, metrics.QUALITY_JOB)}
        assert versions == {"7", "8"}, (name, exported.get(name))
    config = prometheus_config({}, Intervals(scrape="1s", evaluation="1s"), pushgateway=pushgateway.address)
    rules = catalogue_rules([catalogue.get(MODEL)])
    with start_prometheus(prometheus_binary(), tmp_path / "prometheus", config, rules) as prometheus:
        firing = _wait_for_alert(prometheus, ACCURACY_DEGRADED_ALERT)
    assert [labels["model_version"] for labels in firing] == ["7"]  # 98 % measured stays quiet


def _validated_calibration(version: str) -> Calibration:
    """Both versions validated like the log's rows: confidence 0.9 on the predicted class, 98 % right."""
    predicted, truth = answers(correct=98, wrong=2)
    softmax = np.full((len(predicted), len(CLASSES)), 0.1 / (len(CLASSES) - 1))
    softmax[np.arange(len(predicted)), [CLASSES.index(name) for name in predicted]] = 0.9
    return Calibration.fit(softmax, np.array([CLASSES.index(name) for name in truth]))


def _wait_for_alert(prometheus: LocalServer, alert: str) -> list[dict[str, str]]:
    query = f'ALERTS{{alertname="{alert}",alertstate="firing"}}'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = prometheus.get_json("/api/v1/query", query=query)["data"]["result"]
        if result:
            time.sleep(2)  # a few more evaluations: a second version would fire by now
            result = prometheus.get_json("/api/v1/query", query=query)["data"]["result"]
            return [series["metric"] for series in result]
        time.sleep(0.5)
    raise AssertionError(f"{alert} did not fire within 30 s:\n{prometheus.log_tail()}")


def test_a_push_that_fails_is_one_log_line_and_raises_nothing(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = f"http://127.0.0.1:{free_loopback_port()}"
    with caplog.at_level(logging.WARNING, logger="mlops.job_metrics"):
        problem = push_results(unreachable, QUALITY_JOB, MODEL, CollectorRegistry())
    assert problem is not None and unreachable in problem
    assert [record.getMessage() for record in caplog.records] == [f"{QUALITY_JOB} {MODEL}: {problem}"]
    assert push_results(None, QUALITY_JOB, MODEL, CollectorRegistry()) is None  # no gateway: no push
