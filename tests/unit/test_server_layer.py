"""shared/server.py at the WSGI level: what the app is handed, what is refused before it runs, and the deadline on a
real socket pair. Over real HTTP against gunicorn: tests/integration/test_server.py."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import flask
import pytest
from werkzeug.test import Client

from shared import server
from shared.config import Settings
from shared.errors import ConfigurationError


def echo_app(calls: list):
    """A WSGI app that answers what it was handed: the body it reads and the CONTENT_LENGTH it sees."""

    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        calls.append(body)
        payload = json.dumps({"body": body.decode(), "length": environ.get("CONTENT_LENGTH"),
                              "te": environ.get("HTTP_TRANSFER_ENCODING")}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    return app


def guarded(calls: list, *, timeout: float = 5.0, max_bytes: int = 1000, readers: int = 2) -> server.BodyGuard:
    return server.BodyGuard(echo_app(calls), settings=lambda: (timeout, max_bytes), readers=readers)


def test_the_app_gets_the_whole_body_from_memory_with_its_length():
    calls = []
    response = Client(guarded(calls)).post("/", data=b'{"a": 1}', content_type="application/json")
    assert response.status_code == 200
    assert response.json == {"body": '{"a": 1}', "length": "8", "te": None}


def test_a_chunked_body_reaches_the_app_as_a_plain_one():
    calls = []
    response = Client(guarded(calls)).post("/", input_stream=io.BytesIO(b"hello chunks"),
                                           headers={"Transfer-Encoding": "chunked"},
                                           environ_overrides={"wsgi.input_terminated": True})
    assert response.json == {"body": "hello chunks", "length": "12", "te": None}


def test_requests_without_a_body_pass_straight_through():
    calls = []
    response = Client(guarded(calls, readers=1)).get("/")
    assert response.status_code == 200 and calls == [b""]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_413_and_the_app_never_runs(chunked):
    calls = []
    kwargs = ({"input_stream": io.BytesIO(b"x" * 1001), "headers": {"Transfer-Encoding": "chunked"},
               "environ_overrides": {"wsgi.input_terminated": True}} if chunked else {"data": b"x" * 1001})
    response = Client(guarded(calls)).post("/", **kwargs)
    assert response.status_code == 413 and calls == []
    assert response.json == {"error": {"code": "payload_too_large", "message": "the request body is over 1000 bytes"}}
    assert response.headers["Connection"] == "close"


def test_a_body_shorter_than_its_content_length_is_400():
    calls = []
    response = Client(guarded(calls)).post("/", input_stream=io.BytesIO(b"abc"),
                                           environ_overrides={"CONTENT_LENGTH": "10"})
    assert response.status_code == 400 and calls == []
    assert response.json["error"]["message"] == "the request body ended before its Content-Length"


class BlockingStream:
    """A body that does not arrive until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reading = threading.Event()

    def read(self, size: int = -1) -> bytes:
        self.reading.set()
        self.release.wait(10)
        return b""


def test_when_every_body_slot_is_taken_a_request_with_a_body_is_503_at_once_and_others_are_served():
    calls = []
    app = guarded(calls, readers=1)
    slow = BlockingStream()
    first = threading.Thread(target=lambda: Client(app).post(
        "/", environ_overrides={"wsgi.input": slow, "CONTENT_LENGTH": "5"}))
    first.start()
    try:
        assert slow.reading.wait(5)
        began = time.monotonic()
        busy = Client(app).post("/", data=b"hello")
        assert time.monotonic() - began < 1
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
        assert busy.json["error"]["code"] == "server_busy"
        assert Client(app).get("/").status_code == 200  # no body: needs no slot
    finally:
        slow.release.set()
        first.join(5)
    assert Client(app).post("/", data=b"again").status_code == 200  # the slot is free again


def test_the_deadline_shuts_a_stalled_socket_and_answers_408():
    calls = []
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"par")  # 3 of the 10 bytes announced, then nothing
        environ_overrides = {"wsgi.input": ours.makefile("rb"), "werkzeug.socket": ours}
        began = time.monotonic()
        environ_overrides["CONTENT_LENGTH"] = "10"
        response = Client(guarded(calls, timeout=0.3)).post("/", environ_overrides=environ_overrides)
        assert 0.25 < time.monotonic() - began < 3
        assert response.status_code == 408 and calls == []
        assert response.json == {"error": {"code": "request_timeout",
                                           "message": "the request body did not arrive within 0.3 s"}}
        assert ours.recv(10) == b""  # our read side is shut: closing will not wait for the client
    finally:
        ours.close()
        theirs.close()


