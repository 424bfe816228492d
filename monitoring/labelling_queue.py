"""The daily labelling queue of one model: `python -m monitoring.labelling_queue MODEL [--day] [--budget] [--out]`.

Behind `mlops labels queue`, and in the cluster daily per model as CronJob `labelling-queue-<model>`
(`infra/quality_monitor.py`). One run chooses up to `budget` production images of the
`MLOPS_LABELLING_LOOKBACK_DAYS` prediction days ending with `--day` (default yesterday, UTC) —
drifted days first, low confidence first (`monitoring.labelling_candidates`), never an image already
labelled (the labels store) or already queued (`monitoring.labelling_ledger`) — and writes to
`--out` (a folder or s3://…; default `<MLOPS_LABELLING_QUEUE_STORE>/<model>/date=<day>`):

    images/<request_id>-<index>.png   the image the model saw, as the prediction log kept it
    tasks.json                        Label Studio's import format, the prediction as pre-annotation
                                      (`workloads.labels.label_studio_tasks`)
    label_config.xml                  the labelling interface those tasks expect

Annotated and exported from Label Studio (JSON), the tasks come back with `mlops labels import`
as labels of the images they show. Exit status: 0 when the queue was written (an empty queue
included), 1 when a store could not be read or written, 2 for a configuration error.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

from monitoring import alerts
from monitoring.day_drift import day_drift
from monitoring.drift import CONFIDENCE_COLUMN
from monitoring.entrypoint import job_parser, run_job_command
from monitoring.errors import LabellingQueueError
from monitoring.job import default_day
from monitoring.labelling_candidates import (
    DAY_COLUMN,
    REQUEST_ID_COLUMN,
    prioritise,
    read_candidates,
    read_images,
)
from monitoring.labelling_ledger import Key, queued_keys, record
from monitoring.labelling_queue_settings import LabellingQueueSettings
from monitoring.quality_join import prediction_days
from monitoring.store import Store
from monitoring.window import CLASS_NAME_COLUMN, VERSION_COLUMN, window_prefix
from workloads.labels.label_studio_tasks import QueuedImage, label_config, local_file_url, task
from workloads.serving.prediction_log import IMAGE_INDEX_COLUMN

LOG = logging.getLogger("mlops.labelling")
TASKS_FILE = "tasks.json"
CONFIG_FILE = "label_config.xml"
IMAGES_FOLDER = "images"


@dataclass(frozen=True)
class QueueRequest:
    model: str
    day: date
    budget: int
    out: str
    class_names: tuple[str, ...]
    local_files_path: str | None = None
    """The out folder's path below Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (default: its name)."""


@dataclass
class QueueResult:
    model: str
    first_day: str
    day: str
    budget: int
    out: str
    queued: list[QueuedImage]
    candidates: int
    """Predictions of the window whose image was kept."""
    without_image: int
    already_labelled: int
    already_queued: int
    drifted_days: list[str]
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0


def _image(row: pd.Series, drifted: set[str]) -> QueuedImage:
    day = str(row[DAY_COLUMN])
    return QueuedImage(
        request_id=str(row[REQUEST_ID_COLUMN]),
        image_index=int(row[IMAGE_INDEX_COLUMN]),
        day=day,
        model_version=str(row[VERSION_COLUMN]),
        predicted_class=str(row[CLASS_NAME_COLUMN]),
        confidence=float(row[CONFIDENCE_COLUMN]),
        reason="drifted day, low confidence" if day in drifted else "low confidence",
    )


def _without(candidates: pd.DataFrame, keys: set[Key]) -> tuple[pd.DataFrame, int]:
    if not keys or candidates.empty:
        return candidates, 0
    pairs = zip(candidates[REQUEST_ID_COLUMN].astype(str), candidates[IMAGE_INDEX_COLUMN].astype("int64"), strict=True)
    excluded = np.fromiter(((str(request_id), int(index)) in keys for request_id, index in pairs), dtype=bool)
    return candidates.loc[~excluded], int(excluded.sum())


def _labelled_keys(settings: LabellingQueueSettings, model: str, first: date, now: datetime) -> set[Key]:
    from workloads.labels.store import LabelStore

    labels = LabelStore(settings.labels_store).load(model, first, now.date())
    pairs = zip(labels["request_id"], labels["image_index"], strict=True)
    return {(str(request_id), int(index)) for request_id, index in pairs}


