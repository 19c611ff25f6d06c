"""The chat function's HTTP layer (`functions/chat/main.py` + `shared/chat/http.py`) against a scripted fake
ChatService: routes, validation, CORS, the two answer formats, heartbeats and real streaming.

Most cases go through `functions_framework.create_app(...).test_client()`; streaming, heartbeats, chunked uploads
and disconnects through a real threaded HTTP server and httpx, as the widget would see them."""

from __future__ import annotations

import functools
import inspect
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

from shared import logs, services
from shared.chat import http
from shared.chat.events import Citation, CitationsEvent, Delta, Done, ErrorEvent, SessionEvent
from shared.chat.service import ChatRequest
from shared.errors import BadRequest, NotFound, RateLimited
from shared.memory.connection import MemoryUnavailable
from shared.memory.signing import InvalidUserToken
from tests.sse import Comment, Event, iter_sse, parse, parse_all

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://shop.example"
LIMITS = {"client": 60, "session": 20}  # the RATE_LIMIT_* defaults, passed with every request in single-tenant mode
CITATION = Citation(number=1, title="Refunds", url="https://help.example/refunds", snippet="Refunds take 5 days.",
                    document_id="doc-1")
TURN = [
    SessionEvent("session-0123456789", "turn-0001"),
    Delta("Refunds take "),
    Delta("5 days — «vite»\nsee [1]."),
    CitationsEvent([CITATION]),
    Done("answer", 0.87654, "session-0123456789", "turn-0001"),
]


class FakeChatService:
    """A ChatService whose turn follows a script: events are yielded, a number sleeps that many seconds, a
    threading.Event is waited for (at most 5 s; `gate_timed_out` records a miss), an exception is raised."""

    def __init__(self, script=TURN, *, refuse: Exception | None = None, fail: Exception | None = None):
        self.script = list(script)
        self.refuse = refuse  # raised by start_turn
        self.fail = fail  # raised by session_view, feedback and handoff
        self.requests: list[ChatRequest] = []
        self.calls: list[tuple] = []
        self.options: list[dict] = []  # the keyword arguments of each call, in order
        self.trace_in_turn: str | None = None
        self.gate_timed_out = False
        self.finished = threading.Event()

    def start_turn(self, request: ChatRequest):
        self.requests.append(request)
        if self.refuse:
            raise self.refuse
        return ("prepared", request)

    def run_turn(self, prepared) -> Iterator:
        assert prepared[0] == "prepared"
        self.trace_in_turn = logs._trace.get()
        try:
            for step in self.script:
                if isinstance(step, (int, float)):
                    time.sleep(step)
                elif isinstance(step, threading.Event):
                    self.gate_timed_out |= not step.wait(5)
                elif isinstance(step, Exception):
                    raise step
                else:
                    yield step
        finally:
            self.finished.set()

    def session_view(self, tenant: str, session_id: str, *, user_token: str | None = None) -> dict:
        self.calls.append(("session_view", tenant, session_id))
        self.options.append({"user_token": user_token})
        if self.fail:
            raise self.fail
        return {"session_id": session_id, "expires_at": "2026-11-23T10:00:00Z", "messages": []}

    def feedback(self, tenant: str, session_id: str, turn_id: str, rating: str, reason: str | None, *,
                 user_token: str | None = None, client_id: str = "", limit: int | None = None) -> None:
        self.calls.append(("feedback", tenant, session_id, turn_id, rating, reason))
        self.options.append({"user_token": user_token, "client_id": client_id, "limit": limit})
        if self.fail:
            raise self.fail

    def handoff(self, tenant: str, session_id: str, reason: str, contact: str | None, *,
                user_token: str | None = None, client_id: str = "", limit: int | None = None) -> dict:
        self.calls.append(("handoff", tenant, session_id, reason, contact))
        self.options.append({"user_token": user_token, "client_id": client_id, "limit": limit})
        if self.fail:
            raise self.fail
        return {"ticket_id": "ticket-1", "status": "open"}


