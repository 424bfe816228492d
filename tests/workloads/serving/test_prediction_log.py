"""The prediction log: rows the drift job can read, flushed on SIGTERM, local folder or S3, with
the model's whole softmax vector per image; files from before the softmax columns still read."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from tests.services import MotoS3Server
from tests.workloads.serving.conftest import MODEL, DigitsVersions, service_environment
from tests.workloads.serving.images import png_bytes
from workloads import catalogue, features
from workloads.serving.local import start_local_service
from workloads.serving.logged_images import IMAGE_COLUMN, decode_png
from workloads.serving.model_source import load_version
from workloads.serving.prediction_log import LOG_COLUMNS, PredictionLog, log_columns, read_prediction_log

CLASS_NAMES = catalogue.get(MODEL).class_names
SOFTMAX = features.softmax_columns(len(CLASS_NAMES))


def probabilities_for(predictions: list[int]) -> np.ndarray:
    """A softmax row per prediction whose argmax is that class (0.55 there, 0.05 elsewhere)."""
    rows = np.full((len(predictions), len(CLASS_NAMES)), 0.05)
    rows[np.arange(len(predictions)), predictions] = 0.55
    return rows


def test_sigterm_flushes_every_acknowledged_prediction(
    service_start: object, registry_environment: dict[str, str], digits_versions: DigitsVersions, tmp_path: Path
) -> None:
    """A service that would only write after 100,000 rows or an hour: everything it acknowledged
    must still be on disk after SIGTERM, with the very probabilities each response returned.

    Its batches hold one image, so the dispatcher splits every two-image request into two forward
    passes and merges the answers back: each image must still get its own probabilities, in order."""
    store = tmp_path / "predictions"
    environment = service_environment(
        registry_environment,
        store,
        MLOPS_LOG_FLUSH_ROWS="100000",
        MLOPS_LOG_FLUSH_SECONDS="3600",
        MLOPS_MAX_BATCH_SIZE="1",
    )
    service = start_local_service(MODEL, environment=environment, log_path=tmp_path / "service.log")
    try:
        service.wait_until_ready()
        images = digits_versions.data.test_images
        acknowledged: dict[str, np.ndarray] = {}
        versions: dict[str, str] = {}
        answered: dict[str, np.ndarray] = {}
        for index in range(30):
            if index % 3 == 0:
                batch = images[index : index + 1]
                response = requests.post(
                    f"{service.url}/classify_image",
                    files={"image": ("d.png", png_bytes(batch[0]), "image/png")},
                    timeout=30,
                )
            else:
                batch = images[index : index + 2]
                response = requests.post(f"{service.url}/classify_array", json={"image": batch.tolist()}, timeout=30)
            assert response.status_code == 200, response.text
            body = response.json()
            acknowledged[body["request_id"]] = batch
            versions[body["request_id"]] = body["version"]
            # In the model's output order (the catalogue's class names): the order of the softmax columns.
            answered[body["request_id"]] = np.array(
                [[item["probabilities"][name] for name in CLASS_NAMES] for item in body["predictions"]]
            )
        assert not list(store.glob("**/*.parquet"))  # nothing written yet: all of it sits in the buffer
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(timeout=60) == 0
    finally:
        service.stop()

    models = {version: load_version(MODEL, version) for version in set(versions.values())}
    for request_id, batch in acknowledged.items():
        expected = models[versions[request_id]].predict(features.preprocess(batch))
        np.testing.assert_allclose(answered[request_id], expected, atol=1e-5)

    logged = read_prediction_log(str(store), MODEL)
    expected_rows = sum(len(batch) for batch in acknowledged.values())
    assert len(logged) == expected_rows == 50
    assert list(logged.columns) == log_columns(len(CLASS_NAMES))
    assert all(str(logged[column].dtype) == "float64" for column in SOFTMAX)
    assert set(logged["request_id"]) == set(acknowledged)
    for request_id, rows in logged.groupby("request_id", sort=False):
        sent = acknowledged[str(request_id)]
        # The logged features are the drift job's features of exactly the image that was sent (computed
        # for many requests in one call when written: float32 products may round differently, ~1e-7).
        np.testing.assert_allclose(
            rows[list(features.FEATURE_COLUMNS)].to_numpy(), features.drift_features(sent).to_numpy(), atol=1e-6
        )
        assert set(rows["model_version"]) == {versions[str(request_id)]}
        assert rows["image_index"].tolist() == list(range(len(sent)))  # the key feedback names an image by
        # softmax_i is what the response said about class_names[i], to the bit (float64 both ways).
        np.testing.assert_array_equal(rows[SOFTMAX].to_numpy(), answered[str(request_id)])
        # The image the model saw comes back from the log, pixel for pixel (PNG files are lossless).
        np.testing.assert_array_equal(np.stack([decode_png(png) for png in rows[IMAGE_COLUMN]]), sent)
    np.testing.assert_allclose(logged[SOFTMAX].sum(axis=1), 1.0, atol=1e-5)  # float32 softmax, stored as float64
    np.testing.assert_array_equal(logged["prediction"], logged[SOFTMAX].to_numpy().argmax(axis=1))
    np.testing.assert_array_equal(logged["confidence"], logged[SOFTMAX].to_numpy().max(axis=1))
    assert logged["prediction"].between(0, 9).all()
    assert logged["confidence"].between(0, 1).all()
    assert (logged["predicted_class"] == logged["prediction"].astype(str)).all()
    day = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    assert list((store / MODEL).iterdir()) == [store / MODEL / f"date={day}"]


def test_batches_go_to_s3_under_the_model_and_date(aws_environment: MotoS3Server) -> None:
    bucket = aws_environment.fresh_bucket("predictions")
    images = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8), dtype=np.uint8)
    log = PredictionLog(f"s3://{bucket}/live", MODEL, flush_rows=1000, flush_seconds=3600)
    log.append(images, probabilities_for([1, 2, 3, 4, 5]), CLASS_NAMES, ["7"] * 5, "r1")
    assert log.close() == 5
    client = aws_environment.client()
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    day = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    assert len(keys) == 1 and keys[0].startswith(f"live/{MODEL}/date={day}/") and keys[0].endswith(".parquet")
    import io

    table = pd.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=keys[0])["Body"].read()))
    assert table["prediction"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(table[SOFTMAX].to_numpy(), probabilities_for([1, 2, 3, 4, 5]))
    assert set(table["model_version"]) == {"7"}


def test_a_failed_write_keeps_the_rows_for_the_next_flush(tmp_path: Path) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("a file where the store folder should be")
    log = PredictionLog(str(blocker), MODEL, flush_rows=1000, flush_seconds=3600)
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    log.append(images, probabilities_for([0, 1]), CLASS_NAMES, ["1", "1"], "r")
    with pytest.raises(OSError):
        log.flush()
    assert log.pending_rows == 2
    blocker.unlink()
    assert log.close() == 2
    assert len(read_prediction_log(str(blocker), MODEL)) == 2


def test_features_of_uint8_and_float_requests_written_together(tmp_path: Path) -> None:
    """Requests of both dtypes in one buffer, several feature chunks: every row gets its own image's features."""
    rng = np.random.default_rng(3)
    as_uint8 = rng.integers(0, 256, size=(3, 8, 8), dtype=np.uint8)
    as_float = rng.random(size=(2, 8, 8)).astype(np.float32)
    log = PredictionLog(str(tmp_path), MODEL, flush_rows=1000, flush_seconds=3600)
    log.append(as_uint8, probabilities_for([0, 1, 2]), CLASS_NAMES, ["1"] * 3, "bytes")
    log.append(as_float, probabilities_for([3, 4]), CLASS_NAMES, ["1"] * 2, "floats")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workloads.serving.prediction_log.FEATURE_CHUNK_PIXELS", 100)  # a call per request
        assert log.close() == 5
    logged = read_prediction_log(str(tmp_path), MODEL)
    expected = np.concatenate(
        [features.drift_features(as_uint8).to_numpy(), features.drift_features(as_float).to_numpy()]
    )
    np.testing.assert_allclose(logged[list(features.FEATURE_COLUMNS)].to_numpy(), expected, atol=1e-6)
    assert logged["request_id"].tolist() == ["bytes"] * 3 + ["floats"] * 2
    assert logged["image_index"].tolist() == [0, 1, 2, 0, 1]
    assert logged["prediction"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(logged[SOFTMAX].to_numpy(), probabilities_for([0, 1, 2, 3, 4]))


def test_large_images_are_written_before_they_fill_memory(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), MODEL, flush_rows=1000, flush_seconds=3600, flush_image_bytes=3 * 224 * 224)
    images = np.zeros((1, 224, 224), dtype=np.uint8)
    for index in range(3):
        log.append(images, probabilities_for([0]), CLASS_NAMES, ["1"], f"r{index}")
        if index == 1:
            time.sleep(0.5)
            assert log.pending_rows == 2  # below the byte limit: nothing is written before the hour is up
    deadline = time.monotonic() + 30
    # The third image reached the byte limit: the writer thread writes all three without waiting an hour.
    while len(read_prediction_log(str(tmp_path), MODEL)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(read_prediction_log(str(tmp_path), MODEL)) == 3
    assert log.close() == 0


def _write_old_format_file(store: Path, day: str, images: np.ndarray) -> pd.DataFrame:
    """A log file as the service wrote it before the softmax columns: `LOG_COLUMNS` only."""
    frame = features.drift_features(images)
    frame["prediction"] = np.arange(len(images), dtype=np.int64)
    frame["predicted_class"] = [CLASS_NAMES[index] for index in range(len(images))]
    frame["confidence"] = 0.9
    frame["model_version"] = "1"
    frame["timestamp"] = pd.Timestamp(f"{day}T12:00:00", tz="UTC")
    frame["request_id"] = "old"
    folder = store / MODEL / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    frame[list(LOG_COLUMNS)].to_parquet(folder / "000000000000-old.parquet", index=False)
    return frame


def test_an_old_log_without_softmax_columns_still_reads(tmp_path: Path) -> None:
    """Only old files: no softmax columns at all. Old and new files: the old rows get NaN there."""
    images = np.random.default_rng(5).integers(0, 256, size=(3, 8, 8), dtype=np.uint8)
    old = _write_old_format_file(tmp_path, "2026-01-01", images)

    alone = read_prediction_log(str(tmp_path), MODEL)
    assert list(alone.columns) == list(LOG_COLUMNS)
    assert alone["prediction"].tolist() == old["prediction"].tolist()

    log = PredictionLog(str(tmp_path), MODEL, flush_rows=1000, flush_seconds=3600)
    log.append(images[:2], probabilities_for([4, 5]), CLASS_NAMES, ["2", "2"], "new")
    assert log.close() == 2
    mixed = read_prediction_log(str(tmp_path), MODEL)
    assert list(mixed.columns) == log_columns(len(CLASS_NAMES))
    old_rows, new_rows = mixed["request_id"] == "old", mixed["request_id"] == "new"
    assert old_rows.sum() == 3 and mixed.loc[old_rows, SOFTMAX].isna().all().all()
    np.testing.assert_array_equal(mixed.loc[new_rows, SOFTMAX].to_numpy(), probabilities_for([4, 5]))


def test_probabilities_of_the_wrong_shape_are_refused_before_they_reach_the_buffer(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), MODEL, flush_rows=1000, flush_seconds=3600)
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"expected probabilities of shape \(2, 10\), got \(2, 3\)"):
        log.append(images, np.full((2, 3), 1 / 3), CLASS_NAMES, ["1", "1"], "r")
    assert log.pending_rows == 0
    log.append(images, probabilities_for([0, 1]), CLASS_NAMES, ["1", "1"], "r")
    assert log.close() == 2  # a refused request never blocks the ones after it


