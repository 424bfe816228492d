"""A new dataset version = a base version + labelled production images (`mlops data snapshot MODEL --with-labels`).

Where the rows come from:

* the **base version** (default the newest), every row as it is: its original rows, and the
  production rows an earlier snapshot added (with the role they had);
* the **labelled production images** of a window of prediction days: the prediction log's rows
  (each keeps the served image, `image_png`: `workloads.serving.logged_images`) joined on (`request_id`, `image_index`)
  with the labels received from the window's first day until now — labels arrive late — resolved
  as everywhere (the last label received per image wins, `workloads.labels.resolve`). An image the
  base holds already is replaced by its newest label (a correction), never added twice.

Each production row is either trained on or kept out as the **held-out production slice**
(`workloads.datasets.roles`). The split is per image and deterministic: an image is held out when
the sha256 of `<request_id>/<image_index>` falls below `holdout_fraction` of the hash space — so an
image keeps its role in every later version, whatever else is labelled, and the rule is recorded.

What the version records, all of it covered by the manifest's sha256s: `roles.npy` (the role of
each row) and `production.json` — per production row its request id, image index, prediction day,
the version that served it, the label, where the label came from (`feedback`, `label-studio:<file>`)
and when, its role and the image's sha256; and the sources: the base version (uri, digest), every
prediction log file and labels file read (uri, sha256). The manifest's `derived_from` sums it up.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workloads.datasets.errors import DatasetError
from workloads.datasets.roles import (
    ORIGINAL,
    PRODUCTION_HOLDOUT,
    PRODUCTION_TRAIN,
    PROVENANCE_FILE,
    ROLE_NAMES,
    ROLES_FILE,
    load_roles,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from workloads.catalogue_entry import CatalogueEntry
    from workloads.datasets.stores import DatasetStore
    from workloads.datasets.versions import DatasetVersion

DEFAULT_HOLDOUT_FRACTION = 0.2
DEFAULT_LOOKBACK_DAYS = 14
KEY = ("request_id", "image_index")
_LOG_COLUMNS = ("request_id", "image_index", "model_version", "image_png")


class NoLabelledImagesError(DatasetError):
    """Nothing to add: no label joins a logged image of the window (or each one is in the base already)."""


@dataclass(frozen=True)
class LabelledWindow:
    """Where the labelled production images are read from."""

    model: str
    predictions_store: str
    labels_store: str
    first_day: date
    last_day: date
    """Prediction days `first_day`..`last_day`; labels are read from `first_day` until now."""

    @classmethod
    def ending(cls, model: str, predictions_store: str, labels_store: str, last_day: date, days: int) -> LabelledWindow:
        return cls(model, predictions_store, labels_store, last_day - timedelta(days=days - 1), last_day)


@dataclass
class LabelledImages:
    """The window's labelled, logged images, and the files they were read from."""

    rows: pd.DataFrame
    """One row per image: request_id, image_index, day, model_version, label, source, received_at, image_png."""
    labels: int
    """Resolved labels received over the window (one per image)."""
    without_image: int
    """Labelled predictions whose log row holds no image (logged before images were kept)."""
    log_files: list[dict[str, Any]]
    label_files: list[dict[str, Any]]

    @property
    def unmatched(self) -> int:
        return self.labels - len(self.rows) - self.without_image


@dataclass(frozen=True)
class ProductionSnapshot:
    """What `snapshot_with_labels` published."""

    published: DatasetVersion
    base_version: str
    base_rows: int
    added: int
    """Production images new to this version."""
    replaced: int
    """Production images of the base whose label was replaced by a newer one."""
    held_out: int
    """Production rows (all of them, the base's included) kept out of training."""
    trained: int
    """Production rows (all of them) trained on."""
    images: LabelledImages

    def describe(self) -> str:
        return (
            f"{self.published.dataset} {self.published.version} = {self.base_version} ({self.base_rows} rows) + "
            f"{self.added} labelled production images ({self.replaced} relabelled); production rows: "
            f"{self.trained} for training, {self.held_out} held out; sha256 {self.published.digest[:12]}"
        )