def test_a_body_that_arrives_in_time_is_not_cut_by_the_deadline():
    calls = []
    ours, theirs = socket.socketpair()

    def steady() -> None:
        for piece in (b"01234", b"56789"):
            time.sleep(0.1)
            theirs.sendall(piece)

    sender = threading.Thread(target=steady)
    sender.start()
    try:
        response = Client(guarded(calls, timeout=2)).post(
            "/", environ_overrides={"wsgi.input": ours.makefile("rb"), "werkzeug.socket": ours, "CONTENT_LENGTH": "10"})
        assert response.json["body"] == "0123456789"
        time.sleep(2.2)  # the deadline passes after the body was read: the connection must stay usable
        theirs.sendall(b"next")
        assert ours.recv(4) == b"next"
    finally:
        sender.join(5)
        ours.close()
        theirs.close()


def test_a_misconfigured_server_answers_json_500():
    def broken():
        raise ConfigurationError("REQUEST_BODY_TIMEOUT_SECONDS must be above 0 and at most 3600")

    app = server.BodyGuard(echo_app([]), settings=broken, readers=1)
    response = Client(app).post("/", data=b"x")
    assert response.status_code == 500
    assert response.json == {"error": {"code": "configuration_error", "message": "service misconfigured"}}


def test_the_default_deadline_admits_a_full_chat_body_at_2_kb_per_second():
    defaults = Settings()
    assert defaults.request_body_timeout_seconds * 2000 >= defaults.chat_max_body_bytes
    assert defaults.request_max_body_bytes >= defaults.chat_max_body_bytes


@pytest.mark.parametrize("env, message", [
    ({"REQUEST_BODY_TIMEOUT_SECONDS": "0"}, "REQUEST_BODY_TIMEOUT_SECONDS"),
    ({"REQUEST_MAX_BODY_BYTES": "1000"}, "REQUEST_MAX_BODY_BYTES must be at least CHAT_MAX_BODY_BYTES"),
])
def test_server_settings_are_validated(env, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", **env}).validate()


@pytest.mark.parametrize("status, reason, mesg, expected", [
    (400, "Bad Request", "Invalid Request Line 'Invalid HTTP request line: 'GET /secret''",
     ("bad_request", "invalid request line")),
    (400, "Bad Request", "Invalid HTTP Header: 'X-Secret'", ("bad_request", "invalid header")),
    (400, "Bad Request", "something new 'X-Secret'", ("bad_request", "malformed HTTP request")),
    (431, "Request Header Fields Too Large", "Error parsing headers: 'limit request headers fields size'",
     ("request_header_fields_too_large", "request header fields too large")),
    (501, "Not Implemented", "Unsupported transfer coding: 'secret'",
     ("not_implemented", "unsupported transfer coding")),
    (500, "Internal Server Error", "", ("app_error", "internal error")),
])
def test_gunicorn_errors_keep_their_status_and_never_quote_the_request(status, reason, mesg, expected):
    assert server.protocol_error(status, reason, mesg) == expected


def test_install_guards_an_app_once_and_makes_its_http_errors_json():
    app = flask.Flask("probe")
    app.add_url_rule("/only-post", "p", lambda: "ok", methods=["POST"])
    with app.app_context():
        server.install()
        wrapped = app.wsgi_app
        server.install()
    assert isinstance(wrapped, server.BodyGuard) and app.wsgi_app is wrapped
    response = app.test_client().get("/only-post")
    assert response.status_code == 405
    assert sorted(response.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]  # werkzeug's order is a set's
    assert response.json == {"error": {"code": "method_not_allowed", "message": "method not allowed"}}


def test_install_replaces_gunicorns_html_error_writer():
    import gunicorn.util

    server.install()
    a, b = socket.socketpair()
    try:
        gunicorn.util.write_error(a, 400, "Bad Request", "Invalid Request Line 'GET /secret'")
        head, _, body = b.recv(4096).partition(b"\r\n\r\n")
    finally:
        a.close()
        b.close()
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": {"code": "bad_request", "message": "invalid request line"}}
