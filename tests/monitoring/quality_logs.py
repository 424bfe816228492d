"""Prediction logs and labels for the quality job's tests, written by the real writers.

Predictions go through the serving log's writer (`PredictionLog`: its columns, file layout, request
ids and image indices); labels through the labels store (`LabelStore`, a local folder), so the job
reads exactly what the service and `mlops labels import` write. The writer dates rows by the clock;
`log_request` re-dates a buffered request before the flush, so a test can place predictions on the
days it needs and the file still lands in that day's folder, written by the writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from workloads import catalogue
from workloads.labels.record import FEEDBACK_SOURCE, LabelRecord
from workloads.labels.store import LabelStore
from workloads.serving.prediction_log import PredictionLog

MODEL = "digits"
CLASSES = catalogue.get(MODEL).class_names


def log_request(store: Path, day: date, predicted: Sequence[str], versions: Sequence[str] | str) -> str:
    """One prediction request of `len(predicted)` images served on `day`; returns its request_id."""
    count = len(predicted)
    probabilities = np.full((count, len(CLASSES)), 0.1 / (len(CLASSES) - 1))
    probabilities[np.arange(count), [CLASSES.index(name) for name in predicted]] = 0.9
    images = np.random.default_rng(count).integers(0, 16, size=(count, 8, 8), dtype=np.uint8)
    return log_images(store, day, images, probabilities, versions)


def log_images(
    store: Path, day: date, images: np.ndarray, probabilities: np.ndarray, versions: Sequence[str] | str, **options: int
) -> str:
    """One request of these images with these softmax rows, served on `day`; returns its request_id.
    `options` go to the writer (`image_max_pixels`)."""
    count = len(images)
    versions = [versions] * count if isinstance(versions, str) else list(versions)
    request_id = uuid.uuid4().hex
    log = PredictionLog(str(store), MODEL, flush_rows=10**9, flush_seconds=3600, **options)
    try:
        log.append(images, probabilities, CLASSES, versions, request_id)
        stamp = pd.Timestamp(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
        log._records[-1] = log._records[-1]._replace(timestamp=stamp)  # the day this test needs
    finally:
        log.close()
    return request_id


def send_labels(store: Path, request_id: str, labels: Sequence[str], received: datetime) -> None:
    """Ground truth for images 0.. of a request, received at `received` (one feedback request)."""
    records = [
        LabelRecord(MODEL, request_id, index, label, FEEDBACK_SOURCE, received) for index, label in enumerate(labels)
    ]
    LabelStore(str(store)).write(records)


def answers(correct: int, wrong: int) -> tuple[list[str], list[str]]:
    """(predicted, true) classes of `correct + wrong` images: the first `correct` predicted right."""
    predicted = [CLASSES[index % len(CLASSES)] for index in range(correct + wrong)]
    truth = predicted[:correct] + [CLASSES[(CLASSES.index(name) + 1) % len(CLASSES)] for name in predicted[correct:]]
    return predicted, truth
