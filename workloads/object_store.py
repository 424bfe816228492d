"""A folder or an S3 prefix, seen the same way: list, read and write objects by '/'-separated keys.

`s3://bucket[/prefix]` goes through boto3 (credentials from the usual chain: IRSA in the cluster;
AWS_ENDPOINT_URL_S3 points it at another S3 API); anything else is a local folder (`file://` allowed).
Local writes go through a hidden temporary file and a rename, so a reader never sees half a file,
and listings skip hidden names for the same reason.

One implementation for every workload: the labels store and the prediction log's readers here, and
the monitoring jobs (`monitoring/store.py` names it `Store` for them).
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

    def read_if_present(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (state files that may not be written yet)."""
        if self.root is not None:
            path = self.root / key
            return path.read_bytes() if path.is_file() else None
        from botocore.exceptions import ClientError

        try:
            return self.read(key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                return None
            # S3 answers a missing key with 403, not 404, when the caller lacks s3:ListBucket on the bucket
            # (GetObject API reference, "Permissions"); the workloads' roles may list their own prefix only,
            # under an s3:prefix condition. Listing that prefix (which they may) tells the two apart.
            if code in ("AccessDenied", "403") and not self._listed(key):
                return None
            raise

    def _listed(self, key: str) -> bool:
        """Whether the bucket lists `key` itself (a listing under its own prefix, which the roles allow)."""
        full = self._key(key)
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=full, MaxKeys=1)
        return any(item["Key"] == full for item in listing.get("Contents", []))

    def open_for_arrow(self, key: str) -> Any:
        """Something `pyarrow.parquet` can read: a path locally, a buffer from S3."""
        if self.root is not None:
            return str(self.root / key)
        import pyarrow as pa

        return pa.BufferReader(self.read(key))

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Write the whole object at once; returns its URI."""
        if self.root is not None:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            partial.write_bytes(data)
            os.replace(partial, path)
            return str(path.resolve())
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        return self.uri_of(key)
