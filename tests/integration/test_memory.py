"""Conversation memory against the real Firestore emulator, with an injected clock to move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import BadRequest, NotFound, TransientError
from shared.memory import (
    ExtractiveSummarizer,
    FirestoreConnection,
    MemoryStore,
    MemoryUnavailable,
    Message,
    PolicyStore,
    RateDecision,
    RateLimiter,
    Summarizer,
)

PROJECT = "demo-test"
START = datetime(2026, 11, 22, 9, 0, 0, 500_000, tzinfo=UTC)


class Clock:
    """A settable clock: `clock()` for the stores' `now`, `clock.monotonic()` for the policy cache."""

    def __init__(self, at: datetime = START):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


class RecordingSummarizer(Summarizer):
    """Remembers what it was asked to fold; the summary lists the message texts."""

    def __init__(self):
        self.calls: list[tuple[str, list[Message]]] = []

    def summarize(self, previous_summary: str, messages: list[Message]) -> str:
        self.calls.append((previous_summary, messages))
        return " | ".join(filter(None, [previous_summary, *(m.text for m in messages)]))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def connection(firestore_db) -> FirestoreConnection:
    return FirestoreConnection(PROJECT)


@pytest.fixture
def store(connection, clock) -> MemoryStore:
    return MemoryStore(connection, session_ttl_seconds=24 * 3600, summary_every_turns=3, now=clock)


def add_turns(store: MemoryStore, session, count: int, start: int = 1) -> None:
    for i in range(start, start + count):
        store.append_turn(session, f"question {i}?", f"Answer {i}. More detail.", [{"doc": f"d{i}"}], "answer", 0.5)


# --- sessions -----------------------------------------------------------------------------------------------------

def test_a_new_session_is_created_and_resumed_by_id(store, connection):
    session = store.get_or_create_session("acme")
    assert len(session.id) >= 16 and session.turn_count == 0 and session.user_id is None
    assert session.expires_at == START + timedelta(hours=24)
    resumed = store.get_or_create_session("acme", session.id)
    assert resumed.id == session.id and resumed.created_at == START
    doc = connection.client.document("tenants", "acme", "sessions", session.id).get().to_dict()
    assert doc["summary"] == "" and doc["summarized_through"] == 0 and doc["user_id"] is None


@pytest.mark.parametrize("unknown", ["A" * 22, "no/such/../path", "short", "x" * 65, ""])
def test_an_unknown_or_malformed_id_starts_a_new_session(store, unknown):
    session = store.get_or_create_session("acme", unknown)
    assert session.id != unknown
    assert store.get_session("acme", session.id) is not None
    assert store.get_session("acme", unknown) is None


def test_sessions_belong_to_their_tenant_and_their_user(store):
    anonymous = store.get_or_create_session("acme")
    alices = store.get_or_create_session("acme", None, "alice")
    assert store.get_or_create_session("other", anonymous.id).id != anonymous.id
    assert store.get_or_create_session("acme", anonymous.id, "alice").id != anonymous.id
    assert store.get_or_create_session("acme", alices.id, "bob").id != alices.id
    assert store.get_or_create_session("acme", alices.id).id != alices.id
    assert store.get_or_create_session("acme", alices.id, "alice").id == alices.id


def test_a_bad_tenant_is_a_bad_request(store):
    with pytest.raises(BadRequest):
        store.get_or_create_session("acme/sessions")


def test_sessions_expire_after_the_ttl_since_the_last_turn(store, clock):
    session = store.get_or_create_session("acme")
    clock.advance(hours=20)
    store.append_turn(session, "hi", "hello")
    assert session.expires_at == clock() + timedelta(hours=24)
    clock.advance(hours=20)  # 40 h after creation, 20 h after the last turn
    assert store.get_or_create_session("acme", session.id).id == session.id
    clock.advance(hours=4)  # exactly the TTL after the last turn
    assert store.get_session("acme", session.id) is None
    fresh = store.get_or_create_session("acme", session.id)
    assert fresh.id != session.id and fresh.turn_count == 0
    with pytest.raises(NotFound):
        store.append_turn(session, "still there?", "no")


# --- turns, buffer window, transcript -----------------------------------------------------------------------------

