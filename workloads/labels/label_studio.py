"""A Label Studio JSON export → label records, with what was skipped and why.

The export (Export → JSON) is a list of tasks in Label Studio's raw JSON task format. The fields
relied on, as Label Studio documents them:

* a task is an object with `id`, `data` (the task's input, as it was imported) and `annotations`
  (a list) — "Label Studio JSON format of annotated tasks", https://labelstud.io/guide/task_format
  (and https://labelstud.io/guide/export: the JSON export is a list of such tasks);
* an annotation has `result` (a list of regions), `was_cancelled` (the annotator skipped the task),
  `created_at` and `updated_at` (ISO 8601) — same page;
* a classification region is `{"type": "choices", "from_name": <the Choices tag's name>,
  "value": {"choices": [<chosen values>]}}`; a `Choices` tag may allow one choice or several —
  https://labelstud.io/tags/choices, and the result example in HumanSignal's knowledge base
  ("A Guide to Filter inside of annotation.results object", HumanSignal/support-knowledgebase).

Who answered (the label's `annotator`), as Label Studio's source has it (HumanSignal/label-studio,
label_studio/data_export/serializers.py `AnnotationSerializer`, and the annotation schema of its API,
develop branch as of 2025-12; the same since 1.x): an annotation's `completed_by` is the id (an
integer) of the user who created it — what the project's Export button and `GET /api/projects/<id>/export`
write (data_export/api.py serializes with `expand=['drafts']` only) — or, in an export snapshot created
with `serialization_options.annotations__completed_by.only_id` false (and in target-storage exports),
the user object `{"id", "email", "first_name", "last_name"}` (`CompletedBySerializer`; the expansion is
in data_export/models.py). `updated_by` is the id of the last user who changed the annotation, or null.
The answer is the last editor's: `updated_by` when it names someone other than the creator, else the
creator. Recorded as the user's email when the export carries it, else `user:<id>` (ids are per Label
Studio instance: the label's source names the file); none of the fields there: unknown (None).
`lead_time` (seconds spent) is not kept.

Ours, not Label Studio's: the tasks we hand Label Studio carry in `data` the prediction's
`request_id` and the image's `index` in that request (beside whatever `image` URL shows it), and
the project's `Choices` values are the model's class names.

Per task: cancelled annotations (`was_cancelled`: the annotator skipped the task) are ignored, so a
skip never becomes a label nor hides an earlier real answer; of the others the latest (`updated_at`, else
`created_at`; a tie goes to the later one in the list) is the task's answer, and it must hold one
`choices` region (the one named `from_name` when given) with exactly one choice. A task with no
usable annotation is skipped with its reason. A malformed file or task, or a choice that is not a
class of the model, fails the whole import (`LabelStudioError`, `InvalidLabelError`): nothing is
stored, so a fixed file can simply be imported again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workloads.labels.record import (
    InvalidLabelError,
    LabelRecord,
    check_annotator,
    check_label,
    check_request_id,
    label_studio_source,
)

SKIP_NO_ANNOTATION = "no annotation"
SKIP_CANCELLED = "every annotation cancelled"
SKIP_NO_CHOICE = "latest annotation has no choices result"
SKIP_SEVERAL_CHOICES = "latest annotation chose more than one class"
SKIP_SEVERAL_TAGS = "latest annotation has several choices results (pass --from-name)"


class LabelStudioError(ValueError):
    """The export is not what this reader relies on; the message names the task and the field."""


@dataclass
class LabelStudioImport:
    records: list[LabelRecord]
    """One per labelled task, oldest annotation first (so on equal receipt times the latest wins)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Tasks left out, per reason."""


def read_export(
    path: Path, model: str, class_names: Sequence[str], received_at: datetime, from_name: str | None = None
) -> LabelStudioImport:
    """Parse the export at `path` into records for `model`; LabelStudioError / InvalidLabelError on a bad file."""
    try:
        tasks = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        raise LabelStudioError(f"not a readable JSON file ({error.__class__.__name__})") from None
    if not isinstance(tasks, list):
        raise LabelStudioError("not a Label Studio JSON export: expected a list of tasks")
    source = label_studio_source(path.name)
    answered: list[tuple[str, LabelRecord]] = []
    skipped: Counter[str] = Counter()
    for position, task in enumerate(tasks):
        name = _task_name(task, position)
        try:
            outcome = _task_label(task, from_name)
        except LabelStudioError as error:
            raise LabelStudioError(f"{name}: {error}") from None
        if isinstance(outcome, str):
            skipped[outcome] += 1
            continue
        when, choice, annotator = outcome
        data = task["data"]
        try:
            request_id = check_request_id(data.get("request_id"))
            label = check_label(choice, class_names)
        except InvalidLabelError as error:
            raise InvalidLabelError(f"{name}: {error}") from None
        index = _image_index(data.get("index"), name)
        answered.append((when, LabelRecord(model, request_id, index, label, source, received_at, annotator)))
    answered.sort(key=lambda item: item[0])  # stable: equal times keep file order
    return LabelStudioImport(records=[record for _, record in answered], skipped=skipped)


def _task_name(task: object, position: int) -> str:
    if isinstance(task, dict) and isinstance(task.get("id"), int | str):
        return f"task {task['id']}"
    return f"task #{position + 1} in the file"


def _task_label(task: object, from_name: str | None) -> tuple[str, object, str | None] | str:
    """(when the chosen annotation was made, its one choice, who made it), or the reason the task is skipped."""
    if not isinstance(task, dict):
        raise LabelStudioError("a task must be a JSON object")
    if not isinstance(task.get("data"), dict):
        raise LabelStudioError("`data` must be an object holding request_id and index")
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list) or not all(isinstance(item, dict) for item in annotations):
        raise LabelStudioError("`annotations` must be a list of objects")
    if not annotations:
        return SKIP_NO_ANNOTATION
    kept = [(position, item) for position, item in enumerate(annotations) if not _cancelled(item)]
    if not kept:
        return SKIP_CANCELLED
    when, _, latest = max(((_annotation_time(item), position, item) for position, item in kept), key=_order)
    regions = latest.get("result")
    if not isinstance(regions, list) or not all(isinstance(region, dict) for region in regions):
        raise LabelStudioError("an annotation's `result` must be a list of objects")
    choices = [region for region in regions if region.get("type") == "choices"]
    if from_name is not None:
        choices = [region for region in choices if region.get("from_name") == from_name]
    if not choices:
        return SKIP_NO_CHOICE
    if len(choices) > 1:
        return SKIP_SEVERAL_TAGS
    value = choices[0].get("value")
    chosen = value.get("choices") if isinstance(value, dict) else None
    if not isinstance(chosen, list):
        raise LabelStudioError("a choices result needs `value.choices`, a list")
    if len(chosen) != 1:
        return SKIP_SEVERAL_CHOICES if chosen else SKIP_NO_CHOICE
    return when, chosen[0], _annotator(latest)


def _annotator(annotation: dict[str, Any]) -> str | None:
    """Who gave the annotation's answer: its last editor (`updated_by`) when another user than its
    creator (`completed_by`), else the creator; None when the export names neither."""
    creator_id, creator = _user(annotation.get("completed_by"), "completed_by")
    editor_id, editor = _user(annotation.get("updated_by"), "updated_by")
    if editor_id is not None and editor_id != creator_id:
        return editor
    return creator


def _user(value: object, field_name: str) -> tuple[int | None, str | None]:
    """(id, how the label records the user) of a user field: an id, a user object, or absent/null."""
    if value is None:
        return None, None
    if isinstance(value, int) and not isinstance(value, bool):
        return value, f"user:{value}"
    if isinstance(value, dict) and isinstance(value.get("id"), int) and not isinstance(value["id"], bool):
        email = value.get("email")
        if isinstance(email, str) and email.strip():
            try:
                return value["id"], check_annotator(email, f"`{field_name}.email`")
            except InvalidLabelError as error:
                raise LabelStudioError(str(error)) from None
        return value["id"], f"user:{value['id']}"
    raise LabelStudioError(f"`{field_name}` must be a user id or a user object with an integer `id`")


def _cancelled(annotation: dict[str, Any]) -> bool:
    flag = annotation.get("was_cancelled", False)
    if not isinstance(flag, bool):
        raise LabelStudioError("`was_cancelled` must be true or false")
    return flag


def _annotation_time(annotation: dict[str, Any]) -> str:
    """`updated_at`, else `created_at`, normalised to sortable UTC ISO text ('' when neither is there)."""
    stamp = annotation.get("updated_at") or annotation.get("created_at")
    if stamp is None:
        return ""
    try:
        parsed = datetime.fromisoformat(str(stamp))
    except ValueError:
        raise LabelStudioError(f"annotation time {str(stamp)[:40]!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise LabelStudioError(f"annotation time {str(stamp)[:40]!r} has no time zone")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _order(item: tuple[str, int, dict[str, Any]]) -> tuple[str, int]:
    return item[0], item[1]


def _image_index(value: object, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise LabelStudioError(f"{name}: `data.index` must be a non-negative integer (the image's position in its request)")
