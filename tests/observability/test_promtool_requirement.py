"""Without promtool (or a Prometheus server binary) the tests that need it skip, unless MLOPS_REQUIRE_PROMTOOL=1
(MLOPS_REQUIRE_PROMETHEUS=1 for the servers; both set by `make unit`) makes them fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.observability.promtool import (
    REQUIRE_SERVERS,
    alertmanager_binary,
    prometheus_binary,
    promtool,
    pushgateway_binary,
)


def _without_promtool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("MLOPS_PROMTOOL", str(tmp_path / "missing"))


def test_skips_without_promtool_locally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _without_promtool(monkeypatch, tmp_path)
    monkeypatch.delenv("MLOPS_REQUIRE_PROMTOOL", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"promtool not found.*make test. requires it"):
        promtool()


def test_fails_without_promtool_where_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _without_promtool(monkeypatch, tmp_path)
    monkeypatch.setenv("MLOPS_REQUIRE_PROMTOOL", "1")
    with pytest.raises(pytest.fail.Exception, match="MLOPS_REQUIRE_PROMTOOL=1"):
        promtool()


def test_the_configured_executable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configured = tmp_path / "promtool"
    configured.write_text("#!/bin/sh\n")
    monkeypatch.setenv("MLOPS_PROMTOOL", str(configured))
    assert promtool() == str(configured)


def test_the_servers_skip_locally_and_fail_where_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_SERVERS, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"prometheus-alertmanager not found.*make test. requires it"):
        alertmanager_binary()
    monkeypatch.setenv(REQUIRE_SERVERS, "1")
    for binary in (prometheus_binary, alertmanager_binary, pushgateway_binary):
        with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_SERVERS}=1"):
            binary()