def test_append_turn_writes_both_messages_and_counts(store, connection):
    session = store.get_or_create_session("acme")
    turn = store.append_turn(session, "How do refunds work?", "Within 30 days [1].", [{"chunk_id": "c1", "n": 1}],
                             "answer", 0.82)
    assert turn.number == 1 and session.turn_count == 1
    assert (turn.user.role, turn.assistant.role) == ("user", "assistant")
    assert turn.user.turn_id == turn.assistant.turn_id == turn.id
    store.append_turn(session, "And for yearly plans?", "Could you say which plan?", [], "clarify", None)
    doc = connection.client.document("tenants", "acme", "sessions", session.id).get().to_dict()
    assert doc["turn_count"] == 2 and session.turn_count == 2
    first, second = store.transcript(session)[:2]
    assert (first.text, first.seq, first.action) == ("How do refunds work?", 0, None)
    assert (second.citations, second.action, second.confidence) == ([{"chunk_id": "c1", "n": 1}], "answer", 0.82)
    assert store.get_session("acme", session.id).turn_count == 2


def test_append_turn_refuses_unknown_actions(store):
    session = store.get_or_create_session("acme")
    with pytest.raises(ValueError):
        store.append_turn(session, "q", "a", action="shrug")


def test_recent_messages_are_the_last_n_oldest_first(store):
    session = store.get_or_create_session("acme")
    add_turns(store, session, 5)
    window = store.recent_messages(session, 4)
    assert [m.text for m in window] == ["question 4?", "Answer 4. More detail.", "question 5?",
                                        "Answer 5. More detail."]
    assert [m.seq for m in window] == [6, 7, 8, 9]
    assert len(store.recent_messages(session, 50)) == 10
    assert store.recent_messages(session, 0) == []


def test_transcript_is_every_message_in_order(store):
    session = store.get_or_create_session("acme")
    add_turns(store, session, 3)
    transcript = store.transcript(session)
    assert [m.role for m in transcript] == ["user", "assistant"] * 3
    assert [m.seq for m in transcript] == list(range(6))
    other = store.get_or_create_session("acme")
    assert store.transcript(other) == []


# --- rolling summary ----------------------------------------------------------------------------------------------

def test_summary_folds_exactly_every_k_turns_and_only_new_messages(store):
    session = store.get_or_create_session("acme")
    summarizer = RecordingSummarizer()
    written = []
    for i in range(1, 8):
        add_turns(store, session, 1, start=i)
        written.append(store.maybe_summarize(session, summarizer))
    assert written == [False, False, True, False, False, True, False]
    (prev1, batch1), (prev2, batch2) = summarizer.calls
    assert prev1 == "" and [m.seq for m in batch1] == list(range(6))
    assert [m.seq for m in batch2] == list(range(6, 12)) and prev2.startswith("question 1?")
    assert "question 6?" in session.summary and "question 7?" not in session.summary
    stored = store.get_session("acme", session.id)
    assert (stored.summarized_through, stored.summary) == (6, session.summary)


def test_a_turn_landing_during_summarizing_discards_that_summary(store):
    session = store.get_or_create_session("acme")
    add_turns(store, session, 3)

    class Interrupted(RecordingSummarizer):
        def summarize(self, previous_summary, messages):
            if not self.calls:
                store.append_turn(session, "meanwhile?", "Yes.")
            return super().summarize(previous_summary, messages)

    summarizer = Interrupted()
    assert store.maybe_summarize(session, summarizer) is False
    assert store.get_session("acme", session.id).summarized_through == 0
    assert store.maybe_summarize(session, summarizer) is True
    assert [m.seq for m in summarizer.calls[1][1]] == list(range(8))


def test_extractive_summarizer_keeps_questions_and_first_sentences_newest_first_when_trimming():
    def msg(role, text, seq):
        return Message(id=str(seq), role=role, text=text, turn_id="t", seq=seq, created_at=START)

    summarizer = ExtractiveSummarizer(max_chars=1200)
    summary = summarizer.summarize("", [msg("user", "Can I get a refund?", 0),
                                        msg("assistant", "Yes, within 30 days. Contact billing first.", 1)])
    assert summary == "Customer asked: Can I get a refund?\nAssistant: Yes, within 30 days."
    assert summarizer.summarize(summary, []) == summary
    long = summary
    for i in range(100):
        long = summarizer.summarize(long, [msg("user", f"Question number {i} about invoices?", 2 * i),
                                           msg("assistant", f"Answer {i}. Detail.", 2 * i + 1)])
    assert len(long) <= 1200
    assert long.endswith("Customer asked: Question number 99 about invoices?\nAssistant: Answer 99.")
    assert "refund" not in long


# --- long-term memory of signed users -----------------------------------------------------------------------------

