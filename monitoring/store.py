"""Where the monitoring jobs read the prediction log and labels and write their reports and state:
a folder or an S3 prefix (`s3://bucket[/prefix]`; AWS_ENDPOINT_URL_S3 points boto3 at another S3
API). The one implementation is `workloads.object_store.ObjectStore`, which the labels store uses too.
"""

from __future__ import annotations

from workloads.object_store import ObjectStore as Store

__all__ = ["Store", "window_prefix"]


def window_prefix(model: str, day: str) -> str:
    """The folder of one model's day in both stores: the prediction log's and the reports'."""
    return f"{model}/date={day}"
