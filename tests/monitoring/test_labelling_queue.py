"""The labelling queue: production images out as a Label Studio import, annotations back through
`mlops labels import`, joined by the quality job — the round trip, through the real console script.

Predictions are written by the serving log's writer (images included), drift summaries as the
drift job writes them, and Label Studio's side is played as its documentation describes it: the
export returns each imported task's `data` unchanged, with `annotations` added
(`workloads.labels.label_studio_tasks` cites the pages).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from monitoring.labelling_queue import CONFIG_FILE, TASKS_FILE
from monitoring.quality_join import join, labels_table, read_predictions
from monitoring.store import Store
from tests.monitoring.quality_logs import CLASSES, MODEL, log_images
from workloads.labels.store import LabelStore
from workloads.serving.logged_images import decode_png

REPOSITORY = Path(__file__).resolve().parents[2]
NORMAL, DRIFTED = date(2026, 11, 26), date(2026, 11, 27)


def softmax_with_confidence(predicted: list[int], confidence: list[float]) -> np.ndarray:
    rows = np.zeros((len(predicted), len(CLASSES)))
    for row, (index, top) in enumerate(zip(predicted, confidence, strict=True)):
        rows[row] = (1 - top) / (len(CLASSES) - 1)
        rows[row, index] = top
    return rows


def write_drift_summary(reports: Path, day: date, drifted: bool, share: float) -> None:
    folder = reports / MODEL / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"status": "drift" if drifted else "no_drift", "dataset_drift": drifted, "drifted_share": share}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")


def mlops(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The console script in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *arguments],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY), **environment},
        capture_output=True,
        text=True,
        timeout=300,
    )


def label_studio_export(tasks: list[dict], truth: dict[tuple[str, int], str], annotate: int) -> list[dict]:
    """What Label Studio's JSON export gives after a reviewer answered the first `annotate` tasks."""
    exported = []
    for number, item in enumerate(tasks, start=1):
        annotations = []
        if number <= annotate:
            choice = truth[(item["data"]["request_id"], item["data"]["index"])]
            region = {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [choice]}}
            stamp = f"2026-11-28T09:{number:02d}:00.000000Z"
            annotations = [{"id": number, "result": [region], "was_cancelled": False, "created_at": stamp}]
            annotations[0]["updated_at"] = stamp
        exported.append({**item, "id": number, "annotations": annotations})
    return exported


@pytest.fixture
def window(tmp_path: Path) -> dict:
    """A normal day of 2 requests (8 images) and a drifted day of 1 request (4 images), with known
    confidences and true classes; the drift job's summaries for both days."""
    predictions, reports = tmp_path / "predictions", tmp_path / "reports"
    rng = np.random.default_rng(7)
    truth: dict[tuple[str, int], str] = {}
    images: dict[tuple[str, int], np.ndarray] = {}
    confidence: dict[tuple[str, int], float] = {}
    plan = [(NORMAL, [0.95, 0.41, 0.88, 0.62]), (NORMAL, [0.99, 0.55, 0.97, 0.93]), (DRIFTED, [0.7, 0.3, 0.5, 0.9])]
    for day, tops in plan:
        batch = rng.integers(0, 256, size=(len(tops), 8, 8), dtype=np.uint8)
        predicted = [int(value) for value in rng.integers(0, len(CLASSES), size=len(tops))]
        request_id = log_images(predictions, day, batch, softmax_with_confidence(predicted, tops), "3")
        for index, top in enumerate(tops):
            truth[(request_id, index)] = CLASSES[int(rng.integers(0, len(CLASSES)))]
            images[(request_id, index)] = batch[index]
            confidence[(request_id, index)] = top
    write_drift_summary(reports, NORMAL, drifted=False, share=0.05)
    write_drift_summary(reports, DRIFTED, drifted=True, share=0.9)
    environment = {
        "MLOPS_PREDICTIONS_STORE": str(predictions),
        "MLOPS_REPORTS_STORE": str(reports),
        "MLOPS_LABELS_STORE": str(tmp_path / "labels"),
    }
    return {"environment": environment, "truth": truth, "images": images, "confidence": confidence, "tmp": tmp_path}


