"""Served images and their ground truth, written by the real writers, for the tests of the loop.

Predictions go through the serving log's writer (`PredictionLog`, which keeps each image); labels
through `mlops labels import` of a Label Studio export built by the demo's annotator
(`cli.local_annotator`) — the same path a labelling team's export takes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from cli.local_annotator import annotated_export
from cli.main import app
from workloads import catalogue
from workloads.serving.prediction_log import PredictionLog

MODEL = "digits"
CLASSES = catalogue.get(MODEL).class_names


def served_request(store: Path, day: date, images: np.ndarray, version: str = "1") -> str:
    """One request of `images` (uint8, N x 8 x 8) served on `day`, logged by the real writer; its request_id."""
    count = len(images)
    probabilities = np.full((count, len(CLASSES)), 0.1 / (len(CLASSES) - 1))
    probabilities[:, 0] = 0.9
    request_id = uuid.uuid4().hex
    log = PredictionLog(str(store), MODEL, flush_rows=10**9, flush_seconds=3600)
    try:
        log.append(images, probabilities, CLASSES, [version] * count, request_id)
        stamp = pd.Timestamp(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
        log._records[-1] = log._records[-1]._replace(timestamp=stamp)  # the day the test needs
    finally:
        log.close()
    return request_id


def import_answers(labels: Path, export: Path, answers: Mapping[tuple[str, int], str]) -> None:
    """Label Studio's export of tasks answered with `answers`, imported with `mlops labels import`."""
    tasks = [{"id": n + 1, "data": {"request_id": rid, "index": index}} for n, (rid, index) in enumerate(answers)]
    export.write_text(json.dumps(annotated_export(tasks, lambda rid, index: answers[(rid, index)])))
    result = CliRunner().invoke(app, ["labels", "import", MODEL, str(export), "--store", str(labels)])
    assert result.exit_code == 0, result.stderr
