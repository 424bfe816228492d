"""The demo's annotator: answers labelling tasks with the true labels, in Label Studio's export format.

`make demo` knows what each replayed image really shows (it sent them), so it can play the person
who labels the queue: it takes the tasks (Label Studio's import format, as `mlops labels queue`
writes them: `data` holds the request id and image index), adds to each one annotation with one
`choices` result, and writes the file Label Studio's JSON export would hold. `mlops labels import`
then reads that file exactly as it reads a real export (`workloads/labels/label_studio.py` names the
fields, with Label Studio's documentation and source).

Who answered is written as an export snapshot with the annotator expanded writes it: `completed_by`
the user object (`id`, `email`, `first_name`, `last_name`) and `updated_by` the same user's id, so
the demo's labels, and the dataset version trained on them, name their annotator as a real team's do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workloads.labels.label_studio_tasks import FROM_NAME, TO_NAME

CHOICES_TAG = FROM_NAME
"""The Choices tag the queue's labelling config names (`workloads.labels.label_studio_tasks`)."""


@dataclass(frozen=True)
class Annotator:
    """A Label Studio user, as an export with `completed_by` expanded shows one."""

    id: int = 1
    email: str = "demo-annotator@mlops.invalid"
    first_name: str = "Demo"
    last_name: str = "Annotator"

    def completed_by(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "first_name": self.first_name, "last_name": self.last_name}


DEMO_ANNOTATOR = Annotator()


def annotated_export(
    tasks: Sequence[Mapping[str, Any]],
    truth: Callable[[str, int], str | None],
    annotator: Annotator = DEMO_ANNOTATOR,
) -> list[dict[str, Any]]:
    """The tasks, each answered with `truth(request_id, index)`; a task it has no answer for stays unanswered."""
    stamp = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
    exported: list[dict[str, Any]] = []
    for position, task in enumerate(tasks):
        data = dict(task["data"])
        answer = truth(str(data["request_id"]), int(data["index"]))
        annotations = []
        if answer is not None:
            result = {"type": "choices", "from_name": CHOICES_TAG, "to_name": TO_NAME, "value": {"choices": [answer]}}
            annotations.append(
                {
                    "id": position + 1,
                    "completed_by": annotator.completed_by(),
                    "updated_by": annotator.id,
                    "result": [result],
                    "was_cancelled": False,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        exported.append({"id": task.get("id", position + 1), "data": data, "annotations": annotations})
    return exported