def test_queue_export_import_round_trip(window: dict) -> None:
    environment, truth, tmp = window["environment"], window["truth"], window["tmp"]
    first = tmp / "queue-1"
    queued = mlops(
        "labels",
        "queue",
        MODEL,
        "--day",
        DRIFTED.isoformat(),
        "--budget",
        "5",
        "--out",
        str(first),
        environment=environment,
    )
    assert queued.returncode == 0, queued.stderr
    assert f"queued 5 of {MODEL}'s images (budget 5)" in queued.stdout
    tasks = json.loads((first / TASKS_FILE).read_text(encoding="utf-8"))
    keys = [(item["data"]["request_id"], item["data"]["index"]) for item in tasks]
    # The drifted day's 4 images first, lowest confidence first; then the normal day's least confident.
    assert [window["confidence"][key] for key in keys] == [0.3, 0.5, 0.7, 0.9, 0.41]
    assert {item["data"]["day"] for item in tasks[:4]} == {DRIFTED.isoformat()}
    assert tasks[0]["data"]["queued_because"] == "drifted day, low confidence"
    for item, key in zip(tasks, keys, strict=True):
        image_id = f"{key[0]}-{key[1]}"
        assert item["data"]["image"] == f"/data/local-files/?d=queue-1/images/{image_id}.png"
        np.testing.assert_array_equal(
            decode_png((first / "images" / f"{image_id}.png").read_bytes()), window["images"][key]
        )
        (prediction,) = item["predictions"]
        assert prediction["model_version"] == f"{MODEL} v3" and prediction["score"] == window["confidence"][key]
        (region,) = prediction["result"]
        assert (region["from_name"], region["to_name"], region["type"]) == ("label", "image", "choices")
        assert region["value"]["choices"] == [item["data"]["predicted_class"]]
    config = (first / CONFIG_FILE).read_text(encoding="utf-8")
    assert '<Choices name="label" toName="image"' in config and all(f'"{name}"' in config for name in CLASSES)

    export = tmp / "export.json"
    export.write_text(json.dumps(label_studio_export(tasks, truth, annotate=3)), encoding="utf-8")
    imported = mlops("labels", "import", MODEL, str(export), environment=environment)
    assert imported.returncode == 0, imported.stderr
    assert "imported 3 labels" in imported.stdout and "skipped 2 tasks: no annotation" in imported.stdout
    labels = LabelStore(environment["MLOPS_LABELS_STORE"]).load(MODEL, NORMAL, datetime.now(tz=UTC).date())
    stored = dict(zip(zip(labels["request_id"], labels["image_index"], strict=True), labels["label"], strict=True))
    assert stored == {key: truth[key] for key in keys[:3]}
    # ... and the quality job's join finds each label's prediction.
    logged = read_predictions(Store(environment["MLOPS_PREDICTIONS_STORE"]), MODEL, [NORMAL, DRIFTED])
    assert join(logged, labels_table(labels)).matched == 3

    second = tmp / "queue-2"
    again = mlops(
        "labels",
        "queue",
        MODEL,
        "--day",
        DRIFTED.isoformat(),
        "--budget",
        "100",
        "--out",
        str(second),
        environment=environment,
    )
    assert again.returncode == 0, again.stderr
    assert "skipped: 3 already labelled, 2 already queued" in again.stdout
    later = [
        (item["data"]["request_id"], item["data"]["index"]) for item in json.loads((second / TASKS_FILE).read_text())
    ]
    assert len(later) == 7 and not set(later) & set(keys)  # no image queued twice
    assert [window["confidence"][key] for key in later] == sorted(window["confidence"][key] for key in later)

    third = mlops(
        "labels", "queue", MODEL, "--day", DRIFTED.isoformat(), "--out", str(tmp / "queue-3"), environment=environment
    )
    assert third.returncode == 0 and json.loads((tmp / "queue-3" / TASKS_FILE).read_text()) == []


def test_images_the_log_did_not_keep_are_never_queued(tmp_path: Path) -> None:
    from monitoring.labelling_queue import QueueRequest, build_queue
    from monitoring.labelling_queue_settings import LabellingQueueSettings

    predictions = tmp_path / "predictions"
    batch = np.zeros((3, 8, 8), dtype=np.uint8)
    log_images(predictions, NORMAL, batch, softmax_with_confidence([0, 1, 2], [0.4, 0.5, 0.6]), "1", image_max_pixels=0)
    settings = LabellingQueueSettings.from_environment(
        {
            "MLOPS_PREDICTIONS_STORE": str(predictions),
            "MLOPS_REPORTS_STORE": str(tmp_path / "reports"),
            "MLOPS_LABELS_STORE": str(tmp_path / "labels"),
        }
    )
    request = QueueRequest(MODEL, NORMAL, 10, str(tmp_path / "out"), CLASSES)
    result = build_queue(request, settings, datetime.now(tz=UTC))
    assert result.queued == [] and result.without_image == 3 and result.candidates == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["labels", "queue", "no-such-model", "--day", "2026-11-27"], "no-such-model"),
        (["labels", "queue", MODEL, "--day", "27/11/2026"], "--day '27/11/2026': expected YYYY-MM-DD"),
        (["labels", "queue", MODEL, "--budget", "-1"], "--budget -1: expected an integer >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments: list[str], message: str, tmp_path: Path) -> None:
    outcome = mlops(*arguments, "--out", str(tmp_path / "out"), environment={})
    assert outcome.returncode == 2, outcome.stdout + outcome.stderr
    assert message in outcome.stderr and "Traceback" not in outcome.stderr
    assert not (tmp_path / "out").exists()


def test_a_drifted_day_outranks_a_newer_normal_day() -> None:
    import pandas as pd

    from monitoring.labelling_candidates import DayDrift, prioritise

    candidates = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d"],
            "image_index": [0, 0, 0, 0],
            "confidence": [0.2, 0.9, 0.1, 0.5],
            "day": ["2026-11-25", "2026-11-26", "2026-11-27", "2026-11-26"],
        }
    )
    drift = [
        DayDrift("2026-11-25", False, 0.3),  # a larger share than the drifted day's, but not drifted
        DayDrift("2026-11-26", True, 0.2),
        DayDrift("2026-11-27", False, None),
    ]
    ordered = prioritise(candidates, drift)
    assert ordered["request_id"].tolist() == ["d", "b", "c", "a"]
