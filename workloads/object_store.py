"""A folder or an S3 prefix, seen the same way: list, read and write objects by '/'-separated keys.

`s3://bucket[/prefix]` goes through boto3 (credentials from the usual chain: IRSA in the cluster;
AWS_ENDPOINT_URL_S3 points it at another S3 API); anything else is a local folder (`file://` allowed).
Local writes go through a hidden temporary file and a rename, so a reader never sees half a file,
and listings skip hidden names for the same reason.

The drift job's `monitoring/store.py` is the same idea on its side of the import direction
(monitoring → workloads): workloads cannot import it, and the serving image does not carry it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class ObjectStore:
    """Objects under a root, addressed by keys relative to it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self._client: Any = None
        self.bucket: str | None = None
        self.prefix = ""
        self.root: Path | None = None
        if self.uri.startswith("s3://"):
            bucket, _, prefix = self.uri[len("s3://") :].partition("/")
            if not bucket:
                raise ValueError(f"invalid store {uri!r}: expected s3://bucket[/prefix]")
            self.bucket, self.prefix = bucket, prefix.strip("/")
        else:
            self.root = Path(self.uri.removeprefix("file://"))

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_of(self, key: str) -> str:
        if self.root is not None:
            return str((self.root / key).resolve())
        return f"s3://{self.bucket}/{self._key(key)}"

    def list(self, prefix: str, suffix: str = "") -> list[str]:
        """Keys under the folder `prefix` ending with `suffix`, sorted, hidden names left out."""
        if self.root is not None:
            folder = self.root / prefix
            if not folder.is_dir():
                return []
            return sorted(
                path.relative_to(self.root).as_posix()
                for path in folder.rglob(f"*{suffix}")
                if path.is_file() and not path.name.startswith(".")
            )
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix.rstrip("/") + "/")):
            for item in page.get("Contents", []):
                relative = item["Key"][len(self.prefix) + 1 :] if self.prefix else item["Key"]
                if relative.endswith(suffix) and not relative.rsplit("/", 1)[-1].startswith("."):
                    keys.append(relative)
        return sorted(keys)

    def read(self, key: str) -> bytes:
        """The object's bytes (FileNotFoundError locally, botocore's ClientError on S3 when absent)."""
        if self.root is not None:
            return (self.root / key).read_bytes()
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def write(self, key: str, data: bytes) -> str:
        """Write the whole object at once; returns its URI."""
        if self.root is not None:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            partial.write_bytes(data)
            os.replace(partial, path)
            return str(path.resolve())
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri_of(key)
