"""The catalogue entry's ServiceLevel: defaults, one clear error, resolution, and that it stays out
of MLOPS_CATALOGUE_ENTRY (no workload reads it: changing an SLO must restart no pod)."""

from __future__ import annotations

import dataclasses

import pytest

from observability.objectives import objectives
from workloads import catalogue
from workloads.catalogue_entry import CatalogueError, ServiceLevel, entry_from_json, entry_to_json
from workloads.serving.settings import default_batch_limits


def test_defaults() -> None:
    level = ServiceLevel()
    assert (level.availability, level.latency_p99_ms, level.traffic_expected) == (0.99, None, True)
    assert (level.no_traffic_hours, level.drift_max_age_hours) == (6, 26)
    assert all(entry.service_level == level for entry in catalogue.CATALOGUE.values())


def test_every_bad_setting_is_named_in_one_error() -> None:
    with pytest.raises(CatalogueError) as raised:
        ServiceLevel(availability=0.9, latency_p99_ms=0, no_traffic_hours=0, drift_max_age_hours=1000)
    message = str(raised.value)
    assert message.startswith("service level: ")
    for part in (
        "availability must be in [0.95, 0.9999], got 0.9",
        "latency_p99_ms must be in None or [1, 600000], got 0",
        "no_traffic_hours must be in [1, 168], got 0",
        "drift_max_age_hours must be in [1, 720], got 1000",
    ):
        assert part in message
    with pytest.raises(CatalogueError, match="availability"):
        ServiceLevel(availability=1.0)


def test_the_level_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ServiceLevel().availability = 0.5  # type: ignore[misc]


def test_the_entry_json_is_the_same_whatever_the_service_level() -> None:
    entry = catalogue.get("digits")
    strict = dataclasses.replace(entry, service_level=ServiceLevel(availability=0.999, latency_p99_ms=250))
    assert entry_to_json(strict) == entry_to_json(entry)
    assert "service_level" not in entry_to_json(entry)
    # Like the schedules, a decoded entry has the default: the level lives in the catalogue, read by infra.
    assert entry_from_json(entry_to_json(strict)).service_level == ServiceLevel()


def test_latency_defaults_to_the_batching_budget() -> None:
    for entry in catalogue.CATALOGUE.values():
        assert objectives(entry).latency_seconds == default_batch_limits(entry)[1] / 1000
    assert objectives(catalogue.get("digits")).latency_bucket == "1.0"


def test_a_latency_that_is_no_histogram_bucket_is_refused() -> None:
    entry = dataclasses.replace(catalogue.get("digits"), service_level=ServiceLevel(latency_p99_ms=300))
    with pytest.raises(CatalogueError, match=r"digits: latency_p99_ms 300 is not a bucket .* use one of 5, 10, 25"):
        objectives(entry)
    chosen = dataclasses.replace(entry, service_level=ServiceLevel(latency_p99_ms=250))
    assert objectives(chosen).latency_bucket == "0.25"