def test_a_signed_users_history_spans_sessions_but_not_users_or_tenants(store, clock):
    first = store.get_or_create_session("acme", None, "alice")
    store.append_turn(first, "Where is my invoice?", "Invoices are under Billing. " + "x" * 400)
    clock.advance(days=3)
    second = store.get_or_create_session("acme", first.id, "alice")
    assert second.id != first.id  # the first session expired
    history = store.user_history("acme", "alice", 5)
    assert [h.question for h in history] == ["Where is my invoice?"]
    assert len(history[0].answer) <= 300 and history[0].at == START
    assert store.user_history("acme", "bob", 5) == []
    assert store.user_history("other", "alice", 5) == []
    anonymous = store.get_or_create_session("acme")
    store.append_turn(anonymous, "anonymous question", "answer")
    assert len(store.user_history("acme", "alice", 5)) == 1


def test_user_history_keeps_the_last_twenty_pairs(store):
    session = store.get_or_create_session("acme", None, "alice")
    add_turns(store, session, 23)
    history = store.user_history("acme", "alice", 50)
    assert len(history) == 20 and history[0].question == "question 4?" and history[-1].question == "question 23?"
    assert [h.question for h in store.user_history("acme", "alice", 2)] == ["question 22?", "question 23?"]


# --- rate limits --------------------------------------------------------------------------------------------------

def test_rate_limiter_allows_the_limit_then_refuses_for_a_sliding_window(connection, clock):
    limiter = RateLimiter(connection, now=clock)
    clock.at = datetime(2026, 11, 22, 9, 0, 15, tzinfo=UTC)  # 15 s into a minute window
    decisions = [limiter.hit("session:acme:s1", 3, 60) for _ in range(3)]
    assert [(d.allowed, d.remaining) for d in decisions] == [(True, 2), (True, 1), (True, 0)]
    refused = limiter.hit("session:acme:s1", 3, 60)
    # 4 hits counted (the refused one too); the next is allowed once 4 × (share of the minute left) + 1 <= 3,
    # half-way into the next window: 45 s + 30 s.
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 75)
    assert limiter.hit("session:acme:s2", 3, 60).allowed  # keys are independent
    clock.advance(seconds=45)  # the next window begins: the last one still weighs in full
    assert not limiter.hit("session:acme:s1", 3, 60).allowed
    clock.advance(seconds=45)  # 45 s into it: 4 × 0.25 + 2 = 3
    assert limiter.hit("session:acme:s1", 3, 60) == RateDecision(allowed=True, remaining=0, retry_after=0)
    clock.advance(seconds=120)  # two windows later nothing weighs any more
    assert limiter.hit("session:acme:s1", 3, 60) == RateDecision(allowed=True, remaining=2, retry_after=0)
    docs = list(connection.client.collection("ratelimits").stream())
    assert len(docs) == 4 and all(d.id.split("_")[0].isalnum() and "expires_at" in d.to_dict() for d in docs)


def test_twice_the_limit_across_a_window_boundary_no_longer_passes(connection, clock):
    """The fixed window let `limit` hits at the end of one minute and `limit` more at the start of the next."""
    limiter = RateLimiter(connection, now=clock)
    clock.at = datetime(2026, 11, 22, 9, 0, 55, tzinfo=UTC)
    early = [limiter.hit("client:acme:203.0.113.7", 10, 60).allowed for _ in range(10)]
    clock.advance(seconds=10)  # 5 s into the next minute
    late = [limiter.hit("client:acme:203.0.113.7", 10, 60).allowed for _ in range(10)]
    assert all(early)
    assert sum(late) <= 1  # 10 × 55/60 of the last minute still counts
    refused = limiter.hit("client:acme:203.0.113.7", 10, 60)
    assert not refused.allowed and 1 <= refused.retry_after <= 120


def test_rate_limiter_counts_concurrent_hits_exactly(connection, clock):
    from concurrent.futures import ThreadPoolExecutor

    limiter = RateLimiter(connection, now=clock)
    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(lambda _: limiter.hit("client:acme:1.2.3.4", 10, 60), range(16)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))


def test_configured_limits_per_session_and_client(connection, clock):
    limiter = RateLimiter(connection, session_per_minute=1, client_per_minute=2, now=clock)
    assert limiter.hit_session("acme", "s1").allowed and not limiter.hit_session("acme", "s1").allowed
    assert limiter.hit_client("acme", "ip").allowed and limiter.hit_client("acme", "ip").allowed
    assert not limiter.hit_client("acme", "ip").allowed


