"""The chat function's conversation memory, in Firestore.

    store.MemoryStore       sessions, messages (buffer window, transcript), rolling summary, a signed user's
                            long-term history, feedback, hand-off tickets, coverage gaps
    ratelimit.RateLimiter   sliding-window counters (Increment, no transactions), the limit passed per call
    policies.PolicyStore    the tenant's editable business policies, cached per instance
    summary.Summarizer      port that folds messages into a summary; ExtractiveSummarizer is the offline default
    signing                 signed user ids from host sites (verify_user_token, sign_user_id)
    connection              the lazily created client; MemoryUnavailable (503, retryable) for transient failures

Nothing here connects at import time; `shared.services.memory_store()` builds the instance's store from settings.
"""

from shared.memory.connection import FirestoreConnection, MemoryUnavailable
from shared.memory.models import Gap, HistoryItem, Message, RateDecision, Session, Ticket, Turn
from shared.memory.policies import PolicyStore
from shared.memory.ratelimit import RateLimiter
from shared.memory.signing import (
    InvalidUserToken,
    UserTokenExpired,
    UserTokenRequired,
    UserTokensDisabled,
    sign_user_id,
    verify_user_token,
)
from shared.memory.store import MemoryStore, normalize_question
from shared.memory.summary import ExtractiveSummarizer, Summarizer

__all__ = [
    "ExtractiveSummarizer", "FirestoreConnection", "Gap", "HistoryItem", "InvalidUserToken", "MemoryStore",
    "MemoryUnavailable", "Message", "PolicyStore", "RateDecision", "RateLimiter", "Session", "Summarizer", "Ticket",
    "Turn", "UserTokenExpired", "UserTokenRequired", "UserTokensDisabled", "normalize_question", "sign_user_id",
    "verify_user_token",
]