def test_images_are_kept_as_png_within_the_size_bound(tmp_path: Path) -> None:
    """uint8 images come back exactly, float images as round(255 x value); above the bound, null."""
    rng = np.random.default_rng(11)
    as_uint8 = rng.integers(0, 256, size=(2, 8, 8), dtype=np.uint8)
    as_float = rng.random(size=(1, 8, 8)).astype(np.float32)
    log = PredictionLog(str(tmp_path / "kept"), MODEL, flush_rows=1000, flush_seconds=3600)
    log.append(as_uint8, probabilities_for([0, 1]), CLASS_NAMES, ["1"] * 2, "bytes")
    log.append(as_float, probabilities_for([2]), CLASS_NAMES, ["1"], "floats")
    assert log.close() == 3
    logged = read_prediction_log(str(tmp_path / "kept"), MODEL)
    images = [decode_png(png) for png in logged[IMAGE_COLUMN]]
    np.testing.assert_array_equal(np.stack(images[:2]), as_uint8)
    np.testing.assert_array_equal(images[2], np.rint(as_float[0].astype(np.float64) * 255).astype(np.uint8))

    bounded = PredictionLog(str(tmp_path / "bounded"), MODEL, flush_rows=1000, flush_seconds=3600, image_max_pixels=63)
    bounded.append(as_uint8, probabilities_for([0, 1]), CLASS_NAMES, ["1"] * 2, "large")
    assert bounded.close() == 2
    import pyarrow.parquet as pq

    (written,) = (tmp_path / "bounded").glob("**/*.parquet")
    column = pq.read_table(written, columns=[IMAGE_COLUMN])[IMAGE_COLUMN]
    assert str(column.type) == "binary" and column.null_count == 2  # typed, so days with and without images concat
