"""The chat function's log events: exactly one `chat_turn` per turn, in JSON and SSE mode, failed turns included,
with the contract's fields and their JSON types; Gemini's token counts when it reports usage; `model_error` for a
failed Gemini call; one `feedback` per vote.

The real ChatService runs behind `functions_framework.create_app(...).test_client()`, with the real GeminiAnswerer
over a stub google-genai client (real `GenerateContentResponse` objects) and small in-memory stand-ins for memory,
retrieval and the answerability gate."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.genai import errors, types

from shared import services
from shared.answerability.gate import Assessment
from shared.chat.service import ChatService
from shared.config import get_settings
from shared.llm import RuleRewriter
from shared.llm.gemini import GeminiAnswerer
from shared.memory.models import Session
from shared.retrieval.hybrid import ChunkHit, DocumentHit
from tests.logevents import watching

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gemini-2.5-flash"
SESSION = "session-0123456789"
QUESTION = {"message": "How long do refunds take?"}


# --- stand-ins -------------------------------------------------------------------------------------------------------
def chunk(text: str | None = None, *, prompt: int | None = None, candidates: int | None = None,
          finish: str | None = None) -> types.GenerateContentResponse:
    """One streamed response as google-genai parses it from the wire (camelCase JSON)."""
    candidate: dict = {"content": {"role": "model", "parts": [{"text": text}] if text else []}}
    if finish:
        candidate["finishReason"] = finish
    body: dict = {"candidates": [candidate]}
    usage = {k: v for k, v in (("promptTokenCount", prompt), ("candidatesTokenCount", candidates)) if v is not None}
    if usage:
        body["usageMetadata"] = {**usage, "totalTokenCount": sum(usage.values())}
    return types.GenerateContentResponse.model_validate(body)


def api_error(code: int, status: str) -> errors.APIError:
    return errors.APIError(code, {"error": {"code": code, "message": "scripted", "status": status}})


class StubGenai:
    """`client.models.generate_content_stream(...)`: the scripted chunks; an exception in the script is raised
    there (before the first chunk, it is raised by the call itself, as the SDK does for an HTTP error)."""

    def __init__(self, script):
        self.script = list(script)
        self.models = self
        self.calls = 0

    def generate_content_stream(self, *, model, contents, config):
        self.calls += 1
        if self.script and isinstance(self.script[0], Exception):
            raise self.script[0]
        return self._stream()

    def _stream(self):
        for item in self.script:
            if isinstance(item, Exception):
                raise item
            yield item


class Memory:
    """The memory store's methods the chat service calls, in memory."""

    def __init__(self):
        allow = SimpleNamespace(allowed=True, retry_after=0)
        self.rate_limiter = SimpleNamespace(hit_client=lambda *a, **k: allow, hit_session=lambda *a, **k: allow,
                                            hit_feedback=lambda *a, **k: allow)
        self.policies = SimpleNamespace(get=lambda tenant: "")
        now = datetime.now(UTC)
        self.session = Session(id=SESSION, tenant="default", user_id=None, created_at=now, updated_at=now,
                               expires_at=now + timedelta(days=1))
        self.turns: list[dict] = []
        self.votes: list[tuple] = []

    def get_or_create_session(self, tenant, session_id=None, user_id=None):
        return self.session

    def get_session(self, tenant, session_id):
        return self.session if session_id == SESSION else None

    def recent_messages(self, session, n):
        return []

    def append_turn(self, session, user_text, assistant_text, citations=(), **kwargs):
        self.turns.append({"text": assistant_text, **kwargs})

    def maybe_summarize(self, session, summarizer):
        return False

    def record_gap(self, *args, **kwargs):
        pass

    def record_feedback(self, tenant, session_id, turn_id, rating, reason):
        self.votes.append((tenant, session_id, turn_id, rating))


class Retriever:
    def retrieve(self, query, tenant, top_k=5, topics=None):
        text = "Refunds take 5 days. A refund goes back to the card that paid."
        hit = ChunkHit(chunk_id="refunds#0", document_id="refunds", score=0.8, title="Refunds", text=text)
        document = DocumentHit(document_id="refunds", title="Refunds", url="https://help.example/refunds",
                               source_uri="gs://kb/billing/refunds.md", topic="billing", score=0.8, vector_score=0.8,
                               keyword_score=1.0, chunks=(hit,), best_chunk_id=hit.chunk_id)
        return SimpleNamespace(documents=[document], timings={"total_ms": 1.0})


