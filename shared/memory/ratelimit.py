"""Sliding-window rate limits in Firestore, without transactions (the weighted two-window counter).

Time is cut into windows of `window_seconds`; each key has one counter document per window,
`ratelimits/{sha256(key)[:32]}_{window_start}`, bumped with a single `set({"count": Increment(1)}, merge=True)`: the
write creates the document when needed, is atomic under contention, and its result carries the incremented value.
A hit is allowed while

    previous window's count × (the share of the previous window still inside the sliding window) + this window's count

stays within the limit, so a burst at the end of one window still weighs on the start of the next (a fixed window let
twice the limit through across a boundary). A hit costs two round trips: the increment and a read of the previous
window's counter (skipped when this window alone is over the limit). Hits past the limit still count (they are
refused anyway, and a client that keeps hammering stays refused). `expires_at` (the end of the window after the
counter's own, the last moment it is read) is the field of the collection's TTL policy in production.

The limit is an argument of every call, so a caller can pass a tenant's own limits; the `hit_*` helpers default to
the RATE_LIMIT_* settings.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime

from shared.memory.connection import FirestoreConnection, firestore_errors, utc_now
from shared.memory.models import RateDecision

COLLECTION = "ratelimits"
MINUTE = 60
HOUR = 3600


class RateLimiter:
    """Counts hits per key in a sliding window and says whether one more is allowed."""

    def __init__(self, connection: FirestoreConnection, *, session_per_minute: int = 20, client_per_minute: int = 60,
                 handoff_per_hour: int = 10, feedback_per_minute: int = 30, now: Callable[[], datetime] = utc_now):
        self._connection = connection
        self._now = now
        self.session_per_minute = session_per_minute
        self.client_per_minute = client_per_minute
        self.handoff_per_hour = handoff_per_hour
        self.feedback_per_minute = feedback_per_minute

    def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Count one hit on `key`; allowed while the hits of the last `window_seconds` (weighted) stay within
        `limit`."""
        from google.cloud.firestore_v1 import Increment

        if window_seconds <= 0 or limit < 0:
            raise ValueError("window_seconds must be positive and limit at least 0")
        now = self._now().timestamp()
        window_start = int(now // window_seconds) * window_seconds
        elapsed = now - window_start
        # surrogatepass: a key is hashed, never stored, so any str (even one with a lone surrogate) has a digest.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        collection = self._connection.client.collection(COLLECTION)
        expires_at = datetime.fromtimestamp(window_start + 2 * window_seconds, UTC)
        with firestore_errors("count a rate-limit hit"):
            result = collection.document(f"{digest}_{window_start}").set(
                {"count": Increment(1), "window_seconds": window_seconds, "expires_at": expires_at}, merge=True,
                **self._connection.writes,
            )
            current = result.transform_results[0].integer_value
            previous = 0
            if current <= limit:
                snapshot = collection.document(f"{digest}_{window_start - window_seconds}").get(
                    field_paths=["count"], **self._connection.reads)
                previous = int((snapshot.to_dict() or {}).get("count", 0)) if snapshot.exists else 0
        estimate = previous * (1 - elapsed / window_seconds) + current
        if estimate <= limit:
            return RateDecision(allowed=True, remaining=max(0, math.floor(limit - estimate)), retry_after=0)
        wait = _seconds_until_allowed(previous, current, limit, elapsed, window_seconds)
        return RateDecision(allowed=False, remaining=0, retry_after=max(1, math.ceil(wait)))

    def hit_session(self, tenant: str, session_id: str, limit: int | None = None) -> RateDecision:
        """One chat message in a session; `limit` per minute, default RATE_LIMIT_SESSION_PER_MINUTE."""
        return self.hit(f"session:{tenant}:{session_id}", _or(limit, self.session_per_minute), MINUTE)

    def hit_client(self, tenant: str, client_id: str, limit: int | None = None) -> RateDecision:
        """One chat message from a client (its address); `limit` per minute, default RATE_LIMIT_CLIENT_PER_MINUTE."""
        return self.hit(f"client:{tenant}:{client_id}", _or(limit, self.client_per_minute), MINUTE)

    def hit_handoff(self, tenant: str, client_id: str, limit: int | None = None) -> RateDecision:
        """One hand-off ticket from a client; `limit` per hour, default RATE_LIMIT_HANDOFF_PER_HOUR."""
        return self.hit(f"handoff:{tenant}:{client_id}", _or(limit, self.handoff_per_hour), HOUR)

    def hit_feedback(self, tenant: str, client_id: str, limit: int | None = None) -> RateDecision:
        """One feedback vote from a client; `limit` per minute, default RATE_LIMIT_FEEDBACK_PER_MINUTE."""
        return self.hit(f"feedback:{tenant}:{client_id}", _or(limit, self.feedback_per_minute), MINUTE)


def _or(limit: int | None, default: int) -> int:
    return default if limit is None else limit


def _seconds_until_allowed(previous: int, current: int, limit: int, elapsed: float, window: int) -> float:
    """How long until one more hit would be allowed if no other came: later in this window, as the previous window's
    weight fades, or in the next one, where this window's count is the one fading."""
    if current + 1 <= limit and previous > 0:
        wait = window * (1 - (limit - current - 1) / previous) - elapsed
        if wait <= window - elapsed:
            return max(wait, 0.0)
    if current + 1 <= limit:
        return window - elapsed
    if limit < 1:
        return 2 * window - elapsed  # nothing is ever allowed; come back after the next window
    return window - elapsed + window * (1 - (limit - 1) / current)
