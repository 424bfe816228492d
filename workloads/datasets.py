"""Datasets: how each one is built, and immutable, verifiable snapshots of them in a store.

A snapshot version is a folder (local) or a prefix (S3) `<store>/<dataset>/<version>/` holding

    images.npy      uint8, (N, H, W)         the raw images (preprocessing happens in the pipeline)
    labels.npy      int64, (N,)
    dataset.json    name, class names, shape, how it was built
    manifest.json   sha256 and size of each file above, and `sha256` of the whole (over the file list)

`manifest.json` is written last: a version whose manifest exists is complete. A version is never
overwritten — publishing onto an existing one raises `DatasetVersionExistsError` — so a
(dataset, version) pair in a model's lineage always names the same bytes. `fetch` re-hashes every
file and raises `DatasetIntegrityError` naming the file on any mismatch.

Stores are named by URI: a local folder (`.mlops/datasets` by default, or `file:///abs/path`) or
`s3://bucket/prefix` (boto3; `AWS_ENDPOINT_URL_S3` points it at another S3 API, e.g. moto).

numpy (and boto3) are imported by the functions that use them: the pipeline's fetch step only
copies and hashes files, and its process starts faster without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

DEFAULT_STORE = Path(".mlops") / "datasets"
STORE_ENVIRONMENT_VARIABLE = "MLOPS_DATASET_STORE"
"""Overrides the default store (the cluster sets it to the datasets bucket)."""
MANIFEST = "manifest.json"
DATA_FILES = ("images.npy", "labels.npy", "dataset.json")
LATEST = "latest"
_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CHUNK = 1 << 20


class DatasetError(Exception):
    """A dataset operation failed for a reason the user can act on; the message says which."""


class UnknownDatasetError(DatasetError, LookupError):
    """No dataset builder has this name."""


class UnknownDatasetVersionError(DatasetError, LookupError):
    """The store holds no such version of the dataset."""


class DatasetVersionExistsError(DatasetError):
    """Versions are immutable: this one exists already."""


class DatasetIntegrityError(DatasetError):
    """A fetched file does not match the sha256 its manifest records."""


class InvalidStoreError(DatasetError):
    """The store URI cannot be used."""


@dataclass(frozen=True)
class Dataset:
    """Images and labels of one dataset, in memory."""

    name: str
    images: np.ndarray
    """uint8, (N, H, W)."""
    labels: np.ndarray
    """int64, (N,), indices into class_names."""
    class_names: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    """How it was built (source, generator, seed, ...)."""

    def __post_init__(self) -> None:
        import numpy as np

        if self.images.dtype != np.uint8 or self.images.ndim != 3:
            raise DatasetError(
                f"{self.name}: images must be uint8 (N, H, W), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(f"{self.name}: {self.labels.shape[0]} labels for {self.images.shape[0]} images")


@dataclass(frozen=True)
class DatasetVersion:
    """A published snapshot: what `snapshot` returns and what lineage records."""

    dataset: str
    version: str
    digest: str
    """sha256 of the whole version (the manifest's `sha256`)."""
    uri: str
    """Where the version lives, e.g. `s3://datasets/digits/v3` or a local folder."""


# --------------------------------------------------------------------------------------------
# Builders


def build_digits(seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images; no download), scaled to uint8."""
    del seed  # real data: nothing to seed
    import numpy as np
    from sklearn.datasets import load_digits

    bunch: Any = load_digits()  # a Bunch (its stubs also allow the return_X_y tuple)
    # The scans count ink in 0..16; scale to the 0..255 every other image source uses.
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return Dataset(
        name="digits",
        images=images,
        labels=bunch.target.astype(np.int64),
        class_names=tuple(str(digit) for digit in range(10)),
        metadata={"source": "sklearn.datasets.load_digits", "scale": "0..16 -> 0..255"},
    )


SURFACE_DEFECT_CLASSES = ("clean", "scratch", "stain")


def generate_surface_patches(labels: np.ndarray, size: int, generator: np.random.Generator) -> np.ndarray:
    """Textured patches (uint8, (N, size, size)) with a scratch (label 1), a stain (2) or neither (0).

    Texture: a random base level, three low-frequency waves at random angles and fine grain — so
    the classifier has to find a thin line or a blob in a surface that is never flat.
    """
    import numpy as np

    count = labels.shape[0]
    ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    base = generator.uniform(0.35, 0.65, size=(count, 1, 1))
    texture = np.zeros((count, size, size))
    for _ in range(3):
        angle = generator.uniform(0, np.pi, size=(count, 1, 1))
        frequency = generator.uniform(0.5, 3.0, size=(count, 1, 1)) * 2 * np.pi / size
        phase = generator.uniform(0, 2 * np.pi, size=(count, 1, 1))
        amplitude = generator.uniform(0.02, 0.06, size=(count, 1, 1))
        texture += amplitude * np.sin(frequency * (xs * np.cos(angle) + ys * np.sin(angle)) + phase)
    grain = generator.normal(0.0, 0.03, size=(count, size, size))
    images = base + texture + grain

    # Scratch: an anti-aliased segment, 1-2 px wide, brighter or darker than the surface.
    start = generator.uniform(4, size - 4, size=(count, 2))
    angle = generator.uniform(0, 2 * np.pi, size=count)
    length = generator.uniform(size * 0.35, size * 0.8, size=count)
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    end = np.clip(start + direction * length[:, None], 0, size - 1)
    segment = end - start
    relative_y = ys[None] - start[:, 0, None, None]
    relative_x = xs[None] - start[:, 1, None, None]
    squared = np.maximum((segment**2).sum(axis=1), 1e-9)[:, None, None]
    t = np.clip((relative_y * segment[:, 0, None, None] + relative_x * segment[:, 1, None, None]) / squared, 0, 1)
    distance = np.hypot(relative_y - t * segment[:, 0, None, None], relative_x - t * segment[:, 1, None, None])
    width = generator.uniform(0.8, 1.6, size=(count, 1, 1))
    scratch_strength = generator.uniform(0.2, 0.35, size=(count, 1, 1)) * generator.choice(
        [-1.0, 1.0], size=(count, 1, 1)
    )
    scratch = scratch_strength * np.clip(1.0 - distance / width, 0.0, 1.0)

    # Stain: a soft dark ellipse.
    center = generator.uniform(6, size - 6, size=(count, 2))
    radii = generator.uniform(2.5, 5.5, size=(count, 2))
    stain_strength = generator.uniform(0.15, 0.3, size=(count, 1, 1))
    ellipse = ((ys[None] - center[:, 0, None, None]) / radii[:, 0, None, None]) ** 2 + (
        (xs[None] - center[:, 1, None, None]) / radii[:, 1, None, None]
    ) ** 2
    stain = -stain_strength * np.exp(-ellipse)

    images = (
        images + np.where(labels[:, None, None] == 1, scratch, 0.0) + np.where(labels[:, None, None] == 2, stain, 0.0)
    )
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def build_surface_defects(seed: int = 0, per_class: int = 500, size: int = 32) -> Dataset:
    """Procedurally generated, seeded texture patches: `per_class` images of each class."""
    import numpy as np

    generator = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(SURFACE_DEFECT_CLASSES), dtype=np.int64), per_class)
    generator.shuffle(labels)
    images = generate_surface_patches(labels, size, generator)
    return Dataset(
        name="surface-defects",
        images=images,
        labels=labels,
        class_names=SURFACE_DEFECT_CLASSES,
        metadata={"generator": "workloads.datasets.generate_surface_patches", "seed": seed, "per_class": per_class},
    )


BUILDERS: dict[str, Callable[..., Dataset]] = {
    "digits": build_digits,
    "surface-defects": build_surface_defects,
}


def build(name: str, seed: int = 0) -> Dataset:
    """Build dataset `name` in memory; `UnknownDatasetError` naming the known ones otherwise."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise UnknownDatasetError(f"unknown dataset {name!r}: known datasets are {', '.join(BUILDERS)}") from None
    return builder(seed=seed)


def stratified_split(labels: np.ndarray, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): each class contributes `validation_fraction` of its rows."""
    import numpy as np

    generator = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        generator.shuffle(rows)
        held_out = max(1, round(rows.shape[0] * validation_fraction)) if rows.shape[0] > 1 else 0
        validation.append(rows[:held_out])
        train.append(rows[held_out:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


# --------------------------------------------------------------------------------------------
# Hashing and the on-disk format


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def whole_digest(files: dict[str, dict[str, Any]]) -> str:
    """sha256 over the sorted (name, sha256, size) list: changes when any file changes."""
    canonical = json.dumps(
        [[name, files[name]["sha256"], files[name]["bytes"]] for name in sorted(files)], separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_dataset_files(dataset: Dataset, folder: Path) -> dict[str, Path]:
    """Write the data files of `dataset` into `folder`; returns name → path."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", dataset.images, allow_pickle=False)
    np.save(folder / "labels.npy", dataset.labels, allow_pickle=False)
    description = {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "count": int(dataset.images.shape[0]),
        "image_shape": list(dataset.images.shape[1:]),
        "metadata": dataset.metadata,
    }
    (folder / "dataset.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return {name: folder / name for name in DATA_FILES}


def build_manifest(dataset: str, version: str, files: dict[str, Path]) -> dict[str, Any]:
    entries = {name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for name, path in files.items()}
    return {
        "dataset": dataset,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": entries,
        "sha256": whole_digest(entries),
    }


def load(folder: Path) -> Dataset:
    """Read a fetched (verified) version folder back into memory."""
    import numpy as np

    description = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    return Dataset(
        name=description["name"],
        images=np.load(folder / "images.npy", allow_pickle=False),
        labels=np.load(folder / "labels.npy", allow_pickle=False),
        class_names=tuple(description["class_names"]),
        metadata=description.get("metadata", {}),
    )


# --------------------------------------------------------------------------------------------
# Stores


class DatasetStore(Protocol):
    uri: str

    def versions(self, dataset: str) -> list[str]: ...

    def version_uri(self, dataset: str, version: str) -> str: ...

    def publish(self, dataset: str, version: str, folder: Path, names: list[str]) -> None: ...

    def download(self, dataset: str, version: str, name: str, destination: Path) -> None: ...


def _version_sort_key(version: str) -> tuple[int, int, str]:
    """`v2` < `v10`; other names after numbered ones, alphabetically."""
    match = re.fullmatch(r"v(\d+)", version)
    return (0, int(match.group(1)), "") if match else (1, 0, version)


class LocalStore:
    """Versions as folders under a root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.uri = str(self.root)

    def version_uri(self, dataset: str, version: str) -> str:
        return str(self.root / dataset / version)

    def versions(self, dataset: str) -> list[str]:
        folder = self.root / dataset
        if not folder.is_dir():
            return []
        return sorted((p.name for p in folder.iterdir() if (p / MANIFEST).is_file()), key=_version_sort_key)

    def publish(self, dataset: str, version: str, folder: Path, names: list[str]) -> None:
        target = self.root / dataset / version
        if target.exists():
            raise DatasetVersionExistsError(
                f"dataset {dataset!r} version {version!r} already exists at {target}: versions are immutable"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
        os.chmod(staging, 0o755)
        try:
            for name in names:  # manifest.json is last in `names`
                shutil.copyfile(folder / name, staging / name)
                os.chmod(staging / name, 0o444)
            # rename(2) onto an existing non-empty folder fails: a concurrent writer cannot be overwritten.
            try:
                os.rename(staging, target)
            except OSError:
                raise DatasetVersionExistsError(
                    f"dataset {dataset!r} version {version!r} was created concurrently at {target}: "
                    "versions are immutable"
                ) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def download(self, dataset: str, version: str, name: str, destination: Path) -> None:
        source = self.root / dataset / version / name
        if not source.is_file():
            raise DatasetIntegrityError(
                f"dataset {dataset!r} version {version!r}: file {name} is missing from the store"
            )
        shutil.copyfile(source, destination)


class S3Store:
    """Versions as prefixes `s3://bucket/prefix/<dataset>/<version>/`."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            # boto3 reads AWS_ENDPOINT_URL_S3 itself; passing it explicitly keeps older clients honest too.
            self._client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)
        return self._client

    def _key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def version_uri(self, dataset: str, version: str) -> str:
        return f"s3://{self.bucket}/{self._key(dataset, version)}"

    def versions(self, dataset: str) -> list[str]:
        found: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(dataset) + "/"):
            for item in page.get("Contents", []):
                relative = item["Key"][len(self._key(dataset)) + 1 :]
                version, _, name = relative.partition("/")
                if name == MANIFEST:
                    found.add(version)
        return sorted(found, key=_version_sort_key)

    def _any_object(self, prefix: str) -> bool:
        response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(response.get("KeyCount", 0))

    def publish(self, dataset: str, version: str, folder: Path, names: list[str]) -> None:
        from botocore.exceptions import ClientError

        prefix = self._key(dataset, version) + "/"
        if self._any_object(prefix):
            raise DatasetVersionExistsError(
                f"dataset {dataset!r} version {version!r} already exists at s3://{self.bucket}/{prefix}: "
                "versions are immutable"
            )
        for name in names:
            body = (folder / name).read_bytes()
            try:
                # Conditional write: S3 refuses it if another writer created the key meanwhile.
                self.client.put_object(Bucket=self.bucket, Key=prefix + name, Body=body, IfNoneMatch="*")
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise DatasetVersionExistsError(
                        f"dataset {dataset!r} version {version!r} was created concurrently at "
                        f"s3://{self.bucket}/{prefix}: versions are immutable"
                    ) from None
                raise

    def download(self, dataset: str, version: str, name: str, destination: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(dataset, version, name), str(destination))
        except ClientError as error:
            raise DatasetIntegrityError(
                f"dataset {dataset!r} version {version!r}: cannot read {name} from {self.uri} ({error})"
            ) from None