def holdout_role(request_id: str, image_index: int, fraction: float) -> int:
    """PRODUCTION_HOLDOUT for a `fraction` of images, chosen by a hash of the image's key alone."""
    digest = hashlib.sha256(f"{request_id}/{image_index}".encode()).digest()
    return PRODUCTION_HOLDOUT if int.from_bytes(digest[:8], "big") < fraction * 2**64 else PRODUCTION_TRAIN


def _file_record(uri: str, data: bytes) -> dict[str, Any]:
    return {"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _read_log(window: LabelledWindow, keys: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The log rows of the window that a label names (first one per image), and the files read."""
    import pandas as pd
    import pyarrow.parquet as pq

    from workloads.object_store import ObjectStore

    store = ObjectStore(window.predictions_store)
    wanted = set(keys["request_id"])
    frames: list[pd.DataFrame] = []
    files: list[dict[str, Any]] = []
    day = window.first_day
    while day <= window.last_day:
        for key in store.list(f"{window.model}/date={day.isoformat()}", ".parquet"):
            data = store.read(key)
            files.append(_file_record(store.uri_of(key), data))
            table = pq.read_table(io.BytesIO(data))
            columns = [name for name in _LOG_COLUMNS if name in table.column_names]
            frame = table.select(columns).to_pandas()
            frame = frame[frame["request_id"].isin(wanted)]
            if "image_index" not in frame or frame.empty:
                continue
            frame = frame.reindex(columns=list(_LOG_COLUMNS))
            frames.append(frame.assign(day=day.isoformat()))
        day += timedelta(days=1)
    if not frames:
        return pd.DataFrame(columns=pd.Index([*_LOG_COLUMNS, "day"])), files
    logged = pd.concat(frames, ignore_index=True)
    logged["image_index"] = logged["image_index"].astype("int64")
    # A retried flush can log an image twice: one row per image, the first.
    return logged.drop_duplicates(list(KEY), keep="first"), files


def read_labelled_images(window: LabelledWindow, now: datetime | None = None) -> LabelledImages:
    """The window's labelled images: labels (resolved) joined with the prediction log's rows."""
    import pandas as pd

    from workloads.labels.resolve import resolve_labels
    from workloads.labels.store import LabelStore, rows_of

    today = (now or datetime.now(tz=UTC)).astimezone(UTC).date()
    labels_store = LabelStore(window.labels_store)
    label_files = labels_store.files(window.model, window.first_day, max(window.last_day, today))
    labels = resolve_labels(rows_of([data for _, data in label_files]))
    logged, log_files = _read_log(window, labels)
    joined = labels.drop(columns=["model"]).merge(logged, on=list(KEY), how="inner")
    has_image = joined["image_png"].notna()
    rows = pd.DataFrame(joined[has_image]).sort_values(by=["day", *KEY], kind="stable").reset_index(drop=True)
    return LabelledImages(
        rows=rows,
        labels=len(labels),
        without_image=int((~has_image).sum()),
        log_files=log_files,
        label_files=[_file_record(labels_store.objects.uri_of(key), data) for key, data in label_files],
    )


def _production_rows(images: LabelledImages, entry: CatalogueEntry, fraction: float) -> list[dict[str, Any]]:
    import numpy as np

    from workloads.serving.logged_images import decode_png

    pixels = [decode_png(data) for data in images.rows["image_png"]]
    for position, image in enumerate(pixels):
        if image.shape != entry.image_shape:
            raise DatasetError(f"logged image {position} is {image.shape}, {entry.name} takes {entry.image_shape}")
    pixels = np.stack(pixels) if pixels else np.zeros((0, *entry.image_shape), dtype=np.uint8)
    records = []
    for position, row in enumerate(images.rows.to_dict("records")):
        request_id, image_index = str(row["request_id"]), int(row["image_index"])
        version = row["model_version"]
        records.append(
            {
                "request_id": request_id,
                "image_index": image_index,
                "prediction_day": str(row["day"]),
                "served_by_version": None if version is None else str(version),
                "label": str(row["label"]),
                "label_source": str(row["source"]),
                "label_received_at": row["received_at"].isoformat(),
                "role": ROLE_NAMES[holdout_role(request_id, image_index, fraction)],
                "image_sha256": hashlib.sha256(pixels[position].tobytes()).hexdigest(),
                "_pixels": pixels[position],
            }
        )
    return records


def _base_production(folder: Path) -> list[dict[str, Any]]:
    path = folder / PROVENANCE_FILE
    return json.loads(path.read_text(encoding="utf-8"))["rows"] if path.is_file() else []


def snapshot_with_labels(
    entry: CatalogueEntry,
    window: LabelledWindow,
    store: DatasetStore,
    base_version: str = "latest",
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    version: str | None = None,
    now: datetime | None = None,
) -> ProductionSnapshot:
    """Publish base + the window's labelled production images as a new immutable version."""
    import tempfile

    from workloads.datasets.dataset import load

    if not 0.0 <= holdout_fraction < 1.0:
        raise DatasetError(f"holdout fraction {holdout_fraction}: expected a number from 0 to below 1")
    images = read_labelled_images(window, now)
    if images.rows.empty:
        raise NoLabelledImagesError(_nothing_labelled(window, images))
    new_rows = _production_rows(images, entry, holdout_fraction)
    with tempfile.TemporaryDirectory(prefix="mlops-base-") as scratch:
        from workloads.datasets.versions import fetch

        folder = fetch(entry.dataset, base_version, store, scratch)
        base = load(folder)
        roles = load_roles(folder, base.images.shape[0])
        base_production = _base_production(folder)
        base_manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if base.class_names != entry.class_names:
        raise DatasetError(f"dataset {base.name} classes {base.class_names} differ from {entry.name}'s")
    return _publish(
        entry, window, store, base, roles, base_production, base_manifest, new_rows, images, version, holdout_fraction
    )


def _publish(
    entry: CatalogueEntry,
    window: LabelledWindow,
    store: DatasetStore,
    base: Any,
    roles: np.ndarray,
    base_production: list[dict[str, Any]],
    base_manifest: dict[str, Any],
    new_rows: list[dict[str, Any]],
    images: LabelledImages,
    version: str | None,
    fraction: float,
) -> ProductionSnapshot:
    import numpy as np

    from workloads.datasets.dataset import Dataset
    from workloads.datasets.versions import publish

    relabelled = {(row["request_id"], row["image_index"]) for row in new_rows}
    production_positions = np.flatnonzero(roles != ORIGINAL)
    if len(production_positions) != len(base_production):
        raise DatasetError(f"{entry.dataset} {base_manifest['version']}: {PROVENANCE_FILE} does not match its roles")
    dropped = {
        int(position)
        for position, row in zip(production_positions, base_production, strict=True)
        if (row["request_id"], row["image_index"]) in relabelled
    }
    unchanged = {(row["request_id"], row["image_index"], row["label"]) for row in base_production}
    added = [row for row in new_rows if (row["request_id"], row["image_index"], row["label"]) not in unchanged]
    if not added:
        raise NoLabelledImagesError(
            f"every labelled production image of {window.model} in {window.first_day}..{window.last_day} "
            f"({len(new_rows)}) is in {entry.dataset} {base_manifest['version']} already, with the same label: "
            "nothing new to train on"
        )
    kept = np.array([position for position in range(len(roles)) if position not in dropped], dtype=np.int64)
    kept_production = [
        row for position, row in zip(production_positions, base_production, strict=True) if int(position) not in dropped
    ]
    class_index = {name: position for position, name in enumerate(entry.class_names)}
    pixels = np.stack([row.pop("_pixels") for row in new_rows])
    new_roles = np.array([_role_code(row["role"]) for row in new_rows], dtype=np.int8)
    all_roles = np.concatenate([roles[kept], new_roles])
    data = Dataset(
        name=base.name,
        images=np.concatenate([base.images[kept], pixels]),
        labels=np.concatenate(
            [base.labels[kept], np.array([class_index[row["label"]] for row in new_rows], dtype=np.int64)]
        ),
        class_names=base.class_names,
        metadata={
            **base.metadata,
            "base_version": base_manifest["version"],
            "production_rows": int((all_roles != 0).sum()),
        },
    )
    provenance = _provenance(window, base_manifest, images, store, entry.dataset, fraction)
    rows = [*kept_production, *new_rows]
    published = publish(
        data,
        store,
        version,
        extra_files={ROLES_FILE: _npy(all_roles), PROVENANCE_FILE: _json({"rows": rows, "sources": provenance})},
        provenance={**provenance, "added": len(added), "production_rows": len(rows)},
    )
    return ProductionSnapshot(
        published=published,
        base_version=base_manifest["version"],
        base_rows=len(roles),
        added=len(added),
        replaced=len(dropped),
        held_out=int((all_roles == PRODUCTION_HOLDOUT).sum()),
        trained=int((all_roles == PRODUCTION_TRAIN).sum()),
        images=images,
    )


def _role_code(name: str) -> int:
    return next(code for code, known in ROLE_NAMES.items() if known == name)


def _provenance(
    window: LabelledWindow,
    base_manifest: dict[str, Any],
    images: LabelledImages,
    store: DatasetStore,
    dataset: str,
    fraction: float,
) -> dict[str, Any]:
    return {
        "base": {
            "version": base_manifest["version"],
            "sha256": base_manifest["sha256"],
            "uri": store.version_uri(dataset, base_manifest["version"]),
        },
        "model": window.model,
        "prediction_days": [window.first_day.isoformat(), window.last_day.isoformat()],
        "holdout": {
            "rule": "held out when sha256('<request_id>/<image_index>')[:8] as an integer < fraction * 2**64",
            "roles_file": ROLES_FILE,
            "fraction": fraction,
        },
        "labels": {"resolved": images.labels, "joined": len(images.rows), "without_image": images.without_image},
        "prediction_log_files": images.log_files,
        "label_files": images.label_files,
    }


def _npy(array: Any) -> bytes:
    import numpy as np

    sink = io.BytesIO()
    np.save(sink, array, allow_pickle=False)
    return sink.getvalue()


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()


def _nothing_labelled(window: LabelledWindow, images: LabelledImages) -> str:
    where = f"prediction days {window.first_day}..{window.last_day} of {window.model}"
    if images.labels == 0:
        found = f"no labels in {window.labels_store}"
    else:
        found = (
            f"{images.labels} labels, none of them naming a logged image that was kept "
            f"({images.without_image} name rows logged without their image, {images.unmatched} no logged row)"
        )
    return (
        f"no labelled production images for the {where}: {found}. Label some first: "
        f"`mlops labels queue {window.model} --day DAY --budget N --out DIR`, then `mlops labels import` "
        "of the Label Studio export (or POST /feedback)"
    )


def labels_in_version(dataset: str, store: DatasetStore, version: str = "latest") -> set[tuple[str, int, str]]:
    """(request_id, image_index, label) of every production row `version` holds (none for a first snapshot)."""
    import tempfile

    from workloads.datasets.errors import DatasetIntegrityError
    from workloads.datasets.manifest import MANIFEST, sha256_file
    from workloads.datasets.versions import resolve_version

    if not store.versions(dataset):
        return set()
    resolved = resolve_version(dataset, version, store)
    with tempfile.TemporaryDirectory(prefix="mlops-labels-in-") as scratch:
        folder = Path(scratch)
        store.download(dataset, resolved, MANIFEST, folder / MANIFEST)
        entry = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"].get(PROVENANCE_FILE)
        if entry is None:
            return set()
        store.download(dataset, resolved, PROVENANCE_FILE, folder / PROVENANCE_FILE)
        if sha256_file(folder / PROVENANCE_FILE) != entry["sha256"]:
            raise DatasetIntegrityError(f"dataset {dataset!r} {resolved}: {PROVENANCE_FILE} does not match its sha256")
        rows = _base_production(folder)
    return {(row["request_id"], int(row["image_index"]), row["label"]) for row in rows}


def new_labelled_images(images: LabelledImages, known: set[tuple[str, int, str]]) -> int:
    """Labelled images of a window that a snapshot would add to a version holding `known`."""
    rows = images.rows
    keys = zip(rows["request_id"].astype(str), rows["image_index"].astype(int), rows["label"].astype(str), strict=True)
    return sum(1 for key in keys if key not in known)
