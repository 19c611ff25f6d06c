"""Conversation memory in Firestore: sessions and their messages, rolling summaries, a signed user's long-term
history, feedback, hand-off tickets and coverage gaps.

    tenants/{tenant}/sessions/{session_id}          created_at, updated_at, expires_at, user_id, summary,
                                                    summarized_through, turn_count
        messages/{turn_id}-u | {turn_id}-a          role, text, citations, action, confidence, turn_id, created_at,
                                                    seq, expires_at
    tenants/{tenant}/feedback/{turn_id}             session_id, turn_id, rating, reason, updated_at
    tenants/{tenant}/tickets/{random id}            session_id, user_id, reason, contact, status, created_at,
                                                    transcript, transcript_truncated
    tenants/{tenant}/coverage_gaps/{sha256(q)[:32]} normalized, question, count, last_seen, top_score, last_session_id
    users/{tenant}:{user_id}                        tenant, user_id, history (the last 20 question/answer pairs)

Expiry. A session expires SESSION_TTL_SECONDS after its last turn; each turn slides `expires_at` of the session and
stamps its two messages with the same value. In production, TTL policies on the `sessions` and `messages` collection
groups (field `expires_at`) delete them, up to a day late; TTL does not cascade to subcollections, hence the field on
messages too. The emulator never deletes, so every read checks `expires_at` itself: an expired session is never
resumed, and an expired message is never returned.

Concurrency, without transactions (contended ones are slow, and a chat turn must not wait on locks): a turn's two
messages and the session's `turn_count` (an `Increment`) are one atomic batch; a summary is written with an
update-time precondition, so it is dropped (and retried after the next turn) if a turn landed meanwhile; a signed
user's history is read-modify-write, where the last write wins — two turns at the very same moment from two tabs of
one user may drop one pair from a convenience memory, which is acceptable. Message order (`seq`) comes from the
writer's view of `turn_count`, so two turns submitted at once on one session may share a `seq`; their order is then
by id, and nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from shared.errors import BadRequest, NotFound
from shared.memory.connection import (
    FirestoreConnection,
    MemoryUnavailable,
    as_datetime,
    check_tenant,
    firestore_errors,
    utc_now,
)
from shared.memory.models import ACTIONS, RATINGS, Gap, HistoryItem, Message, Session, Ticket, Turn
from shared.memory.policies import PolicyStore
from shared.memory.ratelimit import RateLimiter
from shared.memory.signing import USER_ID
from shared.memory.summary import Summarizer

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
TURN_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
HISTORY_SIZE = 20
HISTORY_QUESTION_CHARS = 500
HISTORY_ANSWER_CHARS = 300
GAP_QUESTION_CHARS = 500
MAX_REASON_CHARS = 1000
MAX_CONTACT_CHARS = 320
TICKET_TRANSCRIPT_BYTES = 700_000  # a document holds at most 1 MiB


class MemoryStore:
    """Sessions, messages and the records around them, for one Firestore database.

    `now` must return an aware UTC datetime; tests inject one to move time. The rate limiter and the policy store
    share this store's (lazily created) client, so the chat function reaches all three through `services`."""

    def __init__(
        self,
        connection: FirestoreConnection,
        *,
        session_ttl_seconds: int = 24 * 3600,
        summary_every_turns: int = 6,
        now: Callable[[], datetime] = utc_now,
        rate_limiter: RateLimiter | None = None,
        policies: PolicyStore | None = None,
    ):
        self._connection = connection
        self._ttl = timedelta(seconds=session_ttl_seconds)
        self._summary_every = summary_every_turns
        self._now = now
        self.connection = connection  # shared with the tenant registry (shared.services.tenant_registry)
        self.rate_limiter = rate_limiter or RateLimiter(connection, now=now)
        self.policies = policies or PolicyStore(connection)

    @classmethod
    def from_settings(cls, settings) -> MemoryStore:
        """The store configured by FIRESTORE_*, SESSION_TTL_SECONDS, SUMMARY_EVERY_TURNS, RATE_LIMIT_* and
        POLICY_CACHE_SECONDS."""
        connection = FirestoreConnection(settings.project, settings.firestore_database,
                                         timeout_seconds=settings.firestore_timeout_seconds,
                                         retry_seconds=settings.firestore_retry_seconds)
        return cls(
            connection,
            session_ttl_seconds=settings.session_ttl_seconds,
            summary_every_turns=settings.summary_every_turns,
            rate_limiter=RateLimiter(connection, session_per_minute=settings.rate_limit_session_per_minute,
                                     client_per_minute=settings.rate_limit_client_per_minute,
                                     handoff_per_hour=settings.rate_limit_handoff_per_hour,
                                     feedback_per_minute=settings.rate_limit_feedback_per_minute),
            policies=PolicyStore(connection, ttl_seconds=settings.policy_cache_seconds),
        )

    # --- sessions ---------------------------------------------------------------------------------------------------

    def get_session(self, tenant: str, session_id: str) -> Session | None:
        """The live session, or None when it does not exist, has expired, or the id is not one we issue."""
        check_tenant(tenant)
        if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
            return None
        with firestore_errors("read a session"):
            snapshot = self._session_ref(tenant, session_id).get(**self._connection.reads)
        if not snapshot.exists:
            return None
        session = _session_from(tenant, snapshot.id, snapshot.to_dict())
        return None if session.is_expired(self._now()) else session

    def get_or_create_session(self, tenant: str, session_id: str | None = None,
                              user_id: str | None = None) -> Session:
        """Resume `session_id` if it is live and belongs to `user_id` (None: anonymous); otherwise start a new
        session with a fresh random id. A session never changes hands: an anonymous session is not resumed by a
        signed user, nor one user's session by another."""
        if session_id:
            session = self.get_session(tenant, session_id)
            if session is not None and session.user_id == user_id:
                return session
        return self._create_session(tenant, user_id)

    def _create_session(self, tenant: str, user_id: str | None) -> Session:
        check_tenant(tenant)
        if user_id is not None and not USER_ID.fullmatch(user_id):
            raise ValueError("a user id is 1-128 characters of [A-Za-z0-9_@.:-]")
        now = self._now()
        session = Session(id=secrets.token_urlsafe(16), tenant=tenant, user_id=user_id, created_at=now,
                          updated_at=now, expires_at=now + self._ttl)
        with firestore_errors("create a session"):
            self._session_ref(tenant, session.id).create({
                "created_at": now, "updated_at": now, "expires_at": session.expires_at, "user_id": user_id,
                "summary": "", "summarized_through": 0, "turn_count": 0,
            }, **self._connection.writes)
        return session

    # --- turns and messages ----------------------------------------------------------------------------------------

    def append_turn(self, session: Session, user_text: str, assistant_text: str, citations: Iterable[dict] = (),
                    action: str | None = None, confidence: float | None = None, turn_id: str | None = None) -> Turn:
        """Save a question and its reply in one batch, count the turn and slide the session's expiry.

        Updates `session` in place (turn_count, updated_at, expires_at). A signed user's long-term history is
        updated afterwards, best effort: its failure is logged, never raised, as the turn itself is saved."""
        from google.api_core import exceptions
        from google.cloud.firestore_v1 import Increment

        if action not in (*ACTIONS, None):
            raise ValueError(f"action must be one of {ACTIONS} or None")
        now = self._now()
        if session.is_expired(now):
            raise NotFound("session expired", public_message="session expired; start a new one")
        expires_at = now + self._ttl
        number = session.turn_count + 1
        turn_id = turn_id or new_turn_id()
        if not TURN_ID.fullmatch(turn_id):
            raise ValueError("a turn id comes from new_turn_id()")
        user = Message(id=f"{turn_id}-u", role="user", text=user_text, turn_id=turn_id, seq=2 * number - 2,
                       created_at=now)
        assistant = Message(id=f"{turn_id}-a", role="assistant", text=assistant_text, turn_id=turn_id,
                            seq=2 * number - 1, created_at=now, citations=[dict(c) for c in citations],
                            action=action, confidence=None if confidence is None else float(confidence))
        session_ref = self._session_ref(session.tenant, session.id)
        batch = self._connection.client.batch()
        for message in (user, assistant):
            batch.create(session_ref.collection("messages").document(message.id),
                         {**_message_data(message), "expires_at": expires_at})
        batch.update(session_ref, {"turn_count": Increment(1), "updated_at": now, "expires_at": expires_at})
        try:
            with firestore_errors("save a turn"):
                results = batch.commit(**self._connection.writes)
        except exceptions.NotFound:  # deleted by the TTL policy since it was read
            raise NotFound("session expired", public_message="session expired; start a new one") from None
        session.turn_count = results[-1].transform_results[0].integer_value
        session.updated_at, session.expires_at = now, expires_at
        if session.user_id is not None:
            try:
                self._remember(session.tenant, session.user_id, user_text, assistant_text, now)
            except MemoryUnavailable:
                log.warning("could not update a user's history", extra={"labels": {"session_id": session.id}})
        return Turn(id=turn_id, session_id=session.id, number=number, user=user, assistant=assistant)

    def recent_messages(self, session: Session, n: int) -> list[Message]:
        """The last `n` messages of the session (the buffer window), oldest first."""
        from google.cloud.firestore_v1 import Query

        if n <= 0:
            return []
        query = self._messages_ref(session).order_by("seq", direction=Query.DESCENDING).limit(n)
        return list(reversed(self._live_messages(query)))

    def transcript(self, session: Session) -> list[Message]:
        """Every live message of the session, oldest first."""
        return self._live_messages(self._messages_ref(session).order_by("seq"))

    def _live_messages(self, query) -> list[Message]:
        now = self._now()
        with firestore_errors("read messages"):
            snapshots = list(query.stream(**self._connection.reads))
        messages = []
        for snapshot in snapshots:
            data = snapshot.to_dict()
            if data["expires_at"] > now:
                messages.append(_message_from(snapshot.id, data))
        return messages

    # --- rolling summary -------------------------------------------------------------------------------------------

    def maybe_summarize(self, session: Session, summarizer: Summarizer) -> bool:
        """Fold the turns the summary does not cover yet into it once there are SUMMARY_EVERY_TURNS of them.

        Returns whether a summary was written (and `session` updated). The write is conditional on the session
        being unchanged since it was read, so a stale summary never replaces a newer one."""
        from google.api_core import exceptions
        from google.cloud.firestore_v1 import FieldFilter

        if session.turn_count - session.summarized_through < self._summary_every:
            return False  # not due by the caller's counts (append_turn sets turn_count): no read on most turns
        ref = self._session_ref(session.tenant, session.id)
        with firestore_errors("read a session"):
            snapshot = ref.get(**self._connection.reads)
        if not snapshot.exists:
            return False
        current = _session_from(session.tenant, session.id, snapshot.to_dict())
        if current.turn_count - current.summarized_through < self._summary_every or current.is_expired(self._now()):
            return False
        query = (self._messages_ref(session)
                 .where(filter=FieldFilter("seq", ">=", 2 * current.summarized_through))
                 .where(filter=FieldFilter("seq", "<", 2 * current.turn_count))
                 .order_by("seq"))
        summary = summarizer.summarize(current.summary, self._live_messages(query))
        client = self._connection.client
        try:
            with firestore_errors("save a summary"):
                ref.update({"summary": summary, "summarized_through": current.turn_count},
                           option=client.write_option(last_update_time=snapshot.update_time), **self._connection.writes)
        except exceptions.FailedPrecondition:
            return False  # a turn landed meanwhile; the next call summarizes it too
        session.summary, session.summarized_through = summary, current.turn_count
        session.turn_count = current.turn_count
        return True

    # --- long-term memory of signed users --------------------------------------------------------------------------

    def user_history(self, tenant: str, user_id: str, n: int = 5) -> list[HistoryItem]:
        """The signed user's last `n` question/answer pairs in this tenant, oldest first."""
        if n <= 0:
            return []
        with firestore_errors("read a user's history"):
            snapshot = self._user_ref(tenant, user_id).get(**self._connection.reads)
        history = (snapshot.to_dict() or {}).get("history", [])
        return [HistoryItem(question=h["question"], answer=h["answer"], at=as_datetime(h["at"]))
                for h in history[-n:]]

    def _remember(self, tenant: str, user_id: str, question: str, answer: str, at: datetime) -> None:
        ref = self._user_ref(tenant, user_id)
        with firestore_errors("update a user's history"):
            history = (ref.get(**self._connection.reads).to_dict() or {}).get("history", [])
            history.append({"question": _clip(question, HISTORY_QUESTION_CHARS),
                            "answer": _clip(answer, HISTORY_ANSWER_CHARS), "at": at})
            ref.set({"tenant": tenant, "user_id": user_id, "history": history[-HISTORY_SIZE:], "updated_at": at},
                    **self._connection.writes)

    # --- feedback, hand-off tickets, coverage gaps -----------------------------------------------------------------

    def record_feedback(self, tenant: str, session_id: str, turn_id: str, rating: str,
                        reason: str | None = None) -> None:
        """Record a thumbs up/down on a turn's answer; a second vote on the same turn replaces the first.

        NotFound when the turn is not one of the session's (live) turns."""
        check_tenant(tenant)
        if rating not in RATINGS:
            raise BadRequest("rating must be 'up' or 'down'")
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
            raise BadRequest(f"reason must be text of at most {MAX_REASON_CHARS} characters")
        not_found = NotFound("no such turn in this session")
        if not (isinstance(session_id, str) and SESSION_ID.fullmatch(session_id)
                and isinstance(turn_id, str) and TURN_ID.fullmatch(turn_id)):
            raise not_found
        client = self._connection.client
        answer_ref = self._session_ref(tenant, session_id).collection("messages").document(f"{turn_id}-a")
        with firestore_errors("record feedback"):
            answer = answer_ref.get(**self._connection.reads)
            if not answer.exists or answer.get("expires_at") <= self._now():
                raise not_found
            client.document("tenants", tenant, "feedback", turn_id).set({
                "session_id": session_id, "turn_id": turn_id, "rating": rating, "reason": reason,
                "updated_at": self._now(),
            }, **self._connection.writes)

    def create_ticket(self, tenant: str, session: Session, reason: str, contact: str | None = None) -> Ticket:
        """Open a hand-off ticket carrying the session's transcript (the newest part, if it is too large)."""
        check_tenant(tenant)
        if session.tenant != tenant:
            raise ValueError("the session belongs to another tenant")
        if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
            raise BadRequest(f"reason must be text of at most {MAX_REASON_CHARS} characters")
        if contact is not None and (not isinstance(contact, str) or len(contact) > MAX_CONTACT_CHARS):
            raise BadRequest(f"contact must be text of at most {MAX_CONTACT_CHARS} characters")
        transcript, truncated = _newest_within_bytes(self.transcript(session), TICKET_TRANSCRIPT_BYTES)
        ref = self._connection.client.collection("tenants").document(tenant).collection("tickets").document()
        ticket = Ticket(id=ref.id, tenant=tenant, session_id=session.id, user_id=session.user_id, reason=reason,
                        contact=contact, status="open", created_at=self._now(), transcript=transcript,
                        transcript_truncated=truncated)
        with firestore_errors("create a ticket"):
            ref.create({
                "session_id": ticket.session_id, "user_id": ticket.user_id, "reason": reason, "contact": contact,
                "status": ticket.status, "created_at": ticket.created_at,
                "transcript": [{"id": m.id, **_message_data(m)} for m in transcript],
                "transcript_truncated": truncated,
            }, **self._connection.writes)
        return ticket

    def record_gap(self, tenant: str, question: str, session_id: str | None = None,
                   top_score: float | None = None) -> None:
        """Count a question the knowledge base could not answer (one document per normalised question)."""
        from google.cloud.firestore_v1 import Increment

        check_tenant(tenant)
        normalized = normalize_question(question)
        if not normalized:
            return
        doc_id = hashlib.sha256(normalized.encode()).hexdigest()[:32]
        with firestore_errors("record a coverage gap"):
            self._connection.client.document("tenants", tenant, "coverage_gaps", doc_id).set({
                "normalized": normalized, "question": _clip(question.strip(), GAP_QUESTION_CHARS),
                "count": Increment(1), "last_seen": self._now(), "last_session_id": session_id,
                "top_score": None if top_score is None else float(top_score),
            }, merge=True, **self._connection.writes)

    def list_gaps(self, tenant: str, limit: int = 20) -> list[Gap]:
        """The most frequently unanswered questions of the tenant, most frequent first."""
        from google.cloud.firestore_v1 import Query

        check_tenant(tenant)
        query = (self._connection.client.collection("tenants").document(tenant).collection("coverage_gaps")
                 .order_by("count", direction=Query.DESCENDING).limit(limit))
        with firestore_errors("list coverage gaps"):
            snapshots = list(query.stream(**self._connection.reads))
        return [Gap(normalized=d["normalized"], question=d["question"], count=d["count"],
                    last_seen=as_datetime(d["last_seen"]), top_score=d.get("top_score"),
                    last_session_id=d.get("last_session_id"))
                for d in (s.to_dict() for s in snapshots)]

    # --- references ------------------------------------------------------------------------------------------------

    def _session_ref(self, tenant: str, session_id: str):
        return self._connection.client.document("tenants", tenant, "sessions", session_id)

    def _messages_ref(self, session: Session):
        return self._session_ref(session.tenant, session.id).collection("messages")

    def _user_ref(self, tenant: str, user_id: str):
        check_tenant(tenant)
        if not isinstance(user_id, str) or not USER_ID.fullmatch(user_id):
            raise ValueError("a user id is 1-128 characters of [A-Za-z0-9_@.:-]")
        return self._connection.client.collection("users").document(f"{tenant}:{user_id}")