def default_store_uri() -> str:
    return os.environ.get(STORE_ENVIRONMENT_VARIABLE) or str(DEFAULT_STORE)


def open_store(uri: str | Path | None = None) -> DatasetStore:
    """The store named by `uri`: a folder, `file://PATH` or `s3://BUCKET/PREFIX` (default: env, .mlops/datasets)."""
    text = str(uri) if uri not in (None, "") else default_store_uri()
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidStoreError(f"store {text!r} names no bucket: use s3://BUCKET[/PREFIX]")
        return S3Store(bucket, prefix)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        raise InvalidStoreError(f"unsupported store {text!r}: use a local folder, file://PATH or s3://BUCKET/PREFIX")
    return LocalStore(Path(text))


# --------------------------------------------------------------------------------------------
# Snapshot and fetch


def _as_store(store: str | Path | DatasetStore | None) -> DatasetStore:
    if store is None or isinstance(store, (str, Path)):
        return open_store(store)
    return store


def _next_version(existing: list[str]) -> str:
    numbers = [int(v[1:]) for v in existing if re.fullmatch(r"v\d+", v)]
    return f"v{max(numbers, default=0) + 1}"


def snapshot(
    dataset: str | Dataset,
    store: str | Path | DatasetStore | None = None,
    version: str | None = None,
    seed: int = 0,
) -> DatasetVersion:
    """Publish an immutable version of `dataset` (a name, built now, or a `Dataset`) to `store`.

    The version defaults to the next `vN`; an explicit `version` that exists raises
    `DatasetVersionExistsError` — nothing is ever overwritten.
    """
    data = dataset if isinstance(dataset, Dataset) else build(dataset, seed=seed)
    target = _as_store(store)
    existing = target.versions(data.name)
    chosen = version or _next_version(existing)
    if not _VERSION_PATTERN.match(chosen) or chosen == LATEST:
        raise DatasetError(f"invalid version name {chosen!r}: letters, digits, '.', '_', '-'; not {LATEST!r}")
    if chosen in existing:
        raise DatasetVersionExistsError(
            f"dataset {data.name!r} version {chosen!r} already exists in {target.uri}: versions are immutable"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-snapshot-") as scratch:
        folder = Path(scratch)
        files = write_dataset_files(data, folder)
        manifest = build_manifest(data.name, chosen, files)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        target.publish(data.name, chosen, folder, [*DATA_FILES, MANIFEST])
    return DatasetVersion(
        dataset=data.name, version=chosen, digest=manifest["sha256"], uri=target.version_uri(data.name, chosen)
    )


@dataclass(frozen=True)
class EnsuredVersion:
    """The version `ensure_version` settled on."""

    version: str
    published: DatasetVersion | None
    """The version this call snapshotted, when the store had none; None when one was there."""


def ensure_version(dataset: str, store: str | Path | DatasetStore | None = None, seed: int = 0) -> EnsuredVersion:
    """The newest version of `dataset` in `store`, snapshotting one first when the store has none.

    What a new store needs before anything trains from it (`latest` = the newest version). Safe
    to run twice at once: the second publisher of v1 loses the race and takes the winner's.
    """
    if dataset not in BUILDERS:
        raise UnknownDatasetError(f"unknown dataset {dataset!r}: known datasets are {', '.join(BUILDERS)}")
    target = _as_store(store)
    existing = target.versions(dataset)
    if existing:
        return EnsuredVersion(version=existing[-1], published=None)
    try:
        published = snapshot(dataset, target, seed=seed)
    except DatasetVersionExistsError:
        return EnsuredVersion(version=target.versions(dataset)[-1], published=None)
    return EnsuredVersion(version=published.version, published=published)


def list_versions(dataset: str, store: str | Path | None = None) -> list[str]:
    """Published versions of `dataset`, oldest first (`v1`, `v2`, ...)."""
    return open_store(store).versions(dataset)


def resolve_version(dataset: str, version: str, store: DatasetStore) -> str:
    """`latest` → the newest published version; any other name must exist."""
    if dataset not in BUILDERS:
        raise UnknownDatasetError(f"unknown dataset {dataset!r}: known datasets are {', '.join(BUILDERS)}")
    existing = store.versions(dataset)
    if version == LATEST:
        if not existing:
            raise UnknownDatasetVersionError(
                f"dataset {dataset!r} has no versions in {store.uri}; "
                f"create one with `mlops data snapshot {dataset} --store {store.uri}`"
            )
        return existing[-1]
    if version not in existing:
        known = ", ".join(existing) or "none"
        raise UnknownDatasetVersionError(
            f"dataset {dataset!r} has no version {version!r} in {store.uri} (versions: {known})"
        )
    return version


def fetch(
    dataset: str,
    version: str,
    store: str | Path | DatasetStore | None = None,
    destination: str | Path | None = None,
) -> Path:
    """Download `dataset` `version` (or `latest`) into `destination` and verify every sha256.

    Returns the folder (it holds the data files and `manifest.json`). A file whose bytes do not
    match its manifest entry raises `DatasetIntegrityError` naming the file; so does a manifest
    whose overall `sha256` does not match its file list.
    """
    source = _as_store(store)
    resolved = resolve_version(dataset, version, source)
    folder = Path(destination) if destination is not None else Path(tempfile.mkdtemp(prefix=f"{dataset}-{resolved}-"))
    label = f"dataset {dataset!r} version {resolved!r} ({source.version_uri(dataset, resolved)})"
    folder.mkdir(parents=True, exist_ok=True)
    source.download(dataset, resolved, MANIFEST, folder / MANIFEST)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
        recorded = manifest["sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetIntegrityError(f"{label}: manifest.json is unreadable ({error})") from None
    if (manifest.get("dataset"), manifest.get("version")) != (dataset, resolved):
        raise DatasetIntegrityError(
            f"{label}: manifest.json describes {manifest.get('dataset')!r} {manifest.get('version')!r} instead"
        )
    if whole_digest(files) != recorded:
        raise DatasetIntegrityError(f"{label}: manifest.json was altered (its file list does not hash to {recorded})")
    for name, entry in sorted(files.items()):
        if Path(name).name != name:
            raise DatasetIntegrityError(f"{label}: manifest names an unsafe path {name!r}")
        local = folder / name
        source.download(dataset, resolved, name, local)
        actual = sha256_file(local)
        if actual != entry["sha256"]:
            local.unlink(missing_ok=True)
            raise DatasetIntegrityError(
                f"{label}: file {name} is corrupt: sha256 {actual} does not match the manifest's {entry['sha256']}"
            )
    return folder