# --- fixtures --------------------------------------------------------------------------------------------------------
@pytest.fixture
def configure(monkeypatch):
    """Set chat settings through the environment (`configure(SSE_HEARTBEAT_SECONDS="0.05")`) and rebuild them."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        services.reset()

    apply(DATABASE_URL="postgresql://test@127.0.0.1:1/unused", GOOGLE_CLOUD_PROJECT="demo-test",
          DEFAULT_TENANT="default", CHAT_ALLOWED_ORIGINS=f"{ORIGIN}/, http://localhost:8080",
          CHAT_MAX_BODY_BYTES="2048", CHAT_MAX_MESSAGE_CHARS="200", SSE_HEARTBEAT_SECONDS="10", LOG_LEVEL="WARNING")
    yield apply
    services.reset()


@pytest.fixture
def use(monkeypatch, configure):
    """Install a fake as `services.chat_service()`: `fake = use(FakeChatService(...))`."""

    def install(fake: FakeChatService) -> FakeChatService:
        # Cached like the real factory, so that services.reset() can clear it as it clears every other one.
        monkeypatch.setattr(services, "chat_service", functools.lru_cache(maxsize=1)(lambda: fake), raising=False)
        return fake

    return install


@pytest.fixture(scope="module")
def app():
    from functions_framework import create_app

    return create_app("chat", str(ROOT / "functions" / "chat" / "main.py"))


@pytest.fixture
def client(app, configure):
    return app.test_client()


@pytest.fixture
def server(app, configure) -> Iterator[str]:
    """The chat function over real HTTP (threaded, like functions-framework's server); yields its base URL."""
    http_server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http_server.server_port}"
    http_server.shutdown()


def error_of(response) -> dict:
    assert response.headers["Content-Type"] == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


def chat(client, body=None, **kwargs):
    return client.post("/v1/chat", json={"message": "How long do refunds take?"} if body is None else body, **kwargs)


# --- health and routing ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/healthz", "/"])
def test_health(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/nope", "/v1/nothing", "/v1/chat/", "/v1/sessions/", "/v1/sessions/a/b",
                                  "/favicon.ico", "/robots.txt"])
def test_unknown_path_is_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "no such route"}


@pytest.mark.parametrize("path", ["/<script>alert(1)</script>", "/v1/%3Cimg%20src=x%3E", "/favicon.ico"])
def test_a_404_never_echoes_the_request_path(client, path):
    body = client.get(path).get_data(as_text=True)
    assert "script" not in body and "img" not in body and "favicon" not in body and "no such route" in body


