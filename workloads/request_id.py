"""The id of one prediction request: returned in the response, written on each of its log rows,
and quoted back by whoever sends the ground truth for its images (`workloads.labels`).

A UUID4 as 32 lowercase hex digits: unique without coordination between replicas, and a fixed shape
that lets the feedback route refuse anything that cannot be one of ours before storing it.
"""

from __future__ import annotations

import re
import uuid

REQUEST_ID_PATTERN = re.compile(r"[0-9a-f]{32}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_request_id(value: object) -> bool:
    """Whether `value` has the shape `new_request_id` gives (it may still be unknown to the log)."""
    return isinstance(value, str) and REQUEST_ID_PATTERN.fullmatch(value) is not None
