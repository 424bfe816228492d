"""One model's objectives, resolved: what its `ServiceLevel` leaves to defaults, filled in."""

from __future__ import annotations

from dataclasses import dataclass

from observability.metrics import DURATION_BUCKETS_SECONDS
from workloads.catalogue_entry import CatalogueEntry, CatalogueError
from workloads.serving.settings import latency_budget_ms

LATENCY_OBJECTIVE = 0.99
"""A p99 latency objective: 99 % of the successful requests within the threshold."""


@dataclass(frozen=True)
class Objectives:
    availability: float
    """Share of requests not answered with a 5xx."""
    latency_seconds: float
    """The p99 threshold, one of BentoML's histogram buckets."""
    traffic_expected: bool
    no_traffic_hours: int
    drift_max_age_hours: int

    @property
    def availability_budget(self) -> float:
        """The error ratio the availability objective allows."""
        return round(1 - self.availability, 10)  # 1 - 0.99 is 0.010000000000000009 in floats

    @property
    def latency_budget(self) -> float:
        return round(1 - LATENCY_OBJECTIVE, 10)

    @property
    def latency_bucket(self) -> str:
        """The `le` label of the threshold's bucket, as prometheus_client writes it (`1.0`, `0.25`)."""
        return repr(self.latency_seconds)


def objectives(entry: CatalogueEntry) -> Objectives:
    """The entry's objectives; CatalogueError when its latency threshold is not a histogram bucket."""
    level = entry.service_level
    # By default the adaptive-batching budget: past it the service sheds a request (503) rather than answer late.
    latency_ms = latency_budget_ms(entry) if level.latency_p99_ms is None else level.latency_p99_ms
    latency_seconds = latency_ms / 1000
    if latency_seconds not in DURATION_BUCKETS_SECONDS:
        allowed = ", ".join(f"{int(bucket * 1000)}" for bucket in DURATION_BUCKETS_SECONDS)
        raise CatalogueError(
            f"{entry.name}: latency_p99_ms {latency_ms} is not a bucket of BentoML's request duration "
            f"histogram, so no rule can count the requests under it; use one of {allowed}"
        )
    return Objectives(
        availability=level.availability,
        latency_seconds=latency_seconds,
        traffic_expected=level.traffic_expected,
        no_traffic_hours=level.no_traffic_hours,
        drift_max_age_hours=level.drift_max_age_hours,
    )