class Gate:
    def assess(self, question, tenant, documents, sources):
        return Assessment(probability=0.87, answerable=True, features={"coverage": 1.0}, terms=[], passages=[])


# --- fixtures --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app():
    from functions_framework import create_app

    return create_app("chat", str(ROOT / "functions" / "chat" / "main.py"))


@pytest.fixture
def configure(monkeypatch):
    for key, value in {"DATABASE_URL": "postgresql://test@127.0.0.1:1/unused", "GOOGLE_CLOUD_PROJECT": "demo-test",
                       "DEFAULT_TENANT": "default", "CHAT_ALLOWED_ORIGINS": "https://shop.example",
                       "SSE_HEARTBEAT_SECONDS": "10", "LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(key, value)
    services.reset()
    yield
    services.reset()


@pytest.fixture
def chat(app, configure, monkeypatch):
    """`chat(script)`: a test client of the chat function whose service answers with Gemini following `script`."""

    def start(script):
        memory = Memory()
        service = ChatService(get_settings(), memory, Retriever(), GeminiAnswerer(StubGenai(script), MODEL,
                              max_retries=0, sleep=lambda s: None), RuleRewriter(), None, gate=Gate())
        monkeypatch.setattr(services, "chat_service", functools.lru_cache(maxsize=1)(lambda: service))
        return app.test_client(), memory

    return start



@pytest.fixture
def events():
    with watching("shared.chat.service", "shared.llm.gemini") as handler:
        yield handler


ANSWER = [chunk("Refunds take ", prompt=120), chunk("5 days [1].", prompt=120, candidates=7, finish="STOP")]


def ask_json(client):
    return client.post("/v1/chat", json=QUESTION, headers={"Accept": "application/json"})


def ask_sse(client):
    response = client.post("/v1/chat", json=QUESTION, headers={"Accept": "text/event-stream"})
    return response, response.get_data(as_text=True)  # reading the body runs the turn to its end


# --- chat_turn -------------------------------------------------------------------------------------------------------
def test_one_chat_turn_per_json_turn_with_the_fields_and_their_types(chat, events):
    client, memory = chat(ANSWER)
    response = ask_json(client)
    assert response.status_code == 200 and response.get_json()["action"] == "answer"
    [turn] = events.of("chat_turn")
    assert turn["severity"] == "INFO" and turn["tenant"] == "default"
    assert (turn["action"], turn["status"], turn["streamed"], turn["model"], turn["sources"]) == (
        "answer", 200, False, MODEL, 1)
    assert turn["confidence"] == 0.87 and isinstance(turn["confidence"], float)
    for name in ("first_delta_ms", "total_ms", "retrieval_ms"):
        assert isinstance(turn[name], float) and turn[name] >= 0, name
    assert turn["first_delta_ms"] <= turn["total_ms"] and turn["retrieval_ms"] <= turn["total_ms"]
    # The usage metadata of the last chunk that carried each count.
    assert (turn["tokens_in"], turn["tokens_out"]) == (120, 7)
    assert all(isinstance(turn[n], int) and not isinstance(turn[n], bool) for n in ("tokens_in", "tokens_out"))
    assert "refunds" not in turn["message"].lower()  # no question or answer text in the record
    assert len(memory.turns) == 1


def test_one_chat_turn_per_sse_turn(chat, events):
    client, _ = chat(ANSWER)
    response, body = ask_sse(client)
    assert response.status_code == 200 and "event: done" in body
    [turn] = events.of("chat_turn")
    assert (turn["action"], turn["status"], turn["streamed"], turn["sources"]) == ("answer", 200, True, 1)
    assert isinstance(turn["first_delta_ms"], float) and turn["first_delta_ms"] <= turn["total_ms"]
    assert (turn["tokens_in"], turn["tokens_out"]) == (120, 7)


def test_no_tokens_when_gemini_reports_no_usage(chat, events):
    client, _ = chat([chunk("Refunds take "), chunk("5 days [1].", finish="STOP")])
    assert ask_json(client).status_code == 200
    [turn] = events.of("chat_turn")
    assert turn["model"] == MODEL and "tokens_in" not in turn and "tokens_out" not in turn


@pytest.mark.parametrize("mode", ["json", "sse"])
def test_a_turn_that_fails_after_text_is_one_error_turn_and_one_model_error(chat, events, mode):
    client, memory = chat([chunk("Refunds take ", prompt=120), api_error(503, "UNAVAILABLE")])
    if mode == "json":
        response = ask_json(client)
        assert response.status_code == 503
    else:
        response, body = ask_sse(client)
        assert response.status_code == 200 and "event: error" in body
    [turn] = events.of("chat_turn")
    assert (turn["action"], turn["status"], turn["streamed"]) == ("error", 503, mode == "sse")
    assert turn["severity"] == "WARNING" and turn["model"] == MODEL and turn["sources"] == 0
    assert isinstance(turn["first_delta_ms"], float)  # text had been sent
    [error] = events.of("model_error")
    assert error["severity"] == "ERROR"  # the answer had begun: the turn fails, nothing falls back
    assert (error["provider"], error["operation"], error["code"], error["error"], error["retryable"]) == (
        "gemini", "stream", 503, "APIError", True)
    assert memory.turns[-1]["action"] is None  # the interrupted turn is still saved


def test_a_gemini_refusal_before_text_is_a_warning_and_the_extractive_answer_is_the_model(chat, events):
    client, _ = chat([api_error(400, "INVALID_ARGUMENT")])
    response = ask_json(client)
    assert response.status_code == 200
    [error] = events.of("model_error")
    assert (error["severity"], error["code"], error["retryable"]) == ("WARNING", 400, False)
    [turn] = events.of("chat_turn")
    assert turn["model"] == "extractive" and turn["status"] == 200 and "tokens_in" not in turn


def test_small_talk_is_a_turn_without_retrieval_or_model(chat, events):
    client, _ = chat(ANSWER)
    response = client.post("/v1/chat", json={"message": "hello"}, headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.get_json()["action"] == "clarify"
    [turn] = events.of("chat_turn")
    assert turn["action"] == "clarify" and turn["status"] == 200 and turn["sources"] == 0
    assert "retrieval_ms" not in turn and "model" not in turn and isinstance(turn["first_delta_ms"], float)


def test_a_refused_request_is_no_turn(chat, events):
    client, _ = chat(ANSWER)
    response = client.post("/v1/chat", json={"message": " "}, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert events.of("chat_turn") == []


# --- feedback --------------------------------------------------------------------------------------------------------
def test_one_feedback_event_per_vote(chat, events):
    client, memory = chat(ANSWER)
    for rating in ("up", "down"):
        response = client.post("/v1/feedback", json={"session_id": SESSION, "turn_id": "turn-1", "rating": rating})
        assert response.status_code == 204
    assert [(e["event"], e["tenant"], e["rating"]) for e in events.of("feedback")] == [
        ("feedback", "default", "up"), ("feedback", "default", "down")]
    assert len(memory.votes) == 2
    assert client.post("/v1/feedback", json={"session_id": "nope", "turn_id": "t", "rating": "up"}).status_code == 404
    assert len(events.of("feedback")) == 2  # a vote that was not recorded is not counted


def test_a_dont_know_is_told_apart_from_a_request_for_a_person(chat, events, monkeypatch):
    """The API says `handoff` for both; the event says `dont_know` when the documents had no answer."""
    monkeypatch.setattr(Gate, "assess", lambda self, q, t, d, s: Assessment(
        probability=0.1, answerable=False, features={"coverage": 0.0}, terms=[], passages=[]))
    client, _ = chat(ANSWER)
    response = ask_json(client)
    assert response.status_code == 200 and response.get_json()["action"] == "handoff"
    [turn] = events.of("chat_turn")
    assert turn["action"] == "dont_know" and turn["confidence"] == 0.1

    client, _ = chat(ANSWER)
    response = client.post("/v1/chat", json={"message": "I want to talk to a human"},
                           headers={"Accept": "application/json"})
    assert response.get_json()["action"] == "handoff"
    assert events.of("chat_turn")[-1]["action"] == "handoff"
