"""Prometheus for `mlops local up`: the platform's rules over the local services, where it is installed.

Where a `prometheus` binary is on PATH (Debian's `prometheus` package), the loop runs it on loopback
with the same rule groups the cluster loads (observability/rules.py, rendered without a namespace),
scraping each local service under the job name the cluster gives it, and prints where to look: its
alerts page shows the rules evaluating on the demo's traffic, its graph page the SLIs. Where
`prometheus-pushgateway` is installed too, the loop runs it and the drift jobs push their results
there (monitoring/job_metrics.py), which Prometheus scrapes: the drift share per day is then a
series, as in the cluster. Without `prometheus`, one line says how to get it and the loop goes on.

No Alertmanager here: the demo's alerts are the drift job's own, printed by its webhook receiver.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cli.local_state import KeptServer
from observability.local_servers import (
    PROMETHEUS,
    PUSHGATEWAY,
    LocalServer,
    LocalServerError,
    find_binary,
    start_prometheus,
    start_pushgateway,
)
from observability.rules import catalogue_rules
from observability.scrape_config import Intervals, prometheus_config
from workloads.catalogue_entry import CatalogueEntry

DEMO_INTERVALS = Intervals(scrape="5s", evaluation="5s")
"""The demo runs minutes, not days: every 5 s, where the cluster scrapes and evaluates every 30 s."""
MISSING = (
    "Prometheus: not on PATH, skipped (`apt-get install prometheus` gives the demo a Prometheus running "
    "the platform's alerting rules)"
)


@dataclass
class LocalMonitoring:
    """What the loop started; empty when Prometheus is not installed."""

    servers: list[LocalServer] = field(default_factory=list)
    pushgateway: LocalServer | None = None

    @property
    def pushgateway_url(self) -> str | None:
        return self.pushgateway.url if self.pushgateway else None

    def kept(self) -> list[KeptServer]:
        """For `--keep`: what `mlops local down` stops (each found again by its command line)."""
        return [KeptServer(server.name, server.url, server.process.pid, server.name) for server in self.servers]

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()


def start_monitoring(
    folder: Path, entries: Sequence[CatalogueEntry], services: Mapping[str, str], echo: Callable[[str], None]
) -> LocalMonitoring:
    """Prometheus (and the Pushgateway, if installed) over `services` (model -> URL); says what it did."""
    monitoring = LocalMonitoring()
    for server in ("prometheus", "pushgateway"):  # each run starts afresh, like its replayed days
        shutil.rmtree(folder / server, ignore_errors=True)
    prometheus = find_binary(PROMETHEUS)
    if prometheus is None:
        echo(MISSING)
        return monitoring
    pushgateway = find_binary(PUSHGATEWAY)
    try:
        if pushgateway is not None:
            monitoring.pushgateway = start_pushgateway(pushgateway, folder / "pushgateway")
            monitoring.servers.append(monitoring.pushgateway)
        targets = {model: url.removeprefix("http://") for model, url in services.items()}
        gateway = monitoring.pushgateway.address if monitoring.pushgateway else None
        config = prometheus_config(targets, DEMO_INTERVALS, pushgateway=gateway)
        server = start_prometheus(prometheus, folder / "prometheus", config, catalogue_rules(entries))
        monitoring.servers.append(server)
    except LocalServerError as error:  # the demo's own work does not need it
        monitoring.stop()
        echo(f"Prometheus: did not start, skipped ({error})")
        return LocalMonitoring()
    echo(f"Prometheus at {server.url}: the platform's rules over {', '.join(services)} ({server.url}/alerts)")
    if monitoring.pushgateway:
        echo(f"Pushgateway at {monitoring.pushgateway.url}: the drift jobs push their results there")
    else:
        echo("Pushgateway: not on PATH (`apt-get install prometheus-pushgateway` graphs the drift jobs' results)")
    return monitoring
