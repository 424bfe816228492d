"""Versions of a dataset in a store: publishing them (`snapshot`, `ensure_version`) and fetching them verified.

A version is never overwritten — publishing onto an existing one raises `DatasetVersionExistsError`
— so a (dataset, version) pair in a model's lineage always names the same bytes. `fetch` re-hashes
every file and raises `DatasetIntegrityError` naming the file on any mismatch. `latest` names the
newest version (`v2` < `v10`).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads.datasets.builders import build, require_known
from workloads.datasets.dataset import Dataset, write_dataset_files
from workloads.datasets.errors import (
    DatasetError,
    DatasetIntegrityError,
    DatasetVersionExistsError,
    UnknownDatasetVersionError,
)
from workloads.datasets.manifest import MANIFEST, build_manifest, sha256_file, whole_digest
from workloads.datasets.stores import DatasetStore, open_store

LATEST = "latest"
_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class DatasetVersion:
    """A published snapshot: what `snapshot` returns and what lineage records."""

    dataset: str
    version: str
    digest: str
    """sha256 of the whole version (the manifest's `sha256`)."""
    uri: str
    """Where the version lives, e.g. `s3://datasets/digits/v3` or a local folder."""


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
    return publish(data, _as_store(store), version)


def publish(
    data: Dataset,
    target: DatasetStore,
    version: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> DatasetVersion:
    """Write `data` (and `extra_files`, hashed like the data files) as a new version of `target`.

    `provenance` goes into the manifest beside the file list (what the version was derived from).
    """
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
        for name, content in (extra_files or {}).items():
            (folder / name).write_bytes(content)
            files[name] = folder / name
        manifest = build_manifest(data.name, chosen, files)
        if provenance:
            manifest["derived_from"] = dict(provenance)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        target.publish(data.name, chosen, folder, [*files, MANIFEST])
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
    require_known(dataset)
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
    require_known(dataset)
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
