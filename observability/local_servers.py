"""Prometheus, Alertmanager and the Pushgateway as processes on loopback: the local loop's and the tests'.

The binaries are Debian's (`apt-get install prometheus prometheus-alertmanager prometheus-pushgateway`:
`prometheus` 2.42, `prometheus-alertmanager` 0.25, `prometheus-pushgateway` 1.5) or upstream's, which
drop the `prometheus-` prefix; `find_binary` looks for both names. Each server gets a free loopback
port and a folder of its own (configuration, data, log), answers `/-/ready` before `start_*` returns,
and is stopped with its process group (`LocalServer.stop`, from `workloads/local_process.py`).

Standard library only, like the rest of observability/: the configurations are JSON, which is YAML.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workloads.local_process import LocalProcess, free_loopback_port, spawn

PROMETHEUS = ("prometheus",)
ALERTMANAGER = ("prometheus-alertmanager", "alertmanager")
PUSHGATEWAY = ("prometheus-pushgateway", "pushgateway")
READY_TIMEOUT_SECONDS = 60.0


class LocalServerError(RuntimeError):
    """A server exited or did not become ready; the message carries the end of its log."""


def find_binary(names: Sequence[str]) -> str | None:
    """The first of `names` on PATH (Debian's name first, then upstream's)."""
    return next((found for name in names if (found := shutil.which(name))), None)


@dataclass
class LocalServer(LocalProcess):
    name: str

    STOP_TIMEOUT_SECONDS = 10.0

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, as a scrape or alerting target names it."""
        return self.url.removeprefix("http://")

    def get_json(self, path: str, **query: str) -> Any:
        """GET `path` (with `query`) and decode its JSON body."""
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        with urllib.request.urlopen(f"{self.url}{path}{suffix}", timeout=10) as response:
            return json.loads(response.read())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False


def start_prometheus(executable: str, folder: Path, config: dict[str, Any], rules: dict[str, Any]) -> LocalServer:
    """Prometheus with `config` (its `rule_files` are set to the one file `rules` is written to)."""
    folder.mkdir(parents=True, exist_ok=True)
    rules_file = _write(folder / "rules.yml", rules)
    config_file = _write(folder / "prometheus.yml", {**config, "rule_files": [str(rules_file)]})
    port = free_loopback_port()
    arguments = [
        f"--config.file={config_file}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return _start("prometheus", [executable, *arguments], folder, port)


def start_alertmanager(executable: str, folder: Path, config: dict[str, Any]) -> LocalServer:
    """Alertmanager with `config`, on its own: no cluster port (its gossip would bind 0.0.0.0:9094)."""
    folder.mkdir(parents=True, exist_ok=True)
    config_file = _write(folder / "alertmanager.yml", config)
    port = free_loopback_port()
    arguments = [
        f"--config.file={config_file}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return _start("alertmanager", [executable, *arguments], folder, port)


def start_pushgateway(executable: str, folder: Path) -> LocalServer:
    """The Pushgateway, keeping what is pushed in memory, as in the cluster.

    `--persistence.file=` explicitly: Debian's build defaults it to /var/lib/prometheus/pushgateway.data
    (`prometheus-pushgateway --help`, 1.5.1), so every instance would load and rewrite one shared file,
    and a new gateway would start with what an earlier one was sent."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    arguments = [f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    return _start("pushgateway", [executable, *arguments], folder, port)


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def _start(name: str, command: list[str], folder: Path, port: int) -> LocalServer:
    log_path = folder / f"{name}.log"
    process, log = spawn(command, log_path)
    server = LocalServer(f"http://127.0.0.1:{port}", process, log_path, name, log_handle=log)
    try:
        server.wait_until(server.ready, READY_TIMEOUT_SECONDS, label=name, goal="become ready", error=LocalServerError)
    except LocalServerError:
        server.stop()
        raise
    return server
