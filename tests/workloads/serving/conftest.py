"""Session-scoped real processes for the serving tests: two trained digits versions in the registry
of the session's tracking server (tests/conftest.py), and one `bentoml serve` of digits.

The service is started while *no* version carries the `production` alias (the fixture takes it off,
should another folder's tests have promoted digits on the shared registry), so the readiness test
can observe the not-ready state of a real process; the fixture then promotes the first version.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from benchmarks.registered_models import DigitsData, digits_data, register_module, train_digits
from workloads import features
from workloads.serving.local import LocalModelService, start_local_service
from workloads.tracking.registry import set_alias

MODEL = "digits"
PAYLOAD_LIMIT = 65536
"""MLOPS_MAX_PAYLOAD_BYTES of the test service: small, so the oversized-payload test is cheap."""


@dataclass(frozen=True)
class DigitsVersions:
    """The two digits versions the serving tests swap between, and the data they were trained on."""

    data: DigitsData
    first: str
    """Registry version number of the first (seed 0); `production` points at it once the service starts."""
    second: str


@dataclass(frozen=True)
class ServiceStart:
    """What the service looked like before any version was promoted."""

    service: LocalModelService
    readyz_before: int | None
    livez_before: int | None
    predict_before: int | None


def http_status(url: str, timeout: float = 5.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


@pytest.fixture(scope="session")
def registry_environment(tracking_client_environment: dict[str, str]) -> Iterator[dict[str, str]]:
    """Point this process's MLflow client at the session's tracking server."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in tracking_client_environment.items():
            patch.setenv(name, value)
        yield tracking_client_environment


def service_environment(registry_environment: dict[str, str], store: Path, **overrides: str) -> dict[str, str]:
    return {
        **registry_environment,
        # Each `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir when it starts: services
        # sharing a home (two in this session, others on the machine) would erase each other's /metrics.
        "BENTOML_HOME": str(store.parent / "bentoml-home"),
        "MLOPS_PREDICTIONS_STORE": str(store),
        "MLOPS_LABELS_STORE": str(store.parent / "labels"),
        "MLOPS_ALIAS_POLL_SECONDS": "1",
        "MLOPS_MAX_PAYLOAD_BYTES": str(PAYLOAD_LIMIT),
        "MLOPS_LOG_FLUSH_SECONDS": "1",
        "MLOPS_TORCH_THREADS": "1",
        **overrides,
    }


@pytest.fixture(scope="session")
def started_service(
    registry_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalModelService]:
    """`bentoml serve` of digits, started while the registry has no production version."""
    with contextlib.suppress(MlflowException):  # digits not registered yet: nothing to take off
        MlflowClient().delete_registered_model_alias(MODEL, "production")
    folder = tmp_path_factory.mktemp("serving")
    service = start_local_service(
        MODEL,
        environment=service_environment(registry_environment, folder / "predictions"),
        log_path=folder / "service.log",
    )
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def digits_versions(registry_environment: dict[str, str]) -> DigitsVersions:
    """Two digits versions trained for 3 epochs with different seeds, registered without an alias."""
    torch.set_num_threads(1)
    data = digits_data()
    example = torch.from_numpy(features.preprocess(data.test_images[:4]))
    versions: list[str] = []
    for seed in (0, 1):
        model, accuracy = train_digits(data, epochs=3, seed=seed)
        versions.append(register_module(MODEL, model, example, {"accuracy": accuracy}))
    return DigitsVersions(data=data, first=versions[0], second=versions[1])


@pytest.fixture(scope="session")
def service_start(started_service: LocalModelService, digits_versions: DigitsVersions) -> ServiceStart:
    """Observe the not-ready service, then promote version 1 and wait until it is ready."""
    started_service.wait_until_alive()
    time.sleep(3)  # several alias polls with versions registered but none promoted
    url = started_service.url
    pixels = digits_versions.data.test_images[0].tolist()
    request = urllib.request.Request(
        f"{url}/classify_array",
        data=json.dumps({"image": pixels}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            predict_before: int | None = int(response.status)
    except urllib.error.HTTPError as error:
        predict_before = int(error.code)
    start = ServiceStart(
        service=started_service,
        readyz_before=http_status(f"{url}/readyz"),
        livez_before=http_status(f"{url}/livez"),
        predict_before=predict_before,
    )
    set_alias(MODEL, "production", digits_versions.first)
    started_service.wait_until_ready()
    return start


@pytest.fixture(scope="session")
def digits_service(service_start: ServiceStart) -> LocalModelService:
    """The digits service, ready, serving whatever `production` names (version 1 unless a test moves it)."""
    return service_start.service


def held_out(digits_versions: DigitsVersions, count: int) -> tuple[np.ndarray, np.ndarray]:
    return digits_versions.data.test_images[:count], digits_versions.data.test_labels[:count]
