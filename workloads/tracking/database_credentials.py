"""The credentials a process connects with: read once, re-read only when the database rejects them.

Reading Secrets Manager on every connection would add a network round trip to each one and cost
money per call; reading it once at start is what broke after a rotation. So the secret is cached
and re-read when PostgreSQL answers "password authentication failed". The first rejection re-reads
it at once; after a re-read that brought nothing new, the next waits MINIMUM_REFRESH_SECONDS: while
a rotation is half done (the database already has the new password, the secret does not yet), every
request fails its connection, and they must not all call Secrets Manager.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from workloads.tracking.database_secret import DatabaseCredentials

MINIMUM_REFRESH_SECONDS = 5.0
# psycopg 3 has no SQLSTATE for a failed connection (libpq reports it before any result exists), so
# the rejection is recognised by the server's message for 28P01 invalid_password, in English as RDS
# sends it (lc_messages defaults to en_US there).
PASSWORD_REJECTED_MESSAGE = "password authentication failed"
INVALID_PASSWORD_SQLSTATE = "28P01"


def is_password_rejection(error: BaseException) -> bool:
    """Whether `error` (a DBAPI or SQLAlchemy error) says the database refused the password."""
    original = getattr(error, "orig", None) or error
    if getattr(original, "sqlstate", None) == INVALID_PASSWORD_SQLSTATE:
        return True
    return PASSWORD_REJECTED_MESSAGE in str(original)


@dataclass(frozen=True)
class Refresh:
    """What a rejection brought."""

    credentials: DatabaseCredentials | None
    """Credentials worth one more attempt, or None."""
    secret_read: bool
    """Whether the secret was read for this answer; False when it was re-read less than the minimum
    interval ago, or when another connection had already brought newer credentials."""


class CredentialsCache:
    """Thread-safe cache of the secret's content with refresh-on-rejection."""

    def __init__(
        self,
        read: Callable[[], DatabaseCredentials],
        minimum_refresh_seconds: float = MINIMUM_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self.minimum_refresh_seconds = minimum_refresh_seconds
        self._clock = clock
        # Held during a read: a burst of rejected connections waits for one read instead of making many.
        self._lock = threading.Lock()
        self._credentials: DatabaseCredentials | None = None
        # When a re-read last brought nothing new (or failed): the next waits the minimum interval.
        self._fruitless_read_at = float("-inf")

    def current(self) -> DatabaseCredentials:
        """The cached credentials; the first call reads the secret (DatabaseSecretError if it cannot)."""
        with self._lock:
            if self._credentials is None:
                self._credentials = self._read()
            return self._credentials

    def after_rejection(self, rejected: DatabaseCredentials) -> Refresh:
        """What to try after the database rejected `rejected`; DatabaseSecretError if the secret is unreadable.

        No credentials to try when the secret still holds the rejected password (the rotation has
        not reached it yet) or was re-read less than the minimum interval ago.
        """
        with self._lock:
            if self._credentials is not None and self._credentials != rejected:
                return Refresh(self._credentials, secret_read=False)  # another connection re-read it meanwhile
            if self._clock() - self._fruitless_read_at < self.minimum_refresh_seconds:
                return Refresh(None, secret_read=False)
            self._fruitless_read_at = self._clock()  # until the read proves fruitful; also if it raises
            self._credentials = self._read()
            if self._credentials == rejected:
                return Refresh(None, secret_read=True)
            self._fruitless_read_at = float("-inf")
            return Refresh(self._credentials, secret_read=True)