@pytest.mark.parametrize("method, path, allow", [
    ("get", "/v1/chat", "OPTIONS, POST"),
    ("put", "/v1/feedback", "OPTIONS, POST"),
    ("delete", "/v1/sessions/session-0123456789", "GET, HEAD, OPTIONS"),
    ("post", "/healthz", "GET, HEAD"),
    ("post", "/", "GET, HEAD"),
])
def test_known_path_with_a_wrong_method_is_a_json_405_with_allow(client, method, path, allow):
    response = getattr(client, method)(path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert error_of(response)["code"] == "method_not_allowed"


# --- Server-Sent Events ----------------------------------------------------------------------------------------------
def test_sse_framing_and_headers(client, use):
    use(FakeChatService())
    response = chat(client)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in response.headers
    citation = json.dumps(CITATION.to_json(), separators=(",", ":"))
    assert response.get_data(as_text=True) == (
        'event: session\ndata: {"session_id":"session-0123456789","turn_id":"turn-0001"}\n\n'
        'event: delta\ndata: {"text":"Refunds take "}\n\n'
        'event: delta\ndata: {"text":"5 days — «vite»\\nsee [1]."}\n\n'  # UTF-8 as is, newline escaped: one line
        f'event: citations\ndata: {{"citations":[{citation}]}}\n\n'
        'event: done\ndata: {"action":"answer","confidence":0.877,"session_id":"session-0123456789",'
        '"turn_id":"turn-0001"}\n\n'
    )


def test_events_pass_through_in_order(client, use):
    script = [SessionEvent("s" * 16, "t" * 8), *(Delta(f"part {i} ") for i in range(100)), CitationsEvent([]),
              Done("clarify", 0.4, "s" * 16, "t" * 8)]
    use(FakeChatService(script))
    events = parse(chat(client).get_data())
    assert [e.name for e in events] == [s.name for s in script]
    assert [e.json() for e in events] == [s.data() for s in script]


def test_an_error_event_from_the_service_passes_through_and_ends_the_stream(client, use):
    use(FakeChatService([SessionEvent("s" * 16, "t" * 8), Delta("Hal"), ErrorEvent("upstream_unavailable", "retry")]))
    events = parse(chat(client).get_data())
    assert [(e.name, e.json()) for e in events][1:] == [
        ("delta", {"text": "Hal"}), ("error", {"code": "upstream_unavailable", "message": "retry"})]


def test_an_iterator_that_raises_ends_with_a_generic_error_event(client, use):
    use(FakeChatService([SessionEvent("s" * 16, "t" * 8), Delta("Hal"), RuntimeError("password=hunter2")]))
    response = chat(client)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert [e.name for e in parse(body)] == ["session", "delta", "error"]
    assert parse(body)[-1].json() == {"code": "internal", "message": http.INTERNAL_MESSAGE}
    assert "hunter2" not in body


def test_a_run_turn_that_raises_when_called_becomes_an_error_event(client, use):
    fake = use(FakeChatService())

    def run_turn(prepared):  # an ordinary function, not a generator: it raises as it is called
        raise RuntimeError("boom")

    fake.run_turn = run_turn
    events = parse(chat(client).get_data())
    assert [(e.name, e.json()["code"]) for e in events] == [("error", "internal")]


def test_an_event_that_cannot_be_written_ends_with_a_generic_error_event(client, use):
    use(FakeChatService([SessionEvent("s" * 16, "t" * 8), Done("answer", 0.9, object(), "t" * 8), Delta("never")]))
    events = parse(chat(client).get_data())
    assert [(e.name, e.json().get("code")) for e in events] == [("session", None), ("error", "internal")]


def test_the_turn_runs_in_the_request_context(client, use):
    fake = use(FakeChatService())
    chat(client, headers={"X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/1;o=1"}).get_data()
    assert fake.trace_in_turn == "projects/demo-test/traces/0af7651916cd43dd8448eb211c80319c"


# --- Accept: application/json ----------------------------------------------------------------------------------------
def test_json_mode_folds_the_events_into_one_chat_response(client, use):
    use(FakeChatService())
    response = chat(client, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json() == {
        "session_id": "session-0123456789", "turn_id": "turn-0001",
        "answer": "Refunds take 5 days — «vite»\nsee [1].", "citations": [CITATION.to_json()],
        "action": "answer", "confidence": 0.877,
    }


def test_json_mode_answers_503_when_the_turn_failed(client, use):
    use(FakeChatService([SessionEvent("s" * 16, "t" * 8), Delta("Hal"), ErrorEvent("upstream_unavailable", "retry")]))
    response = chat(client, headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert error_of(response) == {"code": "upstream_unavailable", "message": "retry"}


def test_json_mode_answers_503_when_the_iterator_raised(client, use):
    use(FakeChatService([SessionEvent("s" * 16, "t" * 8), RuntimeError("password=hunter2")]))
    response = chat(client, headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert error_of(response) == {"code": "internal", "message": http.INTERNAL_MESSAGE}


@pytest.mark.parametrize("accept, kind", [
    (None, "sse"),
    ("*/*", "sse"),
    ("text/event-stream", "sse"),
    ("application/*", "sse"),
    ("application/json", "json"),
    ("Application/JSON", "json"),
    ("application/json, */*;q=0.8", "json"),
    ("application/json, text/event-stream", "json"),
    ("text/event-stream, application/json;q=0.5", "sse"),
    ("application/json;q=0.9, text/event-stream;q=0.5", "json"),
    ("application/json;q=0", "sse"),
])
def test_accept_chooses_the_format(client, use, accept, kind):
    use(FakeChatService())
    response = chat(client, headers={"Accept": accept} if accept else {})
    assert response.headers["Content-Type"].startswith(
        "application/json" if kind == "json" else "text/event-stream")


# --- request bodies --------------------------------------------------------------------------------------------------
def test_the_chat_request_is_built_from_the_body(client, use):
    fake = use(FakeChatService())
    chat(client, {"message": "  Where is my invoice?\n", "session_id": "session-0123456789", "user_token": "u.1.ab",
                  "topic": "billing", "site_key": "ignored without a registry"}).get_data()
    chat(client, environ_base={"REMOTE_ADDR": "198.51.100.9"}).get_data()
    # The front end appends the caller's address; what the client sent before it is not trusted.
    chat(client, headers={"X-Forwarded-For": " 10.9.9.9 , 203.0.113.7 "}).get_data()
    assert fake.requests == [
        ChatRequest(tenant="default", message="Where is my invoice?", session_id="session-0123456789",
                    user_token="u.1.ab", topic="billing", client_id="127.0.0.1", limits=LIMITS),
        ChatRequest(tenant="default", message="How long do refunds take?", client_id="198.51.100.9", limits=LIMITS),
        ChatRequest(tenant="default", message="How long do refunds take?", client_id="203.0.113.7", limits=LIMITS),
    ]


def test_null_optional_fields_count_as_absent(client, use):
    fake = use(FakeChatService())
    chat(client, {"message": "hi", "session_id": None, "user_token": None, "topic": None, "tenant": None,
                  "site_key": None}).get_data()
    assert fake.requests == [ChatRequest(tenant="default", message="hi", client_id="127.0.0.1", limits=LIMITS)]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_body_that_is_not_json_is_415(client, use, content_type):
    fake = use(FakeChatService())
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/chat", data=b'{"message": "hi"}', headers=headers)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert fake.requests == []


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/feedback", "/v1/handoff"])
@pytest.mark.parametrize("raw, message", [
    (b"", "not valid JSON"),
    (b'{"message": "hi"', "not valid JSON"),
    (b"\xff\xfe\xfa", "not valid JSON"),
    (b'["message"]', "JSON object"),
    (b'"hi"', "JSON object"),
    (b"null", "JSON object"),
])
def test_malformed_json_is_400(client, use, path, raw, message):
    use(FakeChatService())
    response = client.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "bad_request" and message in error["message"]


@pytest.mark.parametrize("body, message", [
    ({}, "'message' is required"),
    ({"message": None}, "'message' is required"),
    ({"message": 42}, "message must be a string"),
    ({"message": ["hi"]}, "message must be a string"),
    ({"message": " \n\t "}, "message must not be blank"),
    ({"message": "x" * 201}, "message is longer than 200 characters"),
    ({"message": "hi", "session_id": ""}, "session_id"),
    ({"message": "hi", "session_id": 12345678901234567}, "session_id"),
    ({"message": "hi", "session_id": "s" * 129}, "session_id"),
    ({"message": "hi", "user_token": {"id": 1}}, "user_token"),
    ({"message": "hi", "user_token": "t" * 257}, "user_token"),
    ({"message": "hi", "topic": "Billing"}, "topic"),
    ({"message": "hi", "topic": "-billing"}, "topic"),
    ({"message": "hi", "topic": "b" * 65}, "topic"),
    ({"message": "hi", "topic": 7}, "topic"),
    ({"message": "hi", "tenant": "acme"}, "tenant is not a request field"),
    ({"message": "hi", "tenant": "default"}, "tenant is not a request field"),
    ({"message": "hi", "tenant": 3}, "tenant is not a request field"),
    ({"message": "hi", "site_key": 3}, "site_key must be a string"),
])
def test_each_bad_chat_field_is_a_400_naming_it(client, use, body, message):
    fake = use(FakeChatService())
    response = chat(client, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "bad_request" and message in error["message"]
    assert fake.requests == []


def test_a_message_at_the_limit_is_accepted_after_trimming(client, use):
    fake = use(FakeChatService())
    assert chat(client, {"message": "  " + "x" * 200 + "  "}).status_code == 200
    assert fake.requests[0].message == "x" * 200


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/feedback", "/v1/handoff"])
def test_a_body_over_the_limit_is_413_by_content_length(client, use, path):
    fake = use(FakeChatService())
    response = client.post(path, json={"message": "x" * 3000, "session_id": "s" * 16})
    assert response.status_code == 413
    assert error_of(response) == {"code": "payload_too_large", "message": "the request body is over 2048 bytes"}
    assert fake.requests == [] and fake.calls == []


def test_a_body_over_the_limit_is_413_without_content_length(client, use):
    """A body whose length is only known by reading it (as a server terminates a chunked upload)."""
    use(FakeChatService())
    body = json.dumps({"message": "x" * 100, "pad": "p" * 5000}).encode()
    response = client.post("/v1/chat", input_stream=io.BytesIO(body), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert response.request.content_length is None
    assert response.status_code == 413


def test_a_chunked_upload_over_the_limit_is_413(server, use):
    use(FakeChatService())
    body = json.dumps({"message": "hi", "pad": "p" * 20_000}).encode()
    chunks = (body[i:i + 1000] for i in range(0, len(body), 1000))  # a generator: httpx sends it chunked
    response = httpx.post(server + "/v1/chat", content=chunks, headers={"Content-Type": "application/json"},
                          timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_chunked_upload_within_the_limit_is_served(server, use):
    fake = use(FakeChatService())
    body = json.dumps({"message": "How long do refunds take?"}).encode()
    response = httpx.post(server + "/v1/chat", content=iter([body[:10], body[10:]]),
                          headers={"Content-Type": "application/json", "Accept": "application/json"}, timeout=10)
    assert response.status_code == 200
    assert fake.requests[0].message == "How long do refunds take?"


# --- refusals from start_turn ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("error, status, code, retry_after", [
    (RateLimited("client over its limit", retry_after=42), 429, "rate_limited", "42"),
    (InvalidUserToken("bad signature"), 401, "invalid_user_token", None),
    (BadRequest("session_id is not a session id"), 400, "bad_request", None),
    (MemoryUnavailable("Firestore: deadline exceeded"), 503, "memory_unavailable", "10"),
])
def test_start_turn_refusals_become_json_errors_before_streaming(client, use, error, status, code, retry_after):
    use(FakeChatService(refuse=error))
    response = chat(client, headers={"Origin": ORIGIN})
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert response.headers.get("Retry-After") == retry_after
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read the JSON
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    if status == 503:
        assert "Firestore" not in response.get_data(as_text=True)


# --- CORS ------------------------------------------------------------------------------------------------------------
def test_an_allowed_origin_gets_the_cors_headers(client, use):
    use(FakeChatService())
    for origin in (ORIGIN, "http://localhost:8080"):
        response = chat(client, headers={"Origin": origin})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Vary"] == "Origin"
        assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("method", ["post", "options"])
def test_a_disallowed_origin_is_403(client, use, method):
    fake = use(FakeChatService())
    response = getattr(client, method)("/v1/chat", json={"message": "hi"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert error_of(response) == {"code": "origin_not_allowed", "message": "this origin may not call the chat API"}
    assert "Access-Control-Allow-Origin" not in response.headers
    assert fake.requests == []


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/sessions/session-0123456789", "/v1/feedback", "/v1/handoff"])
def test_preflight(client, path):
    response = client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert response.get_data() == b"" and "Content-Type" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, Accept, X-User-Token"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.headers["Vary"] == "Origin"
    assert "OPTIONS" in response.headers["Allow"]


def test_no_origin_header_is_allowed_without_cors_headers(client, use):
    use(FakeChatService())
    response = chat(client)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert client.options("/v1/chat").status_code == 204


def test_a_wildcard_allows_any_origin(client, use, configure):
    configure(CHAT_ALLOWED_ORIGINS="*")
    use(FakeChatService())
    response = chat(client, headers={"Origin": "https://anywhere.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://anywhere.example"


@pytest.mark.parametrize("request_kwargs", [
    {"data": "not json", "content_type": "text/plain"},  # 415
    {"json": {"message": ""}},  # 400
    {"json": {"message": "x" * 5000}},  # 413
])
def test_errors_carry_the_cors_headers(client, use, request_kwargs):
    use(FakeChatService())
    response = client.post("/v1/chat", headers={"Origin": ORIGIN}, **request_kwargs)
    assert response.status_code in (400, 413, 415)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin"


def test_404_and_405_carry_the_cors_headers(client):
    assert client.get("/v1/nothing", headers={"Origin": ORIGIN}).headers["Access-Control-Allow-Origin"] == ORIGIN
    assert client.get("/v1/chat", headers={"Origin": ORIGIN}).headers["Access-Control-Allow-Origin"] == ORIGIN


# --- sessions, feedback, hand-off ------------------------------------------------------------------------------------
def test_session_view(client, use):
    fake = use(FakeChatService())
    response = client.get("/v1/sessions/session-0123456789")
    assert response.status_code == 200
    assert response.get_json()["session_id"] == "session-0123456789"
    assert fake.calls == [("session_view", "default", "session-0123456789")]


def test_session_view_refusals(client, use):
    fake = use(FakeChatService())
    for query in ("tenant=acme", "tenant=../x"):
        response = client.get("/v1/sessions/session-0123456789?" + query)
        assert response.status_code == 400 and "tenant is not a request field" in error_of(response)["message"]
    response = client.get("/v1/sessions/" + "s" * 129)
    assert response.status_code == 400 and "session_id" in error_of(response)["message"]
    fake.fail = NotFound("session expired")
    response = client.get("/v1/sessions/session-0123456789")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_feedback(client, use):
    fake = use(FakeChatService())
    response = client.post("/v1/feedback", json={"session_id": "session-0123456789", "turn_id": "turn-0001",
                                                 "rating": "down", "reason": "  outdated  "})
    assert response.status_code == 204 and response.get_data() == b""
    response = client.post("/v1/feedback", json={"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up",
                                                 "reason": " ", "tenant": "acme"})
    assert response.status_code == 400 and "tenant is not a request field" in error_of(response)["message"]
    assert fake.calls == [("feedback", "default", "session-0123456789", "turn-0001", "down", "outdated")]


@pytest.mark.parametrize("body, message", [
    ({"turn_id": "t" * 8, "rating": "up"}, "'session_id' is required"),
    ({"session_id": "s" * 16, "rating": "up"}, "'turn_id' is required"),
    ({"session_id": "s" * 16, "turn_id": 8, "rating": "up"}, "turn_id"),
    ({"session_id": "s" * 16, "turn_id": "t" * 8}, "rating"),
    ({"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "meh"}, "rating"),
    ({"session_id": "s" * 16, "turn_id": "t" * 8, "rating": ["up"]}, "rating"),
    ({"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up", "reason": 5}, "reason must be a string"),
    ({"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up", "reason": "r" * 1001}, "reason is longer than 1000"),
    ({"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up", "tenant": None}, None),  # null: absent
    ({"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up", "tenant": ""}, "tenant is not a request field"),
])
def test_each_bad_feedback_field_is_a_400_naming_it(client, use, body, message):
    fake = use(FakeChatService())
    response = client.post("/v1/feedback", json=body)
    if message is None:
        assert response.status_code == 204 and fake.calls[0][1] == "default"
        return
    assert response.status_code == 400
    assert message in error_of(response)["message"]
    assert fake.calls == []


def test_feedback_on_an_unknown_turn_is_404(client, use):
    use(FakeChatService(fail=NotFound("no such turn")))
    response = client.post("/v1/feedback", json={"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up"})
    assert response.status_code == 404


def test_handoff(client, use):
    fake = use(FakeChatService())
    response = client.post("/v1/handoff", json={"session_id": "session-0123456789"})
    assert response.status_code == 201
    assert response.get_json() == {"ticket_id": "ticket-1", "status": "open"}
    client.post("/v1/handoff", json={"session_id": "s" * 16, "reason": " wrong invoice ", "contact": "a@b.example"})
    assert fake.calls == [("handoff", "default", "session-0123456789", "customer asked for a human", None),
                          ("handoff", "default", "s" * 16, "wrong invoice", "a@b.example")]


@pytest.mark.parametrize("body, message", [
    ({}, "'session_id' is required"),
    ({"session_id": True}, "session_id"),
    ({"session_id": "s" * 16, "reason": "r" * 1001}, "reason is longer than 1000"),
    ({"session_id": "s" * 16, "contact": "c" * 321}, "contact is longer than 320"),
    ({"session_id": "s" * 16, "contact": 5551234}, "contact must be a string"),
])
def test_each_bad_handoff_field_is_a_400_naming_it(client, use, body, message):
    fake = use(FakeChatService())
    response = client.post("/v1/handoff", json=body)
    assert response.status_code == 400
    assert message in error_of(response)["message"]
    assert fake.calls == []


@pytest.mark.parametrize("method, path, body", [
    ("get", "/v1/sessions/session-0123456789", None),
    ("post", "/v1/feedback", {"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up"}),
    ("post", "/v1/handoff", {"session_id": "s" * 16}),
])
def test_an_internal_exception_is_a_generic_500(client, use, method, path, body):
    use(FakeChatService(fail=RuntimeError("connection to 10.1.2.3 failed: password=hunter2")))
    response = getattr(client, method)(path, json=body, headers={"Origin": ORIGIN})
    assert response.status_code == 500
    assert error_of(response) == {"code": "app_error", "message": "internal error"}
    assert "hunter2" not in response.get_data(as_text=True)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


# --- over real HTTP: streaming, heartbeats, disconnects ---------------------------------------------------------------
def test_events_reach_the_client_as_they_are_produced(server, use):
    release = threading.Event()
    fake = use(FakeChatService([SessionEvent("s" * 16, "t" * 8), Delta("first"), release, Delta(" second"),
                                Done("answer", 0.9, "s" * 16, "t" * 8)]))
    with httpx.Client(timeout=10) as http_client:
        with http_client.stream("POST", server + "/v1/chat", json={"message": "hi"},
                                headers={"Origin": ORIGIN}) as response:
            assert response.status_code == 200
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            received = []
            items = iter_sse(response)
            for item in items:
                if isinstance(item, Event):
                    received.append(item)
                    if item.name == "delta":
                        break
            assert not release.is_set()  # the first delta arrived while the service was still holding the rest
            release.set()
            received += [item for item in items if isinstance(item, Event)]
    assert not fake.gate_timed_out
    assert [e.name for e in received] == ["session", "delta", "delta", "done"]


def test_heartbeats_while_the_service_is_slow(server, use, configure):
    configure(SSE_HEARTBEAT_SECONDS="0.05")
    use(FakeChatService([SessionEvent("s" * 16, "t" * 8), 0.5, Delta("late"), Done("answer", 0.9, "s" * 16, "t" * 8)]))
    with httpx.stream("POST", server + "/v1/chat", json={"message": "hi"}, timeout=10) as response:
        items = list(iter_sse(response))
    kinds = [item.name if isinstance(item, Event) else item.text for item in items]
    assert kinds[0] == "session" and kinds[-2:] == ["delta", "done"]
    pings = kinds[1:-2]
    assert len(pings) >= 3 and set(pings) == {"ping"}
    assert b": ping\n\n" in httpx.post(server + "/v1/chat", json={"message": "hi"}, timeout=10).content


def test_no_heartbeat_when_events_keep_coming(client, use):
    use(FakeChatService())
    assert not any(isinstance(item, Comment) for item in parse_all(chat(client).get_data()))


def test_a_client_that_goes_away_leaves_no_thread_behind(server, use, configure):
    configure(SSE_HEARTBEAT_SECONDS="0.05")
    gone = threading.Event()
    fake = use(FakeChatService([SessionEvent("s" * 16, "t" * 8), gone, *(Delta("x" * 100) for _ in range(500)),
                                Done("answer", 0.9, "s" * 16, "t" * 8)]))
    with httpx.Client(timeout=10) as http_client:
        with http_client.stream("POST", server + "/v1/chat", json={"message": "hi"}) as response:
            first = next(item for item in iter_sse(response) if isinstance(item, Event))
            assert first.name == "session"
    gone.set()  # the service produces far more than the queue holds, with nobody reading
    assert fake.finished.wait(10), "the turn did not run to its end"
    assert wait_until(lambda: not relay_threads(), 10), "a relay worker is still alive"


def test_a_relay_closed_early_never_blocks_its_worker():
    produced = threading.Event()

    def turn():
        yield from (Delta(str(i)) for i in range(1000))
        produced.set()

    frames = http.relay(turn, heartbeat_seconds=10)
    assert next(frames) == 'event: delta\ndata: {"text":"0"}\n\n'
    frames.close()
    assert produced.wait(5)
    assert wait_until(lambda: not relay_threads(), 5)


def relay_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "chat-turn"]


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


# --- the contract ----------------------------------------------------------------------------------------------------
def test_openapi_is_valid_and_lists_exactly_the_routes(app):
    yaml = pytest.importorskip("yaml")
    validator = pytest.importorskip("openapi_spec_validator")
    routes = inspect.unwrap(app.view_functions["run"]).__globals__["ROUTES"]  # functions/chat/main.py's map
    spec = yaml.safe_load((ROOT / "functions" / "chat" / "openapi.yaml").read_text())
    validator.validate(spec)
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item
                  if method != "parameters"}
    served = {(rule.rule.replace("<session_id>", "{session_id}"), method) for rule in routes.iter_rules()
              for method in rule.methods - {"HEAD"} if rule.rule != "/"}
    assert documented == served


@pytest.mark.parametrize(("text", "snippet"), [
    ("# Refunds\n\n- **Approved** refunds reach _your_ card [2]", "Refunds Approved refunds reach your card"),
    ("Set `window.__pwned` or snake_case_name; see | a | table |", "Set window.__pwned or snake_case_name; see a table"),
    ("| Code | What it means |\n|---|:---:|\n| BW-1001 | Link expired - request a new one |",
     "Code What it means BW-1001 Link expired - request a new one"),
])
def test_citation_snippets_drop_markdown_but_keep_underscores_inside_names(text, snippet):
    from shared.chat.service import _citation
    from shared.llm.types import Source
    from shared.retrieval import ChunkHit
    from shared.retrieval.hybrid import DocumentHit

    chunk = ChunkHit(chunk_id="d#0", document_id="d", score=1.0, text=text)
    document = DocumentHit(document_id="d", title="T", url="", source_uri="gs://kb/t.md", topic="", score=1.0,
                           vector_score=1.0, keyword_score=1.0, chunks=(chunk,), best_chunk_id="d#0")
    source = Source(number=1, title="T", text=text, url="", document_id="d")
    assert _citation(1, source, document).snippet == snippet


# --- hostile input: no 5xx, nothing unstorable gets past the edge -----------------------------------------------------
def test_json_nested_thousands_deep_is_a_400_not_a_500(client, use, configure):
    configure(CHAT_MAX_BODY_BYTES="16384")  # the default: 10,000 brackets fit
    fake = use(FakeChatService())
    for path in ("/v1/chat", "/v1/feedback", "/v1/handoff"):
        deep = b'{"message": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        response = client.post(path, data=deep, content_type="application/json")
        assert response.status_code == 400, path
        assert error_of(response)["message"] == "the body is nested too deeply"
    assert fake.requests == [] and fake.calls == []


UNSTORABLE = ["refund \ud800", "a\x00b", "\udfff", "x\udbff"]


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("path, body, field", [
    ("/v1/chat", {}, "message"),
    ("/v1/chat", {"message": "hi"}, "session_id"),
    ("/v1/chat", {"message": "hi"}, "user_token"),
    ("/v1/feedback", {"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up"}, "session_id"),
    ("/v1/feedback", {"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up"}, "turn_id"),
    ("/v1/feedback", {"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up"}, "reason"),
    ("/v1/feedback", {"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up"}, "user_token"),
    ("/v1/handoff", {"session_id": "s" * 16}, "session_id"),
    ("/v1/handoff", {"session_id": "s" * 16}, "reason"),
    ("/v1/handoff", {"session_id": "s" * 16}, "contact"),
    ("/v1/handoff", {"session_id": "s" * 16}, "user_token"),
])
def test_text_no_store_can_hold_is_a_400_naming_the_field(client, use, path, body, field, text):
    fake = use(FakeChatService())
    # json.dumps writes a lone surrogate as the escape "\ud800": valid JSON, as a browser or curl would send it.
    response = client.post(path, data=json.dumps({**body, field: text}), content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith(f"{field} contains a character that cannot be stored")
    assert fake.requests == [] and fake.calls == []


def test_unstorable_text_in_the_session_path_is_a_400(client, use):
    fake = use(FakeChatService())
    response = client.get("/v1/sessions/session%00-0123456789")
    assert response.status_code == 400 and error_of(response)["message"].startswith("session_id contains")
    # The bytes of a surrogate in a path are not UTF-8: they arrive as U+FFFD (storable, and no id of ours).
    client.get("/v1/sessions/x%ED%A0%80y")
    assert [c[2] for c in fake.calls] == ["x\ufffd\ufffd\ufffdy"]


def test_a_valid_surrogate_pair_is_ordinary_text(client, use):
    fake = use(FakeChatService())
    chat(client, {"message": "refund \U0001F600", "session_id": "session-0123456789"}).get_data()
    assert fake.requests[0].message == "refund \U0001F600"


# --- who is calling: X-Forwarded-For and TRUSTED_PROXY_HOPS -----------------------------------------------------------
@pytest.mark.parametrize("hops, forwarded, peer, expected", [
    ("1", None, "198.51.100.9", "198.51.100.9"),
    ("1", "203.0.113.7", "10.0.0.1", "203.0.113.7"),  # Cloud Functions' front end: the caller's address, appended
    ("1", "6.6.6.6, 203.0.113.7", "10.0.0.1", "203.0.113.7"),  # what the client wrote before it is not trusted
    ("2", "6.6.6.6, 203.0.113.7, 34.1.2.3", "10.0.0.1", "203.0.113.7"),  # behind a load balancer
    ("2", "203.0.113.7", "10.0.0.1", "203.0.113.7"),  # fewer entries than hops: all came from trusted proxies
    ("0", "6.6.6.6, 7.7.7.7", "198.51.100.9", "198.51.100.9"),  # no proxy (make dev): the header is ignored
    ("1", "6.6.6.6, not-an-address", "198.51.100.9", "198.51.100.9"),
    ("1", "203.0.113.7:4711", "10.0.0.1", "203.0.113.7"),
    ("1", "2001:db8:1:2:aaaa::1", "10.0.0.1", "2001:db8:1:2::/64"),  # one subscriber's /64 is one client
    ("1", "[2001:db8:1:2:bbbb::9]:443", "10.0.0.1", "2001:db8:1:2::/64"),
    ("1", "::ffff:203.0.113.7", "10.0.0.1", "203.0.113.7"),
])
def test_the_client_address_trusts_only_the_configured_proxy_hops(client, use, configure, hops, forwarded, peer,
                                                                  expected):
    configure(TRUSTED_PROXY_HOPS=hops)
    fake = use(FakeChatService())
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    chat(client, headers=headers, environ_base={"REMOTE_ADDR": peer}).get_data()
    assert fake.requests[0].client_id == expected


def test_a_rotating_forwarded_prefix_does_not_change_the_client(client, use):
    fake = use(FakeChatService())
    for n in range(20):
        chat(client, headers={"X-Forwarded-For": f"10.0.0.{n}, 203.0.113.7"}).get_data()
    assert {r.client_id for r in fake.requests} == {"203.0.113.7"}


def test_feedback_and_handoff_pass_the_client_address_and_user_token(client, use):
    fake = use(FakeChatService())
    client.post("/v1/feedback", json={"session_id": "s" * 16, "turn_id": "t" * 8, "rating": "up",
                                      "user_token": "u.1.f"}, headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
    client.post("/v1/handoff", json={"session_id": "s" * 16, "user_token": "u.1.h"},
                environ_base={"REMOTE_ADDR": "198.51.100.9"})
    client.get("/v1/sessions/" + "s" * 16, headers={"X-User-Token": "u.1.g"})
    client.get("/v1/sessions/" + "s" * 16)
    # The limits are the tenant's (single-tenant mode: RATE_LIMIT_FEEDBACK_PER_MINUTE, RATE_LIMIT_HANDOFF_PER_HOUR).
    assert fake.options == [{"user_token": "u.1.f", "client_id": "203.0.113.7", "limit": 30},
                            {"user_token": "u.1.h", "client_id": "198.51.100.9", "limit": 10},
                            {"user_token": "u.1.g"}, {"user_token": None}]


def test_json_mode_503s_carry_retry_after(client, use):
    use(FakeChatService([SessionEvent("s" * 16, "t" * 8), ErrorEvent("memory_unavailable", "try again")]))
    response = chat(client, headers={"Accept": "application/json"})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
