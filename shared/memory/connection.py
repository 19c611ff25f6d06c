"""The instance's Firestore client, created on first use, and the translation of Firestore failures into our error
tree: unavailable, throttled or timed-out calls become `MemoryUnavailable` (503, retryable); anything else (a
permission or index problem) is a bug or a misconfiguration and propagates as it is."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from shared.errors import BadRequest, TransientError
from shared.tenants import TENANT_ID



class MemoryUnavailable(TransientError):
    """Firestore did not answer in time, throttled us, or is unavailable: a retry can help."""


class FirestoreConnection:
    """A lazily created `google.cloud.firestore.Client`, shared by the memory stores of one instance.

    FIRESTORE_EMULATOR_HOST (read by the client library itself) points it at the emulator without credentials."""

    def __init__(self, project: str, database: str = "(default)"):
        self._project = project
        self._database = database
        self._client = None
        self._lock = threading.Lock()

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
