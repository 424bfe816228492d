"""`GET /readyz`: whether this worker can open a new connection to its database right now.

MLflow's `/health` answers without touching the database, so neither an outage nor a password
the database no longer accepts made a pod unready. This route opens a fresh connection each time
(not one from the pool, whose old sessions outlive a password change) through the same credentials
hook as MLflow's engines, so a probe also re-reads a rotated secret when no request has yet.
`/health` stays the liveness probe: a database outage must make pods unready, not restart them in
a loop.

Answers 200 `{"status": "ready"}` or 503 `{"status": "not ready", "reason": ...}` with one of the
REASON_* sentences; the underlying error (never a password: libpq and Secrets Manager errors carry
none) goes to the log once per change of state, not once per probe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from starlette.types import ASGIApp, Receive, Scope, Send

from workloads.tracking.database_credentials import is_password_rejection
from workloads.tracking.database_secret import DatabaseSecretError

READINESS_PATH = "/readyz"
# Within the readiness probe's 5 s timeout (infra/tracking_server.py): libpq's minimum connect
# timeout is 2 s, and SELECT 1 on a healthy server takes milliseconds.
CONNECT_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT_MILLISECONDS = 1000

REASON_PASSWORD_REJECTED = (
    "the database rejected the password from its secret (rotated in the database but not yet in the secret?)"
)
REASON_SECRET_UNREADABLE = "the database secret cannot be read"
REASON_UNREACHABLE = "the database cannot be reached"

logger = logging.getLogger("workloads.tracking.database")


@dataclass(frozen=True)
class Readiness:
    """The answer of one check."""

    ready: bool
    reason: str | None = None

    def body(self) -> bytes:
        document = {"status": "ready"} if self.ready else {"status": "not ready", "reason": self.reason}
        return json.dumps(document).encode()


READY = Readiness(ready=True)


def _connect_arguments(backend_store_uri: str) -> dict[str, object]:
    if not backend_store_uri.startswith("postgresql"):
        return {}
    return {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MILLISECONDS}",
    }


class DatabaseReadiness:
    """Check that a new connection of `engine` opens and answers `SELECT 1`."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._last: Readiness | None = None

    @classmethod
    def for_uri(cls, backend_store_uri: str) -> DatabaseReadiness:
        """A check of `backend_store_uri` with short timeouts and no pool (every check connects anew)."""
        engine = sqlalchemy.create_engine(
            backend_store_uri, poolclass=NullPool, connect_args=_connect_arguments(backend_store_uri)
        )
        return cls(engine)

    def _check(self) -> tuple[Readiness, str | None]:
        """The readiness and, when not ready, the underlying error for the log."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
        except DatabaseSecretError as error:
            return Readiness(False, REASON_SECRET_UNREADABLE), str(error)
        except DBAPIError as error:
            detail = str(error.orig).strip()
            reason = REASON_PASSWORD_REJECTED if is_password_rejection(error) else REASON_UNREACHABLE
            return Readiness(False, reason), detail
        return READY, None

    def __call__(self) -> Readiness:
        readiness, detail = self._check()
        with self._lock:
            changed, self._last = readiness != self._last, readiness
        if changed and readiness.ready:
            logger.info("readiness: the database answers")
        elif changed:
            logger.warning("readiness: not ready: %s: %s", readiness.reason, detail)
        return readiness


class ReadinessRoute:
    """ASGI wrapper answering READINESS_PATH itself and passing everything else to `app`.

    It sits outside MLflow's middleware: the kubelet sends no credentials and probes by pod IP, and
    the answer holds nothing worth protecting.
    """

    def __init__(self, app: ASGIApp, check: Callable[[], Readiness]) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != READINESS_PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b'{"error": "use GET"}', head=False)
            return
        # The check blocks on the network for up to a few seconds: keep it off the event loop.
        readiness = await asyncio.to_thread(self.check)
        await _respond(send, 200 if readiness.ready else 503, readiness.body(), head=scope["method"] == "HEAD")


async def _respond(send: Send, status: int, body: bytes, head: bool) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
