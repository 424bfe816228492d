"""`/readyz`: answered in front of MLflow, one reason per failure, the details in the log once.

test_password_rotation.py checks it on a running server against real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from workloads.local_process import free_loopback_port
from workloads.tracking.database_secret import DatabaseSecretError
from workloads.tracking.readiness import (
    READINESS_PATH,
    READY,
    REASON_SECRET_UNREADABLE,
    REASON_UNREACHABLE,
    DatabaseReadiness,
    Readiness,
    ReadinessRoute,
)

NOT_READY = Readiness(False, REASON_UNREACHABLE)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _request(readiness: Readiness, method: str, path: str) -> Answer:
    """One HTTP request through the route, in front of a stand-in for MLflow's app."""
    mlflow_stand_in = Starlette(routes=[Route("/health", lambda request: PlainTextResponse("OK"))])
    route = ReadinessRoute(mlflow_stand_in, lambda: readiness)
    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    scope |= {"http_version": "1.1", "scheme": "http", "server": ("test", 80), "root_path": ""}
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(dict(message))

    asyncio.run(route(scope, receive, send))
    start, *bodies = messages
    headers = {key.decode(): value.decode() for key, value in start["headers"]}
    return Answer(start["status"], headers, b"".join(message.get("body", b"") for message in bodies))


def test_ready_and_not_ready_answers() -> None:
    ready = _request(READY, "GET", READINESS_PATH)
    assert (ready.status, json.loads(ready.body)) == (200, {"status": "ready"})
    assert ready.headers["cache-control"] == "no-store"
    not_ready = _request(NOT_READY, "GET", READINESS_PATH)
    assert (not_ready.status, json.loads(not_ready.body)) == (
        503,
        {"status": "not ready", "reason": REASON_UNREACHABLE},
    )
    head = _request(NOT_READY, "HEAD", READINESS_PATH)
    assert (head.status, head.body) == (503, b"")


def test_other_paths_reach_mlflow_and_other_methods_are_refused() -> None:
    assert _request(NOT_READY, "GET", "/health").body == b"OK", "liveness does not depend on the database"
    assert _request(NOT_READY, "POST", READINESS_PATH).status == 405


def test_a_database_that_answers_is_ready(tmp_path: Path) -> None:
    assert DatabaseReadiness.for_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")() == READY


def test_an_unreachable_database_is_one_reason_with_the_detail_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    readiness = DatabaseReadiness.for_uri(f"postgresql://mlflow@127.0.0.1:{free_loopback_port()}/mlflow")
    with caplog.at_level(logging.INFO, logger="workloads.tracking.database"):
        assert readiness() == readiness() == NOT_READY
    (record,) = caplog.records
    assert "readiness: not ready: the database cannot be reached" in record.message
    assert "Connection refused" in record.message


def test_an_unreadable_secret_is_its_own_reason(tmp_path: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'mlflow.db'}")

    @event.listens_for(engine, "do_connect")
    def secret_unreadable(*_: object) -> None:
        raise DatabaseSecretError("cannot read the database secret arn:test: AccessDenied")

    assert DatabaseReadiness(engine)() == Readiness(False, REASON_SECRET_UNREADABLE)
