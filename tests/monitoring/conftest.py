"""A local stack for the drift job: a real tracking server, a digits version registered by the
training pipeline's own step functions (so it carries the reference tables the pipeline attaches),
prediction logs written in the serving log's layout, and a webhook receiver over real HTTP.

The tracking server is the session's (tests/conftest.py); every test has its own prediction and
reports stores, so alert cooldown state never leaks between tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitoring.webhook_receiver import WebhookReceiver
from workloads import catalogue, features
from workloads.datasets.versions import snapshot

MODEL = "digits"


@dataclass(frozen=True)
class RegisteredDigits:
    version: str
    """Registered by the pipeline's register step: reference tables attached."""
    version_without_reference: str
    """Registered by hand from the same run: no reference tables."""
    images: np.ndarray
    """The validation split's images (uint8), for the windows the tests log."""
    weights: Path
    dataset_store: Path


@pytest.fixture(scope="session")
def registered_digits(
    tracking_client_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> RegisteredDigits:
    """fetch -> preprocess -> train (2 epochs) -> evaluate -> register, in this process, with the
    pipeline's step functions (the kfp.local run of the same steps is what the retrain test runs)."""
    from pipelines import steps
    from workloads.catalogue_entry import TrainingParameters
    from workloads.tracking import registry
    from workloads.tracking.instrument import DatasetRef

    with pytest.MonkeyPatch.context() as patch:
        for name, value in tracking_client_environment.items():
            patch.setenv(name, value)
        work = tmp_path_factory.mktemp("monitoring-pipeline")
        store = work / "datasets"
        snapshot(MODEL, store)
        fetched = steps.fetch_step(MODEL, "latest", str(store), work / "fetched")
        paths = {
            name: work / name for name in ("train.npz", "validation.npz", "reference.parquet", "predictions.parquet")
        }
        steps.preprocess_step(
            model=MODEL,
            dataset_folder=work / "fetched",
            validation_fraction=0.2,
            seed=0,
            train_path=paths["train.npz"],
            validation_path=paths["validation.npz"],
            reference_path=paths["reference.parquet"],
        )
        trained = steps.train_step(
            model=MODEL,
            train_path=paths["train.npz"],
            parameters=TrainingParameters(epochs=2, batch_size=32, learning_rate=2e-3, seed=0, validation_fraction=0.2),
            dataset=DatasetRef(name=MODEL, version=fetched.version, digest=fetched.digest, source=fetched.uri),
            pipeline_run_id="monitoring-test",
            weights_path=work / "weights.pt",
        )
        evaluated = steps.evaluate_step(
            model=MODEL,
            weights_path=work / "weights.pt",
            validation_path=paths["validation.npz"],
            quality_threshold=0.0,
            report_path=work / "report.json",
            predictions_path=paths["predictions.parquet"],
        )
        registered = steps.register_step(
            model=MODEL,
            run_id=trained.run_id,
            model_uri=trained.model_uri,
            metrics={"accuracy": evaluated.accuracy, "macro_f1": evaluated.macro_f1},
            pipeline_run_id="monitoring-test",
            promote=False,
            promotion_reason="automatic promotion is off",
            reference_path=paths["reference.parquet"],
            predictions_path=paths["predictions.parquet"],
            report_path=work / "report.json",
        )
        bare = registry.register_version(
            MODEL, trained.model_uri, trained.run_id, {"accuracy": evaluated.accuracy}, quality_gate_passed=True
        )
        validation = steps.load_split(paths["validation.npz"])
    return RegisteredDigits(
        version=registered.version,
        version_without_reference=str(bare.version),
        images=validation[steps.SPLIT_IMAGES],
        weights=work / "weights.pt",
        dataset_store=store,
    )


def predict(weights: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and confidences of the registered network (the weights the register step logged)."""
    import torch

    from workloads.training import predict_probabilities

    network = catalogue.get(MODEL).build_model()
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    probabilities = predict_probabilities(network, features.preprocess(images))
    return probabilities.argmax(axis=1), probabilities.max(axis=1)


def write_prediction_log(
    store: Path, day: str, images: np.ndarray, weights: Path, versions: list[str] | str, files: int = 2
) -> int:
    """Log `images` as the service would: `<store>/digits/date=DAY/*.parquet` with the serving log's
    columns (features.drift_features of the real images, real predictions of the registered network)."""
    from workloads.serving.prediction_log import LOG_COLUMNS

    predictions, confidences = predict(weights, images)
    frame = features.drift_features(images)
    names = catalogue.get(MODEL).class_names
    frame["prediction"] = predictions.astype(np.int64)
    frame["predicted_class"] = [names[index] for index in predictions]
    frame["confidence"] = confidences.astype(np.float64)
    frame["model_version"] = versions if isinstance(versions, list) else [versions] * len(frame)
    frame["timestamp"] = pd.Timestamp(f"{day}T12:00:00", tz="UTC") + pd.to_timedelta(np.arange(len(frame)), unit="s")
    frame["request_id"] = [uuid.uuid4().hex for _ in range(len(frame))]
    folder = store / MODEL / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    for index, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[part][list(LOG_COLUMNS)].to_parquet(folder / f"part-{index}.parquet", index=False)
    return len(frame)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: WebhookReceiver) -> dict[str, Path]:
    """Fresh predictions and reports stores for this test, and the job's variables pointing at them."""
    paths = {"predictions": tmp_path / "predictions", "reports": tmp_path / "reports"}
    monkeypatch.setenv("MLOPS_PREDICTIONS_STORE", str(paths["predictions"]))
    monkeypatch.setenv("MLOPS_REPORTS_STORE", str(paths["reports"]))
    monkeypatch.setenv("MLOPS_DRIFT_WEBHOOK_URL", webhook.url)
    for name in ("MLOPS_DRIFT_SNS_TOPIC_ARN", "MLOPS_DRIFT_RETRAIN", "MLOPS_REPORTS_URL"):
        monkeypatch.delenv(name, raising=False)
    return paths
