"""The body of `POST /feedback` → label records, or one `InvalidLabelError` and nothing at all.

    {"request_id": "<id from the prediction response>",
     "labels": [{"index": 0, "label": "3"}, {"index": 1, "label": "7"}],
     "annotator": "ana@example.org"}

`annotator` (optional) says who labelled the images of this body: it is stored with each label and
carried into the dataset version that trains on them (`production.json`), so a bad batch of labels
can be traced to its labeller. Omitted, the labels' annotator is unknown; present, it must be a
string of 1 to MAX_ANNOTATOR_CHARS printable characters — a number or an object is refused, not
guessed at.

One entry per image labelled, by its position in the request (`image_index` in the prediction
log): a client may label some images of a request and not others, and correct one later by sending
it again (the last one received wins, `resolve`). Checked here, before anything is stored: the
request id's shape, each index (an integer below MLOPS_MAX_IMAGES_PER_REQUEST: no request holds
more images), each label (a class of the model), no index twice in one body (which would be the
label?), the annotator when given, and no other keys (a misspelt key must not be dropped silently).

Not checked: that the request is in the prediction log, and that the index is below that request's
image count. The log is written in batches (seconds later) and the route does not read it; a label
that arrives first is stored all the same and joined when the log has its request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from workloads.labels.record import (
    FEEDBACK_SOURCE,
    InvalidLabelError,
    LabelRecord,
    check_annotator,
    check_image_index,
    check_label,
    check_request_id,
)

BODY_KEYS = ("request_id", "labels", "annotator")
ENTRY_KEYS = ("index", "label")
ENTRY_SHAPE = '{"index": <position of the image in the request>, "label": "<class>"}'


def feedback_records(
    body: object,
    model: str,
    class_names: Sequence[str],
    max_images: int,
    received_at: datetime,
) -> list[LabelRecord]:
    """The records a feedback body (parsed JSON) asks to store, all of them valid, or InvalidLabelError."""
    if not isinstance(body, dict):
        raise InvalidLabelError(f'the body must be a JSON object: {{"request_id": "…", "labels": [{ENTRY_SHAPE}]}}')
    _check_keys(body, BODY_KEYS, "the body")
    request_id = check_request_id(body.get("request_id"))
    annotator = check_annotator(body["annotator"]) if "annotator" in body else None
    entries = body.get("labels")
    if not isinstance(entries, list) or not entries:
        raise InvalidLabelError(f"`labels` must be a non-empty list of {ENTRY_SHAPE}")
    if len(entries) > max_images:
        raise InvalidLabelError(f"{len(entries)} labels, more than a request's {max_images} images at most")
    records: list[LabelRecord] = []
    seen: set[int] = set()
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidLabelError(f"`labels[{position}]` must be {ENTRY_SHAPE}")
        _check_keys(entry, ENTRY_KEYS, f"`labels[{position}]`")
        index = check_image_index(entry.get("index"), max_images)
        if index in seen:
            raise InvalidLabelError(f"image {index} is labelled twice in one body: send one label per image")
        seen.add(index)
        label = check_label(entry.get("label"), class_names)
        records.append(LabelRecord(model, request_id, index, label, FEEDBACK_SOURCE, received_at, annotator))
    return records


def _check_keys(value: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = [str(key) for key in value if key not in allowed]
    if unknown:
        raise InvalidLabelError(f"{where} has unknown key {unknown[0][:40]!r}: the keys are {', '.join(allowed)}")
