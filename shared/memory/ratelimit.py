"""Fixed-window rate limits in Firestore, without transactions.

One document per key and window, `ratelimits/{sha256(key)[:32]}_{window_start}`, bumped with a single
`set({"count": Increment(1)}, merge=True)`: the write creates the document when needed, is atomic under contention,
and its result carries the incremented value, so a hit costs one round trip. Hits past the limit still count (they
are refused anyway). `expires_at` (the window's end) is the field of the collection's TTL policy in production.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime

from shared.memory.connection import FirestoreConnection, firestore_errors, utc_now
from shared.memory.models import RateDecision

COLLECTION = "ratelimits"


class RateLimiter:
    """Counts hits per key in fixed windows and says whether one more is allowed."""

    def __init__(self, connection: FirestoreConnection, *, session_per_minute: int = 20, client_per_minute: int = 60,
                 now: Callable[[], datetime] = utc_now):
        self._connection = connection
        self._now = now
        self.session_per_minute = session_per_minute
        self.client_per_minute = client_per_minute

    def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Count one hit on `key`; allowed while the window's count stays within `limit`."""
        from google.cloud.firestore_v1 import Increment

        if window_seconds <= 0 or limit < 0:
            raise ValueError("window_seconds must be positive and limit at least 0")
        now = self._now().timestamp()
        window_start = int(now // window_seconds) * window_seconds
        window_end = window_start + window_seconds
        doc_id = f"{hashlib.sha256(key.encode()).hexdigest()[:32]}_{window_start}"
        expires_at = datetime.fromtimestamp(window_end, UTC)
        with firestore_errors("count a rate-limit hit"):
            result = self._connection.client.collection(COLLECTION).document(doc_id).set(
                {"count": Increment(1), "window_seconds": window_seconds, "expires_at": expires_at}, merge=True
            )
        count = result.transform_results[0].integer_value
        if count <= limit:
            return RateDecision(allowed=True, remaining=limit - count, retry_after=0)
        return RateDecision(allowed=False, remaining=0, retry_after=max(1, math.ceil(window_end - now)))

    def hit_session(self, tenant: str, session_id: str, limit: int | None = None) -> RateDecision:
        """One chat message in a session, limited by `limit` (the tenant's) or RATE_LIMIT_SESSION_PER_MINUTE."""
        return self.hit(f"session:{tenant}:{session_id}", limit or self.session_per_minute, 60)

    def hit_client(self, tenant: str, client_id: str, limit: int | None = None) -> RateDecision:
        """One chat message from a client (e.g. its IP address), limited by `limit` (the tenant's) or
        RATE_LIMIT_CLIENT_PER_MINUTE."""
        return self.hit(f"client:{tenant}:{client_id}", limit or self.client_per_minute, 60)