def test_each_call_may_pass_its_own_limit(connection, clock):
    """A tenant's own limits are passed per call; the settings are only the defaults."""
    limiter = RateLimiter(connection, client_per_minute=1, handoff_per_hour=1, feedback_per_minute=1, now=clock)
    assert [limiter.hit_client("big", "ip", limit=3).allowed for _ in range(4)] == [True, True, True, False]
    assert [limiter.hit_client("small", "ip").allowed for _ in range(2)] == [True, False]
    assert [limiter.hit_handoff("acme", "ip").allowed for _ in range(2)] == [True, False]
    assert limiter.hit_handoff("acme", "ip").retry_after > 60  # an hour's window
    assert [limiter.hit_feedback("acme", "ip", limit=2).allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit_session("acme", "\ud800").allowed  # a key is hashed, never stored: any text has one


# --- feedback, tickets, gaps --------------------------------------------------------------------------------------

def test_feedback_is_one_vote_per_turn_and_must_match_the_session(store, connection):
    session = store.get_or_create_session("acme")
    turn = store.append_turn(session, "q", "a")
    store.record_feedback("acme", session.id, turn.id, "up")
    store.record_feedback("acme", session.id, turn.id, "down", "wrong plan")
    docs = [d.to_dict() for d in connection.client.collection("tenants/acme/feedback").stream()]
    assert len(docs) == 1 and (docs[0]["rating"], docs[0]["reason"], docs[0]["session_id"]) == (
        "down", "wrong plan", session.id)
    other = store.get_or_create_session("acme")
    for session_id, turn_id in [(other.id, turn.id), (session.id, "A" * 16), (session.id, "../x"), ("nope", turn.id)]:
        with pytest.raises(NotFound):
            store.record_feedback("acme", session_id, turn_id, "up")
    with pytest.raises(NotFound):
        store.record_feedback("other", session.id, turn.id, "up")
    with pytest.raises(BadRequest):
        store.record_feedback("acme", session.id, turn.id, "meh")


def test_a_ticket_holds_the_transcript(store, connection):
    session = store.get_or_create_session("acme", None, "alice")
    add_turns(store, session, 2)
    ticket = store.create_ticket("acme", session, "customer asked for a human", "alice@example.com")
    assert (ticket.status, ticket.user_id, ticket.transcript_truncated) == ("open", "alice", False)
    assert [m.text for m in ticket.transcript] == [m.text for m in store.transcript(session)]
    doc = connection.client.document("tenants", "acme", "tickets", ticket.id).get().to_dict()
    assert doc["status"] == "open" and doc["contact"] == "alice@example.com" and doc["created_at"] == START
    assert [m["text"] for m in doc["transcript"]] == [m.text for m in ticket.transcript]
    assert doc["transcript"][1]["citations"] == [{"doc": "d1"}]


def test_a_ticket_keeps_the_newest_messages_when_the_transcript_is_too_large(store, monkeypatch):
    from shared.memory import store as store_module

    session = store.get_or_create_session("acme")
    add_turns(store, session, 4)
    monkeypatch.setattr(store_module, "TICKET_TRANSCRIPT_BYTES", 1000)
    ticket = store.create_ticket("acme", session, "handoff")
    assert ticket.transcript_truncated and 0 < len(ticket.transcript) < 8
    assert ticket.transcript[-1].text == "Answer 4. More detail."

def test_gaps_are_counted_per_normalised_question_and_listed_most_frequent_first(store, clock):
    for question in ["How do I export data?", "how do i EXPORT data", "  How do I export   data!? "]:
        store.record_gap("acme", question, "s1", 0.12)
    clock.advance(minutes=1)
    store.record_gap("acme", "Do you support SSO?", "s2", 0.3)
    store.record_gap("acme", "do you support sso", "s3", None)
    store.record_gap("acme", "Is there a dark mode?", "s4", 0.2)
    store.record_gap("other", "Is there a dark mode?", "s5", 0.2)
    store.record_gap("acme", "?!", "s6", 0.1)  # nothing left to count
    gaps = store.list_gaps("acme", 10)
    assert [(g.normalized, g.count) for g in gaps] == [
        ("how do i export data", 3), ("do you support sso", 2), ("is there a dark mode", 1)]
    assert gaps[1].question == "do you support sso" and gaps[1].last_session_id == "s3"
    assert gaps[1].last_seen == clock() and gaps[1].top_score is None
    assert len(store.list_gaps("acme", 2)) == 2


# --- policies -----------------------------------------------------------------------------------------------------

def test_policy_cache_honours_its_ttl(connection, clock):
    policies = PolicyStore(connection, ttl_seconds=300, clock=clock.monotonic)
    doc = connection.client.document("tenants", "acme", "config", "policies")
    assert policies.get("acme") == ""
    doc.set({"text": "Never promise refunds after 30 days."})
    assert policies.get("acme") == ""  # the empty answer is cached too
    clock.advance(seconds=301)
    assert policies.get("acme") == "Never promise refunds after 30 days."
    doc.set({"text": "Refunds within 14 days only."})
    clock.advance(seconds=299)
    assert policies.get("acme") == "Never promise refunds after 30 days."
    clock.advance(seconds=2)
    assert policies.get("acme") == "Refunds within 14 days only."
    assert policies.get("other") == ""


# --- failures and wiring ------------------------------------------------------------------------------------------

class FlakyConnection(FirestoreConnection):
    """The emulator's connection, failing the way an unreachable Firestore does while `error` is set."""

    def __init__(self, error: Exception | None = None):
        super().__init__(PROJECT)
        self.error = error

    @property
    def client(self):
        if self.error is not None:
            raise self.error
        return super().client


@pytest.mark.parametrize("error_name", ["ServiceUnavailable", "DeadlineExceeded", "ResourceExhausted"])
def test_transient_firestore_errors_become_memory_unavailable(error_name, clock):
    from google.api_core import exceptions

    store = MemoryStore(FlakyConnection(getattr(exceptions, error_name)("down")), now=clock)
    with pytest.raises(MemoryUnavailable) as caught:
        store.get_session("acme", "A" * 22)
    assert isinstance(caught.value, TransientError) and caught.value.retryable and caught.value.status == 503


def test_policies_fall_back_to_the_last_text_read_when_firestore_is_down(firestore_db, clock):
    from google.api_core import exceptions

    connection = FlakyConnection()
    policies = PolicyStore(connection, ttl_seconds=10, clock=clock.monotonic)
    connection.client.document("tenants", "acme", "config", "policies").set({"text": "Be kind."})
    assert policies.get("acme") == "Be kind."
    connection.error = exceptions.ServiceUnavailable("down")
    clock.advance(seconds=11)
    assert policies.get("acme") == "Be kind."
    with pytest.raises(MemoryUnavailable):
        policies.get("other")


class Blackhole:
    """A TCP listener that accepts connections and never answers: Firestore as an outage looks to a client."""

    def __init__(self):
        import socket
        import threading

        self.socket = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.socket.getsockname()[1]}"
        self.accepted = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.socket.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def blackhole(monkeypatch):
    hole = Blackhole()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", hole.host)
    yield hole
    hole.close()


