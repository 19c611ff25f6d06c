"""The instance's Firestore client, created on first use, the deadlines of its calls, and the translation of Firestore
failures into our error tree: unavailable, throttled or timed-out calls become `MemoryUnavailable` (503, retryable);
anything else (a permission or index problem) is a bug or a misconfiguration and propagates as it is.

Deadlines. The client library's own defaults retry a call for 60-300 s, so a Firestore outage held each chat request
for a minute. Every call of the stores passes `connection.reads` or `connection.writes` instead: one attempt may take
FIRESTORE_TIMEOUT_SECONDS, and failed attempts are retried with backoff only while FIRESTORE_RETRY_SECONDS have not
passed, so a call gives up after about their sum. Reads are retried on the errors the library retries them on;
writes only on UNAVAILABLE and RESOURCE_EXHAUSTED (as the library does: a write that timed out may have landed, and
resending a `create` would fail, an `Increment` count twice)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from shared.errors import BadRequest, TransientError
from shared.tenants import TENANT_ID


class MemoryUnavailable(TransientError):
    """Firestore did not answer in time, throttled us, or is unavailable: a retry can help."""


class FirestoreConnection:
    """A lazily created `google.cloud.firestore.Client`, shared by the memory stores of one instance, and the
    `retry`/`timeout` keyword arguments every call passes (`reads`, `writes`).

    FIRESTORE_EMULATOR_HOST (read by the client library itself) points it at the emulator without credentials."""

    def __init__(self, project: str, database: str = "(default)", *, timeout_seconds: float = 2.0,
                 retry_seconds: float = 3.0):
        if timeout_seconds <= 0 or retry_seconds < 0:
            raise ValueError("timeout_seconds must be positive and retry_seconds at least 0")
        self._project = project
        self._database = database
        self.timeout_seconds = timeout_seconds
        self.retry_seconds = retry_seconds
        self._client = None
        self._lock = threading.Lock()

    @functools.cached_property
    def reads(self) -> dict:
        """`retry=` and `timeout=` for a read (get, query stream)."""
        from google.api_core import exceptions

        return self._options((exceptions.ServiceUnavailable, exceptions.DeadlineExceeded,
                              exceptions.InternalServerError, exceptions.TooManyRequests))

    @functools.cached_property
    def writes(self) -> dict:
        """`retry=` and `timeout=` for a write (set, create, update, batch commit)."""
        from google.api_core import exceptions

        return self._options((exceptions.ServiceUnavailable, exceptions.TooManyRequests))

    def _options(self, retryable: tuple[type[Exception], ...]) -> dict:
        from google.api_core.retry import Retry, if_exception_type

        # A float timeout is the library's TimeToDeadlineTimeout: the first attempt gets `timeout_seconds`, and a
        # retry once that much has passed gets it afresh (never less than 1 s), so each attempt is bounded by it.
        retry = Retry(predicate=if_exception_type(*retryable), initial=0.1, maximum=1.0, multiplier=2.0,
                      timeout=self.retry_seconds)
        return {"retry": retry if self.retry_seconds > 0 else None, "timeout": self.timeout_seconds}

    @property
    def client(self):
        """The `firestore.Client`, created on first use."""
        with self._lock:
            if self._client is None:
                from google.cloud import firestore

                self._client = firestore.Client(project=self._project, database=self._database)
            return self._client


@contextlib.contextmanager
def firestore_errors(action: str) -> Iterator[None]:
    """Run a block of Firestore calls; transient failures leave it as `MemoryUnavailable`."""
    from google.api_core import exceptions

    transient = (
        exceptions.ServiceUnavailable,
        exceptions.DeadlineExceeded,
        exceptions.InternalServerError,
        exceptions.TooManyRequests,  # RESOURCE_EXHAUSTED
        exceptions.Aborted,
        exceptions.RetryError,
        exceptions.GatewayTimeout,
    )
    try:
        yield
    except transient as exc:
        raise MemoryUnavailable(f"Firestore: cannot {action}: {exc}") from exc


def utc_now() -> datetime:
    """The default clock of the stores."""
    return datetime.now(UTC)


def as_datetime(value: datetime) -> datetime:
    """A plain aware `datetime` from what Firestore returns (`DatetimeWithNanoseconds`, a subclass)."""
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond,
                    tzinfo=value.tzinfo or UTC)


def check_tenant(tenant: str) -> str:
    """A tenant id is a path segment of every document: shared.tenants.TENANT_ID (lowercase, so 'Acme' can never be
    a second tenant beside 'acme')."""
    if not isinstance(tenant, str) or not TENANT_ID.fullmatch(tenant):
        raise BadRequest("tenant must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit")
    return tenant
