"""`mlops local up`'s Prometheus: started with the platform's rule groups and the cluster's job names
where the binaries are installed, one line and nothing started where they are not, and stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli.local_prometheus import MISSING, start_monitoring
from observability.local_servers import LocalServer
from observability.rules import model_rule_group
from observability.scrape_config import PUSHGATEWAY_JOB
from tests.observability.promtool import prometheus_binary, pushgateway_binary
from workloads import catalogue
from workloads.local_process import free_loopback_port

pytestmark = pytest.mark.slow


def _jobs(prometheus: LocalServer) -> set[str]:
    return {target["labels"]["job"] for target in prometheus.get_json("/api/v1/targets")["data"]["activeTargets"]}


def test_it_runs_the_platform_rules_over_the_local_services_and_stops(tmp_path: Path) -> None:
    prometheus_binary(), pushgateway_binary()  # skip (or fail under make unit) without them
    entry = catalogue.get("digits")
    service = f"http://127.0.0.1:{free_loopback_port()}"  # nothing answers: the target is down, the rules load
    lines: list[str] = []

    monitoring = start_monitoring(tmp_path, [entry], {entry.name: service}, lines.append)
    try:
        prometheus = monitoring.servers[-1]
        groups = prometheus.get_json("/api/v1/rules")["data"]["groups"]
        deadline = time.monotonic() + 30  # the static targets appear once discovery has run
        while not (jobs := _jobs(prometheus)) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        monitoring.stop()

    assert [group["name"] for group in groups] == [model_rule_group(entry)["name"]]
    assert len(groups[0]["rules"]) == len(model_rule_group(entry)["rules"])
    assert jobs == {"serve-digits", PUSHGATEWAY_JOB}
    assert monitoring.pushgateway_url and lines[0].startswith(f"Prometheus at {prometheus.url}")
    assert all(server.process.poll() is not None for server in [prometheus, *monitoring.servers])
    assert monitoring.servers == []


def test_without_prometheus_it_says_how_to_get_it_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    lines: list[str] = []

    monitoring = start_monitoring(tmp_path, [catalogue.get("digits")], {"digits": "http://127.0.0.1:1"}, lines.append)

    assert lines == [MISSING] and "apt-get install prometheus" in MISSING
    assert monitoring.servers == [] and monitoring.pushgateway_url is None
    monitoring.stop()
