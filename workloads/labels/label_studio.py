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

Ours, not Label Studio's: the tasks we hand Label Studio carry in `data` the prediction's
`request_id` and the image's `index` in that request (beside whatever `image` URL shows it), and
the project's `Choices` values are the model's class names.

Per task: cancelled annotations are ignored; of the others the latest (`updated_at`, else
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

from workloads.labels.record import InvalidLabelError, LabelRecord, check_label, check_request_id, label_studio_source

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
        when, choice = outcome
        data = task["data"]
        try:
            request_id = check_request_id(data.get("request_id"))
            label = check_label(choice, class_names)
        except InvalidLabelError as error:
            raise InvalidLabelError(f"{name}: {error}") from None
        index = _image_index(data.get("index"), name)
        answered.append((when, LabelRecord(model, request_id, index, label, source, received_at)))
    answered.sort(key=lambda item: item[0])  # stable: equal times keep file order
    return LabelStudioImport(records=[record for _, record in answered], skipped=skipped)


def _task_name(task: object, position: int) -> str:
    if isinstance(task, dict) and isinstance(task.get("id"), int | str):
        return f"task {task['id']}"
    return f"task #{position + 1} in the file"


def _task_label(task: object, from_name: str | None) -> tuple[str, object] | str:
    """(when the chosen annotation was made, its one choice), or the reason the task is skipped."""
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
    return when, chosen[0]


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