def build_queue(request: QueueRequest, settings: LabellingQueueSettings, now: datetime) -> QueueResult:
    """Choose the images and write the queue and its record. Raises LabellingQueueError on a store error."""
    days = prediction_days(request.day, settings.queue_lookback_days)
    predictions, reports = Store(settings.predictions_store), Store(settings.reports_store)
    try:
        candidates, without_image = read_candidates(predictions, request.model, days)
        drift = [day_drift(reports, request.model, day) for day in days]
        remaining, labelled = _without(candidates, _labelled_keys(settings, request.model, days[0], now))
        remaining, queued_before = _without(remaining, queued_keys(reports, request.model, days))
    except (OSError, ValueError) as error:
        raise LabellingQueueError(f"cannot read the stores of {request.model}: {error}") from None
    chosen = prioritise(remaining, drift).head(request.budget)
    drifted = {item.day for item in drift if item.drifted}
    images = read_images(predictions, chosen) if len(chosen) else []
    queued = [_image(row, drifted) for (_, row), png in zip(chosen.iterrows(), images, strict=True) if png]
    pngs = [png for png in images if png]
    try:
        _write_queue(request, queued, pngs)
        for day in sorted({image.day for image in queued}):
            keys = [(image.request_id, image.image_index) for image in queued if image.day == day]
            record(reports, request.model, day, keys, Store(request.out).uri, now)
    except OSError as error:
        raise LabellingQueueError(f"cannot write the queue to {request.out}: {error}") from None
    return QueueResult(
        model=request.model,
        first_day=days[0].isoformat(),
        day=request.day.isoformat(),
        budget=request.budget,
        out=Store(request.out).uri,
        queued=queued,
        candidates=len(candidates),
        without_image=without_image,
        already_labelled=labelled,
        already_queued=queued_before,
        drifted_days=sorted(drifted),
    )


def _image_url(out: Store, request: QueueRequest, key: str) -> str:
    if out.root is None:
        return out.uri_of(key)  # s3://bucket/key: shown through the project's S3 source storage
    below_root = request.local_files_path if request.local_files_path is not None else out.root.resolve().name
    return local_file_url(f"{below_root.strip('/')}/{key}" if below_root.strip("/") else key)


def _write_queue(request: QueueRequest, queued: Sequence[QueuedImage], pngs: Sequence[bytes]) -> None:
    out = Store(request.out)
    tasks = []
    for image, png in zip(queued, pngs, strict=True):
        key = f"{IMAGES_FOLDER}/{image.image_id}.png"
        out.write(key, png, "image/png")
        tasks.append(task(request.model, image, _image_url(out, request, key)))
    out.write(CONFIG_FILE, label_config(request.class_names).encode(), "application/xml")
    out.write(TASKS_FILE, (json.dumps(tasks, indent=2) + "\n").encode(), "application/json")


def default_out(settings: LabellingQueueSettings, model: str, day: date) -> str:
    return f"{settings.queue_store.rstrip('/')}/{window_prefix(model, day.isoformat())}"


def describe(result: QueueResult) -> str:
    per_day = pd.Series([image.day for image in result.queued], dtype="object").value_counts().sort_index()
    lines = [
        f"queued {len(result.queued)} of {result.model}'s images (budget {result.budget}) from "
        f"{result.first_day}..{result.day} into {result.out}",
        f"  candidates {result.candidates} (images kept by the log), skipped: {result.already_labelled} already "
        f"labelled, {result.already_queued} already queued; {result.without_image} predictions without an image",
        f"  drifted days first: {', '.join(result.drifted_days) or 'none in the window'}",
        *(f"  {day}: {count}" for day, count in per_day.items()),
    ]
    return "\n".join(lines)


def parse_day(text: str | None, now: datetime) -> date:
    try:
        return date.fromisoformat(text) if text else date.fromisoformat(default_day(now))
    except ValueError:
        raise LabellingQueueError(f"--day {text!r}: expected YYYY-MM-DD") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(
        "python -m monitoring.labelling_queue",
        "Labelling queue of one model: up to --budget production images (drifted days first, low confidence "
        "first, none labelled or queued before) as PNG files and a Label Studio import file with the model's "
        "predictions as pre-annotations.",
        LabellingQueueSettings,
    )
    parser.add_argument("model", help="catalogue model name")
    parser.add_argument("--day", default=None, help="last prediction day, YYYY-MM-DD (default: yesterday, UTC)")
    parser.add_argument("--budget", type=int, default=None, help="images at most (default: the entry's budget)")
    parser.add_argument("--out", default=None, help="folder or s3://… (default: <queue store>/<model>/date=<day>)")
    parser.add_argument("--local-files-path", default=None, help="--out's path below Label Studio's document root")
    arguments = parser.parse_args(argv)
    now = alerts.now_utc()

    def prepare() -> QueueRequest:
        from workloads.catalogue_entry import CatalogueError, UnknownModelError, entry_for

        settings = LabellingQueueSettings.from_environment()
        day = parse_day(arguments.day, now)
        try:
            entry = entry_for(arguments.model)
        except (UnknownModelError, CatalogueError) as error:
            raise LabellingQueueError(str(error)) from None
        budget = next(
            value for value in (arguments.budget, settings.budget, entry.labelling_budget) if value is not None
        )
        if budget < 0:
            raise LabellingQueueError(f"--budget {budget}: expected an integer >= 0")
        out = arguments.out or default_out(settings, entry.name, day)
        return QueueRequest(entry.name, day, budget, out, entry.class_names, arguments.local_files_path)

    return run_job_command(
        prepare,
        lambda request: build_queue(request, LabellingQueueSettings.from_environment(), now),
        describe,
        LabellingQueueError,
    )


if __name__ == "__main__":
    sys.exit(main())