def new_turn_id() -> str:
    """A fresh turn id (chat announces it before the turn is saved)."""
    return secrets.token_urlsafe(12)


def normalize_question(question: str) -> str:
    """The form under which repeated questions are counted together: case, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKC", question or "").casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())[:GAP_QUESTION_CHARS]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _message_data(message: Message) -> dict:
    return {"role": message.role, "text": message.text, "citations": message.citations, "action": message.action,
            "confidence": message.confidence, "turn_id": message.turn_id, "created_at": message.created_at,
            "seq": message.seq}


def _message_from(message_id: str, data: dict) -> Message:
    return Message(id=message_id, role=data["role"], text=data["text"], turn_id=data["turn_id"], seq=data["seq"],
                   created_at=as_datetime(data["created_at"]), citations=list(data.get("citations") or []),
                   action=data.get("action"), confidence=data.get("confidence"))


def _session_from(tenant: str, session_id: str, data: dict) -> Session:
    return Session(id=session_id, tenant=tenant, user_id=data.get("user_id"),
                   created_at=as_datetime(data["created_at"]), updated_at=as_datetime(data["updated_at"]),
                   expires_at=as_datetime(data["expires_at"]), summary=data.get("summary", ""),
                   summarized_through=data.get("summarized_through", 0), turn_count=data.get("turn_count", 0))


def _newest_within_bytes(messages: list[Message], budget: int) -> tuple[list[Message], bool]:
    """The newest messages whose stored size fits `budget`, oldest first, and whether any were left out."""
    kept: list[Message] = []
    size = 0
    for message in reversed(messages):
        size += len(json.dumps(_message_data(message), default=str).encode())
        if size > budget:
            break
        kept.append(message)
    return list(reversed(kept)), len(kept) < len(messages)
