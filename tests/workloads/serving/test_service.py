"""A real `bentoml serve` of digits against a real tracking server: readiness, classification, metrics."""

from __future__ import annotations

import os

import numpy as np
import requests

from tests.workloads.serving.conftest import DigitsVersions, ServiceStart, http_status
from tests.workloads.serving.images import jpeg_bytes, png_bytes
from workloads.serving.device import visible_device
from workloads.serving.local import LocalModelService


def test_not_ready_until_a_version_is_promoted_then_ready(service_start: ServiceStart) -> None:
    assert service_start.livez_before == 200
    assert service_start.readyz_before == 503
    assert service_start.predict_before == 503
    service = service_start.service
    assert http_status(f"{service.url}/readyz") == 200
    assert http_status(f"{service.url}/livez") == 200
    log = service.log_text()
    # One clear line while nothing is promoted, not one per poll (the service polled every second).
    assert log.count("NOT READY: registered model 'digits' has no version behind alias 'production'") == 1
    assert "loaded: ready" in log
    assert service.process.poll() is None


def test_classifies_json_batches_like_the_trained_model(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    images, labels = digits_versions.data.test_images[:60], digits_versions.data.test_labels[:60]
    response = requests.post(f"{digits_service.url}/classify_array", json={"image": images.tolist()}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "digits"
    assert body["version"] in (digits_versions.first, digits_versions.second)
    predictions = body["predictions"]
    assert len(predictions) == 60
    predicted = np.array([int(item["class"]) for item in predictions])
    assert (predicted == labels).mean() >= 0.85
    for item in predictions:
        assert set(item["probabilities"]) == {str(digit) for digit in range(10)}
        assert abs(sum(item["probabilities"].values()) - 1.0) < 1e-4
        assert item["confidence"] == max(item["probabilities"].values())


def test_float_arrays_give_the_same_answer_as_uint8(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    image = digits_versions.data.test_images[3]
    as_uint8 = requests.post(f"{digits_service.url}/classify_array", json={"image": image.tolist()}, timeout=30)
    as_float = requests.post(
        f"{digits_service.url}/classify_array",
        json={"image": (image / 255.0).tolist(), "dtype": "float32"},
        timeout=30,
    )
    assert as_uint8.status_code == as_float.status_code == 200
    first, second = as_uint8.json()["predictions"][0], as_float.json()["predictions"][0]
    assert first["class"] == second["class"]
    assert abs(first["confidence"] - second["confidence"]) < 1e-5


def test_classifies_png_and_jpeg_files(digits_service: LocalModelService, digits_versions: DigitsVersions) -> None:
    images, labels = digits_versions.data.test_images[:20], digits_versions.data.test_labels[:20]
    correct = 0
    for image, label in zip(images, labels, strict=True):
        response = requests.post(
            f"{digits_service.url}/classify_image",
            files={"image": ("digit.png", png_bytes(image), "image/png")},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        correct += int(response.json()["predictions"][0]["class"] == str(label))
    assert correct >= 17
    # A larger colour JPEG is converted to grayscale and resampled to 8x8.
    response = requests.post(
        f"{digits_service.url}/classify_image",
        files={"image": ("digit.jpg", jpeg_bytes(images[0], size=(64, 64), colour=True), "image/jpeg")},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["class"] == str(labels[0])


def test_prometheus_metrics_count_the_requests_and_the_batches(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    before = _batch_metric(digits_service)
    images = digits_versions.data.test_images[:40]
    response = requests.post(f"{digits_service.url}/classify_array", json={"image": images.tolist()}, timeout=60)
    assert response.status_code == 200, response.text
    text = requests.get(f"{digits_service.url}/metrics", timeout=10).text
    assert "bentoml_service_request_total" in text
    assert 'endpoint="/classify_array"' in text
    after = _batch_metric(digits_service)
    # The 40 images went through the adaptive-batching dispatcher in one forward pass or more.
    assert after["count"] >= before["count"] + 1
    assert after["sum"] >= before["sum"] + 40


def _batch_metric(service: LocalModelService) -> dict[str, float]:
    """Count and sum of the dispatcher's batch-size histogram (0 before the first batch)."""
    values = {"count": 0.0, "sum": 0.0}
    for line in requests.get(f"{service.url}/metrics", timeout=10).text.splitlines():
        for name in values:
            if line.startswith(f"mlops_serving_batch_images_{name} ") or line.startswith(
                f"mlops_serving_batch_images_{name}{{"
            ):
                values[name] += float(line.rsplit(" ", 1)[1])
    return values


def test_the_model_runs_on_the_device_mlops_device_names_and_gpu_gauges_only_there(
    digits_service: LocalModelService,
) -> None:
    """Run with MLOPS_DEVICE=cuda on a GPU machine (benchmarks/device_check.sh) this serves on cuda:0."""
    device = visible_device(os.environ.get("MLOPS_DEVICE", "").strip())
    log = digits_service.log_text()
    assert f"serving digits on {device}" in log
    assert f"warm-up forward on {device} (batches 256, (8, 8))" in log
    # The warm-up ran before the version was swapped in, so before /readyz turned 200.
    assert log.index("warm-up forward on") < log.index("loaded: ready")
    text = requests.get(f"{digits_service.url}/metrics", timeout=10).text
    gpu_families = [line for line in text.splitlines() if "mlops_serving_gpu_" in line]
    if device == "cpu":
        assert gpu_families == []  # CPU replicas' /metrics are what they were
    else:
        assert any(line.startswith("mlops_serving_gpu_memory_reserved_bytes{") for line in gpu_families)