@pytest.mark.parametrize("call", ["get_session", "create_session", "rate_limit", "policies"])
def test_a_firestore_that_never_answers_fails_fast(blackhole, clock, call):
    """Today's client library retries each call for 60-300 s; every call now gives up within its deadline."""
    import time

    connection = FirestoreConnection(PROJECT, timeout_seconds=1.0, retry_seconds=1.0)
    store = MemoryStore(connection, now=clock, rate_limiter=RateLimiter(connection, now=clock),
                        policies=PolicyStore(connection))
    calls = {
        "get_session": lambda: store.get_session("acme", "A" * 22),
        "create_session": lambda: store.get_or_create_session("acme"),
        "rate_limit": lambda: store.rate_limiter.hit_client("acme", "203.0.113.7"),
        "policies": lambda: store.policies.get("acme"),
    }
    began = time.monotonic()
    with pytest.raises(MemoryUnavailable):
        calls[call]()
    assert time.monotonic() - began < 8
    assert blackhole.accepted, "the client did reach the silent listener"


def test_the_deadlines_come_from_settings(monkeypatch):
    from shared.config import Settings

    settings = Settings.from_env({"DATABASE_URL": "postgresql://u@h/d", "FIRESTORE_TIMEOUT_SECONDS": "1.5",
                                  "FIRESTORE_RETRY_SECONDS": "0"}).validate()
    connection = MemoryStore.from_settings(settings)._connection
    assert connection.reads == {"retry": None, "timeout": 1.5} and connection.writes["timeout"] == 1.5
    retrying = FirestoreConnection(PROJECT, timeout_seconds=2, retry_seconds=3)
    assert retrying.reads["retry"].timeout == 3 and retrying.reads["timeout"] == 2


def test_services_build_the_store_from_settings(firestore_db, monkeypatch):
    from shared import services

    monkeypatch.setenv("DATABASE_URL", "postgresql://unused@127.0.0.1/none")
    monkeypatch.setenv("SUMMARY_EVERY_TURNS", "1")
    monkeypatch.setenv("RATE_LIMIT_SESSION_PER_MINUTE", "1")
    services.reset()
    try:
        store = services.memory_store()
        assert services.memory_store() is store
        session = store.get_or_create_session("default")
        store.append_turn(session, "q", "a")
        assert store.maybe_summarize(session, ExtractiveSummarizer())
        assert store.rate_limiter.hit_session("default", session.id).allowed
        assert not store.rate_limiter.hit_session("default", session.id).allowed
    finally:
        services.reset()
