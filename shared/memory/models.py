"""Domain types of the conversation memory. The stores return these, never Firestore snapshots or timestamps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("user", "assistant")
ACTIONS = ("answer", "clarify", "handoff")
RATINGS = ("up", "down")


@dataclass
class Session:
    """One conversation of one tenant. Mutable on purpose: `MemoryStore.append_turn` and `maybe_summarize` update the
    object they were given to mirror what they wrote, so a caller can keep using it for the next turn."""

    id: str
    tenant: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    summary: str = ""
    summarized_through: int = 0  # the summary covers turns 1..summarized_through
    turn_count: int = 0

    def is_expired(self, now: datetime) -> bool:
        """True once `now` reaches `expires_at` (the emulator never deletes; production TTL deletes late)."""
        return now >= self.expires_at


@dataclass(frozen=True)
class Message:
    """One message of a session, as shown to the customer (with the citations that were shown)."""

    id: str
    role: str  # user | assistant
    text: str
    turn_id: str
    seq: int  # orders a session's messages: 2 * (turn number - 1), +1 for the assistant's reply
    created_at: datetime
    citations: list[dict] = field(default_factory=list)
    action: str | None = None  # answer | clarify | handoff (assistant messages)
    confidence: float | None = None


@dataclass(frozen=True)
class Turn:
    """A question and its reply, written together."""

    id: str
    session_id: str
    number: int  # 1-based, as seen by the writer
    user: Message
    assistant: Message


@dataclass(frozen=True)
class HistoryItem:
    """One question/answer pair of a signed user's long-term memory."""

    question: str
    answer: str  # a snippet of the answer
    at: datetime


@dataclass(frozen=True)
class Ticket:
    """A hand-off to a human, with the conversation so far."""

    id: str
    tenant: str
    session_id: str
    user_id: str | None
    reason: str
    contact: str | None
    status: str
    created_at: datetime
    transcript: list[Message]
    transcript_truncated: bool = False


@dataclass(frozen=True)
class Gap:
    """A question the knowledge base could not answer, counted over every time it was asked."""

    normalized: str
    question: str  # the latest wording seen
    count: int
    last_seen: datetime
    top_score: float | None
    last_session_id: str | None


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one rate-limit hit. `retry_after` is whole seconds until the window ends (0 when allowed)."""

    allowed: bool
    remaining: int
    retry_after: int
