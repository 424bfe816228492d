"""Prometheus durations of a single unit (`5m`, `6h`, `3d`), the only form the rules write."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")


def seconds(duration: str) -> int:
    """`6h` -> 21600; ValueError for anything but a positive integer and one unit."""
    match = _DURATION.match(duration)
    if not match:
        raise ValueError(f"not a single-unit Prometheus duration: {duration!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def hours(count: int) -> str:
    """The duration of `count` hours, in days when whole (`48` -> `2d`), as Prometheus prints it."""
    return f"{count // 24}d" if count % 24 == 0 else f"{count}h"
