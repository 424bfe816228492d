"""`POST /feedback` on a real `bentoml serve`: the label of a predicted image lands in the labels
store under its request_id and image index; bad bodies are one 4xx message and store nothing; a
repeated label wins on read; a label for a request the log does not hold is kept."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.workloads.serving.conftest import DigitsVersions
from workloads.labels.store import LabelStore
from workloads.request_id import new_request_id
from workloads.serving.local import LocalModelService
from workloads.serving.prediction_log import read_prediction_log


def labels_store(service: LocalModelService) -> LabelStore:
    """The store the session's service writes (MLOPS_LABELS_STORE, beside its log: conftest)."""
    return LabelStore(str(service.log_path.parent / "labels"))


def stored_rows(service: LocalModelService) -> int:
    today = datetime.now(tz=UTC).date()
    return len(labels_store(service).read("digits", today, today))


def resolved(service: LocalModelService, request_id: str) -> list[tuple[int, str]]:
    today = datetime.now(tz=UTC).date()
    labels = labels_store(service).load("digits", today, today)
    mine = labels[labels["request_id"] == request_id]
    return list(zip(mine["image_index"], mine["label"], strict=True))


def feedback(service: LocalModelService, body: Any) -> requests.Response:
    return requests.post(f"{service.url}/feedback", json=body, timeout=30)


def classify(service: LocalModelService, digits_versions: DigitsVersions, count: int) -> dict[str, Any]:
    images = digits_versions.data.test_images[:count].tolist()
    response = requests.post(f"{service.url}/classify_array", json={"image": images}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_feedback_for_a_prediction_lands_in_the_labels_store(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    answer = classify(digits_service, digits_versions, 2)
    request_id = answer["request_id"]
    truth = [str(int(label)) for label in digits_versions.data.test_labels[:2]]
    response = feedback(
        digits_service,
        {"request_id": request_id, "labels": [{"index": 0, "label": truth[0]}, {"index": 1, "label": truth[1]}]},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"model": "digits", "request_id": request_id, "stored": 2}
    assert resolved(digits_service, request_id) == [(0, truth[0]), (1, truth[1])]
    # The prediction log names the same images the same way: the join a quality job will make.
    predictions = log_store(digits_service)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logged = read_prediction_log(str(predictions), "digits")
        rows = logged[logged["request_id"] == request_id]
        if len(rows) == 2:
            break
        time.sleep(0.5)
    assert rows["image_index"].tolist() == [0, 1]
    assert rows["predicted_class"].tolist() == [prediction["class"] for prediction in answer["predictions"]]


def log_store(service: LocalModelService) -> Path:
    return service.log_path.parent / "predictions"


def test_a_repeated_label_for_an_image_wins_on_read(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    request_id = classify(digits_service, digits_versions, 1)["request_id"]
    for label in ("3", "5", "8"):
        assert feedback(digits_service, {"request_id": request_id, "labels": [{"index": 0, "label": label}]}).ok
    assert resolved(digits_service, request_id) == [(0, "8")]


def test_the_annotator_of_a_feedback_is_stored_with_its_labels(digits_service: LocalModelService) -> None:
    request_id = new_request_id()
    body = {"request_id": request_id, "labels": [{"index": 0, "label": "2"}], "annotator": "ana@example.org"}
    assert feedback(digits_service, body).status_code == 200
    today = datetime.now(tz=UTC).date()
    labels = labels_store(digits_service).load("digits", today, today)
    assert labels[labels["request_id"] == request_id]["annotator"].tolist() == ["ana@example.org"]


def test_a_label_for_a_request_not_in_the_log_is_kept(digits_service: LocalModelService) -> None:
    unseen = new_request_id()
    response = feedback(digits_service, {"request_id": unseen, "labels": [{"index": 3, "label": "4"}]})
    assert response.status_code == 200, response.text
    assert resolved(digits_service, unseen) == [(3, "4")]


@pytest.mark.parametrize(
    ("send", "status", "message"),
    [
        (
            lambda url, rid: requests.post(
                f"{url}/feedback", json={"request_id": rid, "labels": [{"index": 0, "label": "cat"}]}
            ),
            422,
            "unknown class 'cat': the model's classes are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
        ),
        (
            lambda url, rid: requests.post(
                f"{url}/feedback", data=b'{"request_id": "' + rid.encode(), headers={"Content-Type": "application/json"}
            ),
            400,
            "the request body is not valid JSON",
        ),
        (lambda url, rid: requests.post(f"{url}/feedback", json=[rid]), 400, "the request body must be a JSON object"),
        (
            lambda url, rid: requests.post(f"{url}/feedback", json={"request_id": rid}),
            422,
            "`labels` must be a non-empty list",
        ),
        (
            lambda url, rid: requests.post(
                f"{url}/feedback", json={"request_id": "x", "labels": [{"index": 0, "label": "1"}]}
            ),
            422,
            "`request_id` must be the 32-hex-digit id",
        ),
        (
            lambda url, rid: requests.post(
                f"{url}/feedback",
                json={"request_id": rid, "labels": [{"index": 0, "label": "1"}, {"index": 1, "label": "dog"}]},
            ),
            422,
            "unknown class 'dog'",
        ),
        (lambda url, rid: requests.post(f"{url}/feedback", data={"request_id": rid}), 415, "unsupported content type"),
        (
            lambda url, rid: requests.post(
                f"{url}/feedback", json={"request_id": rid, "labels": [{"index": 0, "label": "1"}], "annotator": 42}
            ),
            422,
            "`annotator` must be a string of 1 to 200 printable characters",
        ),
    ],
)
def test_a_bad_body_is_one_4xx_message_and_stores_nothing(
    digits_service: LocalModelService, send: Any, status: int, message: str
) -> None:
    before = stored_rows(digits_service)
    response = send(digits_service.url, new_request_id())
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and body["error"].startswith(message) and "\n" not in body["error"]
    assert stored_rows(digits_service) == before  # the valid label beside the bad one was not stored
    assert digits_service.ready()
