"""Business policies the assistant must always respect, editable per tenant in the document
`tenants/{tenant}/config/policies` (field `text`), cached per instance for POLICY_CACHE_SECONDS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.memory.connection import FirestoreConnection, MemoryUnavailable, check_tenant, firestore_errors


class PolicyStore:
    """Reads a tenant's policy text, at most once per `ttl_seconds` per instance.

    An edit is seen by every instance within the TTL. When Firestore is unavailable, the last text read is served
    rather than answering without the policies; with nothing cached yet, `MemoryUnavailable` propagates."""

    def __init__(self, connection: FirestoreConnection, ttl_seconds: float = 300,
                 clock: Callable[[], float] = time.monotonic):
        self._connection = connection
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}  # tenant -> (read at, text)
        self._lock = threading.Lock()

    def get(self, tenant: str) -> str:
        """The tenant's policy text ("" when none is set)."""
        check_tenant(tenant)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(tenant)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            text = self._read(tenant)
        except MemoryUnavailable:
            if cached is None:
                raise
            return cached[1]
        with self._lock:
            self._cache[tenant] = (now, text)
        return text

    def _read(self, tenant: str) -> str:
        with firestore_errors("read the policies"):
            snapshot = self._connection.client.document("tenants", tenant, "config", "policies").get(
                **self._connection.reads)
        text = (snapshot.to_dict() or {}).get("text", "")
        return text if isinstance(text, str) else ""
