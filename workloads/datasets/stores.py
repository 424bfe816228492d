"""Where versions live: `<store>/<dataset>/<version>/`, a folder (local) or a prefix (S3).

Stores are named by URI: a local folder (`.mlops/datasets` by default, or `file:///abs/path`) or
`s3://bucket/prefix` (boto3; `AWS_ENDPOINT_URL_S3` points it at another S3 API, e.g. moto). Both
refuse to publish onto an existing version, a concurrent writer's included: versions are immutable.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from workloads.datasets.errors import DatasetIntegrityError, DatasetVersionExistsError, InvalidStoreError
from workloads.datasets.manifest import MANIFEST

DEFAULT_STORE = Path(".mlops") / "datasets"
STORE_ENVIRONMENT_VARIABLE = "MLOPS_DATASET_STORE"
"""Overrides the default store (the cluster sets it to the datasets bucket)."""


class DatasetStore(Protocol):
    """What publishing and fetching need of a store (`LocalStore`, `S3Store`)."""

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
