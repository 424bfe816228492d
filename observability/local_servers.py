"""Prometheus, Alertmanager and the Pushgateway as processes on loopback: the local loop's and the tests'.

The binaries are Debian's (`apt-get install prometheus prometheus-alertmanager prometheus-pushgateway`:
`prometheus` 2.42, `prometheus-alertmanager` 0.25, `prometheus-pushgateway` 1.5) or upstream's, which
drop the `prometheus-` prefix; `find_binary` looks for both names. Each server gets a free loopback
port and a folder of its own (configuration, data, log), answers `/-/ready` before `start_*` returns,
and is stopped with its process group (`LocalServer.stop`).

Standard library only, like the rest of observability/: the configurations are JSON, which is YAML.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from workloads.process_group import stop_process_group
from workloads.tracking.local import free_loopback_port

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
class LocalServer:
    name: str
    url: str
    """`http://127.0.0.1:PORT`."""
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: Any = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, as a scrape or alerting target names it."""
        return self.url.removeprefix("http://")

    def get_json(self, path: str, **query: str) -> Any:
        """GET `path` (with `query`) and decode its JSON body."""
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        with urllib.request.urlopen(f"{self.url}{path}{suffix}", timeout=10) as response:
            return json.loads(response.read())

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        stop_process_group(self.process, timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


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
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LocalServer(name, f"http://127.0.0.1:{port}", process, log_path, log)
    try:
        _wait_until_ready(server)
    except LocalServerError:
        server.stop()
        raise
    return server


def _wait_until_ready(server: LocalServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LocalServerError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise LocalServerError(f"{server.name} not ready within {READY_TIMEOUT_SECONDS:.0f} s:\n{server.log_tail()}")
