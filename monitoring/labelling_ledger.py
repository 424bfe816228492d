"""What the labelling queue has already queued, so no image is queued twice.

Kept in the reports store beside the day's drift and quality reports, per prediction day:
`<reports>/<model>/date=<day>/labelling-queue/<time>-<pid>-<id>.json`, one file per queue run that
queued images of that day, `{"queued_at", "out", "images": [[request_id, index], ...]}`. Append-only
like the labels store (`workloads.labels.resolve` says why): two runs never rewrite one file, and
a re-run of a day reads what the earlier one queued and queues other images.

Written after the queue's images and tasks.json: a run that fails before leaves no record, so its
images can be queued again; one that fails between the two leaves a queue whose images a later run
may queue a second time (the import takes the last label per image, so a twice-labelled image is
harmless, only a reviewer's minute spent twice).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from monitoring.store import Store, window_prefix

LEDGER_FOLDER = "labelling-queue"
Key = tuple[str, int]


def ledger_prefix(model: str, day: str) -> str:
    return f"{window_prefix(model, day)}/{LEDGER_FOLDER}"


def queued_keys(reports: Store, model: str, days: Sequence[date]) -> set[Key]:
    """Every (request_id, image_index) a queue run recorded for the prediction `days`."""
    keys: set[Key] = set()
    for day in days:
        for key in reports.list(ledger_prefix(model, day.isoformat()), ".json"):
            for request_id, index in json.loads(reports.read(key))["images"]:
                keys.add((str(request_id), int(index)))
    return keys


def record(reports: Store, model: str, day: str, images: Iterable[Key], out: str, now: datetime) -> str:
    """Record one run's queued images of prediction `day`; returns the record's URI."""
    body = {"queued_at": now.isoformat(), "out": out, "images": [[request_id, index] for request_id, index in images]}
    stamp = datetime.now(tz=UTC).strftime("%H%M%S%f")
    name = f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:12]}.json"
    return reports.write(f"{ledger_prefix(model, day)}/{name}", json.dumps(body).encode(), "application/json")
