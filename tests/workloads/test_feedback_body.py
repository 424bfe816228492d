"""The `/feedback` body: what is stored from a valid one, and one message for each kind of mistake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workloads.labels.feedback import feedback_records
from workloads.labels.record import MAX_ANNOTATOR_CHARS, InvalidLabelError, check_label
from workloads.request_id import new_request_id

CLASSES = [str(digit) for digit in range(10)]
NOW = datetime(2031, 5, 6, 10, 0, tzinfo=UTC)
REQUEST = new_request_id()


def records(body: object, max_images: int = 64) -> list[Any]:
    return feedback_records(body, "digits", CLASSES, max_images, NOW)


def test_a_valid_body_gives_one_record_per_image() -> None:
    stored = records({"request_id": REQUEST, "labels": [{"index": 1, "label": "7"}, {"index": 0, "label": "3"}]})
    assert [(r.model, r.request_id, r.image_index, r.label, r.source, r.received_at) for r in stored] == [
        ("digits", REQUEST, 1, "7", "feedback", NOW),
        ("digits", REQUEST, 0, "3", "feedback", NOW),
    ]
    assert [r.annotator for r in stored] == [None, None]  # not said: unknown


def test_the_annotator_is_stored_with_each_label_of_the_body() -> None:
    body = {"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}, {"index": 1, "label": "4"}]}
    stored = records({**body, "annotator": "ana@example.org"})
    assert [(r.image_index, r.annotator) for r in stored] == [(0, "ana@example.org"), (1, "ana@example.org")]
    assert records({**body, "annotator": "x" * MAX_ANNOTATOR_CHARS})[0].annotator == "x" * MAX_ANNOTATOR_CHARS


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"index": 0, "label": "3"}], "the body must be a JSON object"),
        ({"labels": [{"index": 0, "label": "3"}]}, "`request_id` must be the 32-hex-digit id"),
        ({"request_id": "not-an-id", "labels": [{"index": 0, "label": "3"}]}, "`request_id` must be"),
        ({"request_id": REQUEST}, "`labels` must be a non-empty list"),
        ({"request_id": REQUEST, "labels": []}, "`labels` must be a non-empty list"),
        ({"request_id": REQUEST, "labels": "3"}, "`labels` must be a non-empty list"),
        ({"request_id": REQUEST, "labels": ["3"]}, "`labels[0]` must be {"),
        ({"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}], "lables": []}, "unknown key 'lables'"),
        ({"request_id": REQUEST, "labels": [{"index": 0, "class": "3"}]}, "`labels[0]` has unknown key 'class'"),
        ({"request_id": REQUEST, "labels": [{"index": -1, "label": "3"}]}, "`index` must be an integer from 0 to 63"),
        ({"request_id": REQUEST, "labels": [{"index": 64, "label": "3"}]}, "`index` must be an integer from 0 to 63"),
        ({"request_id": REQUEST, "labels": [{"index": True, "label": "3"}]}, "`index` must be an integer"),
        ({"request_id": REQUEST, "labels": [{"index": "0", "label": "3"}]}, "`index` must be an integer"),
        ({"request_id": REQUEST, "labels": [{"label": "3"}]}, "`index` must be an integer"),
        (
            {"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}, {"index": 0, "label": "4"}]},
            "image 0 is labelled twice",
        ),
        (
            {"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}, {"index": 1, "label": "12"}]},
            "unknown class '12': the model's classes are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
        ),
        ({"request_id": REQUEST, "labels": [{"index": 0, "label": 3}]}, "unknown class a JSON number"),
        ({"request_id": REQUEST, "labels": [{"index": 0}]}, "unknown class a JSON null"),
        (
            {"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}], "annotator": 7},
            "`annotator` must be a string of 1 to 200 printable characters (who labelled: a name, an email, an id), "
            "not a JSON number",
        ),
        ({"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}], "annotator": None}, "not a JSON null"),
        ({"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}], "annotator": {"id": 1}}, "not a JSON object"),
        ({"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}], "annotator": " "}, "not empty"),
        ({"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}], "annotator": "a\nb"}, "control characters"),
        ({"request_id": REQUEST, "labels": [{"index": 0, "label": "3"}], "annotator": "a" * 201}, "201 characters"),
    ],
)
def test_each_mistake_is_one_422_message_and_no_record(body: object, message: str) -> None:
    with pytest.raises(InvalidLabelError) as raised:
        records(body)
    assert raised.value.status == 422
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_more_labels_than_a_request_can_have_images() -> None:
    labels = [{"index": index, "label": "1"} for index in range(5)]
    with pytest.raises(InvalidLabelError, match="5 labels, more than a request's 4 images"):
        records({"request_id": REQUEST, "labels": labels}, max_images=4)


def test_a_large_class_list_is_shortened_in_the_message() -> None:
    classes = [f"class-{number}" for number in range(1000)]
    with pytest.raises(InvalidLabelError) as raised:
        check_label("dog", classes)
    text = str(raised.value)
    assert text.startswith("unknown class 'dog': the model's classes are class-0, class-1,")
    assert text.endswith("class-19 … (1000 in all)")
