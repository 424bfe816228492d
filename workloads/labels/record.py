"""One label: what a human (or a labelling tool) says one served image shows.

A record names its image the way the prediction log does — `request_id` (the id the prediction
response returned) and `image_index` (the image's position in that request) — so labels and
predictions join on those two columns, whichever arrives first. `label` is a class name of the
model's catalogue entry; `source` says where it came from (`feedback`, `label-studio:<file>`);
`received_at` is when the platform received it (UTC), the order "the last one wins" follows;
`annotator` says who gave it (the feedback body's `annotator`, the Label Studio user), None when
unknown — labels files written before the column existed read as unknown too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from workloads.request_id import is_request_id

LABEL_COLUMNS = ("model", "request_id", "image_index", "label", "source", "received_at", "annotator")
"""The columns of every labels file, in file order."""
KEY_COLUMNS = ("model", "request_id", "image_index")
"""What one label is about: one image of one prediction request."""
FEEDBACK_SOURCE = "feedback"
LABEL_STUDIO_SOURCE_PREFIX = "label-studio:"
ANNOTATOR_COLUMN = "annotator"
"""The last column: absent from labels files written before it existed (read as null, unknown)."""
MAX_ANNOTATOR_CHARS = 200
"""An email or a name fits; a whole document sent as the annotator does not."""
SHOWN_CLASSES = 20
"""Class names listed in an unknown-class message; a 1,000-class model gets a count beyond them."""


class InvalidLabelError(ValueError):
    """A label cannot be stored; the message says why in one line, `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LabelRecord:
    model: str
    request_id: str
    image_index: int
    label: str
    source: str
    received_at: datetime
    """Timezone-aware, UTC."""
    annotator: str | None = None
    """Who labelled the image (a name, an email, `user:<id>` of a Label Studio user); None: unknown."""


def label_studio_source(file_name: str) -> str:
    return f"{LABEL_STUDIO_SOURCE_PREFIX}{file_name}"


def check_label(label: object, class_names: Sequence[str]) -> str:
    """`label` when it is one of the model's class names, else InvalidLabelError naming both."""
    if isinstance(label, str) and label in class_names:
        return label
    shown = ", ".join(class_names[:SHOWN_CLASSES])
    more = f" … ({len(class_names)} in all)" if len(class_names) > SHOWN_CLASSES else ""
    named = repr(label[:60]) if isinstance(label, str) else f"a JSON {_json_type(label)}"
    raise InvalidLabelError(f"unknown class {named}: the model's classes are {shown}{more}")


def check_request_id(value: object) -> str:
    if is_request_id(value):
        return str(value)
    raise InvalidLabelError("`request_id` must be the 32-hex-digit id a prediction response returned")


def check_annotator(value: object, where: str = "`annotator`") -> str:
    """Who labelled: a string of 1 to MAX_ANNOTATOR_CHARS printable characters, else InvalidLabelError."""
    if not isinstance(value, str):
        problem = f"a JSON {_json_type(value)}"
    elif not value.strip():
        problem = "empty"
    elif len(value) > MAX_ANNOTATOR_CHARS:
        problem = f"{len(value)} characters long"
    elif not value.isprintable():
        problem = "holding control characters"
    else:
        return value
    raise InvalidLabelError(
        f"{where} must be a string of 1 to {MAX_ANNOTATOR_CHARS} printable characters (who labelled: "
        f"a name, an email, an id), not {problem}"
    )


def check_image_index(value: object, max_images: int) -> int:
    """An image position a request can have: 0 .. max_images - 1 (a request never holds more)."""
    # bool is an int to Python, never an index to a client.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < max_images:
        return value
    raise InvalidLabelError(
        f"`index` must be an integer from 0 to {max_images - 1}: the image's position in its request"
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {list: "array", dict: "object"}.get(type(value), type(value).__name__)
