"""The HTTP server layer (shared/server.py) as clients meet it: each function run by `python -m functions_framework`
(gunicorn, THREADS threads) in its own process, spoken to over raw sockets, so slow and malformed requests are
exactly what the server receives.

Timing: bounds are generous (a few seconds above the configured deadline); what must not happen takes far longer
on the code without the server layer (a stalled body is held for ever, a health check waits for a thread that
never comes, an error answer to a client that does not close stalls the accept loop 2 s per connection).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.stack.processes import LOCALHOST, ManagedProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
THREADS = 4
BODY_TIMEOUT = 3.0  # REQUEST_BODY_TIMEOUT_SECONDS of the processes below
READERS = THREADS // 2  # at most half of the threads wait for bodies


class FunctionProcess:
    """One function under functions-framework on a free loopback port."""

    def __init__(self, target: str, log_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://{LOCALHOST}:{self.port}"
        argv = [sys.executable, "-m", "functions_framework", "--target", target,
                "--source", str(ROOT / "functions" / target / "main.py"), "--host", LOCALHOST, "--port", str(self.port)]
        settings = {"PYTHONPATH": str(ROOT), "THREADS": str(THREADS), "REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
                    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # never connected to by these requests
                    "LOG_LEVEL": "WARNING", **env}
        self.process = ManagedProcess(f"{target}-{self.port}", argv, log_dir=log_dir,
                                      env={**os.environ, **settings}, cwd=ROOT, stop_timeout=3)

    def start(self) -> FunctionProcess:
        self.process.start()
        wait_until(self._answers, 60, f"{self.process.name} (log: {self.process.log_path})")
        return self

    def _answers(self) -> bool:
        self.process.check_alive()
        try:
            urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
        except urllib.error.HTTPError:
            pass
        except OSError:
            return False
        return True

    def connect(self) -> socket.socket:
        return socket.create_connection((LOCALHOST, self.port), timeout=10)


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    server = FunctionProcess("chat", tmp_path_factory.mktemp("server-logs")).start()
    yield server
    server.process.stop()


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    server = FunctionProcess("ingest", tmp_path_factory.mktemp("server-logs")).start()
    yield server
    server.process.stop()


def read_response(sock: socket.socket, within: float) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, closed): everything the server sends in `within` seconds; `closed` when it also
    closed the connection."""
    deadline = time.monotonic() + within
    data = b""
    closed = False
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not piece:
            closed = True
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1."):
        raise AssertionError(f"no HTTP response within {within} s: {data[:200]!r}")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body, closed


def healthz_seconds(server: FunctionProcess, timeout: float = 10.0) -> float:
    began = time.monotonic()
    with urllib.request.urlopen(server.url + "/healthz", timeout=timeout) as response:
        assert json.load(response) == {"status": "ok"}
    return time.monotonic() - began


def stalled_post(server: FunctionProcess, *, chunked: bool = False) -> socket.socket:
    """A chat POST whose headers and first body bytes arrive, and then nothing."""
    sock = server.connect()
    framing = b"Transfer-Encoding: chunked\r\n\r\n40\r\n" if chunked else b"Content-Length: 1000\r\n\r\n"
    sock.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing
                 + b'{"message": "hel')
    return sock


def error_of(body: bytes) -> dict:
    return json.loads(body)["error"]


# --- slow request bodies -----------------------------------------------------------------------------------------


def test_stalled_bodies_leave_threads_for_health_checks_and_are_closed_by_the_deadline(chat):
    """Twice as many stalled bodies as threads: /healthz still answers while they are connected, each stalled
    connection gets a JSON 408 or 503 and is closed, none outlives the deadline by more than a few seconds."""
    began = time.monotonic()
    stalled = [stalled_post(chat) for _ in range(2 * THREADS)]
    try:
        time.sleep(0.5)  # every request reached the server
        assert healthz_seconds(chat, timeout=BODY_TIMEOUT * 3) < BODY_TIMEOUT
        assert time.monotonic() - began < BODY_TIMEOUT  # answered while the slow clients were still connected
        outcomes = []
        for sock in stalled:
            status, headers, body, closed = read_response(sock, within=BODY_TIMEOUT + 5 - (time.monotonic() - began))
            assert closed, "the server must close a connection whose body it gave up on"
            assert headers["content-type"] == "application/json" and headers["connection"] == "close"
            outcomes.append((status, error_of(body)["code"], headers.get("retry-after")))
        assert time.monotonic() - began < BODY_TIMEOUT + 5
    finally:
        for sock in stalled:
            sock.close()
    # The first READERS wait for their bodies until the deadline; the others find every body slot taken.
    assert sorted(outcomes) == sorted([(408, "request_timeout", None)] * READERS
                                      + [(503, "server_busy", "2")] * (2 * THREADS - READERS))
    assert healthz_seconds(chat) < 2


def test_a_trickled_body_is_cut_at_the_deadline_not_kept_alive_by_each_byte(chat):
    sock = chat.connect()
    sock.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
    stop = threading.Event()

    def trickle() -> None:  # one byte every 0.2 s: never idle long, and 4000 bytes would take 13 minutes
        while not stop.wait(0.2):
            try:
                sock.sendall(b" ")
            except OSError:
                return

    sender = threading.Thread(target=trickle, daemon=True)
    began = time.monotonic()
    sender.start()
    try:
        status, _, body, closed = read_response(sock, within=BODY_TIMEOUT + 5)
    finally:
        stop.set()
        sender.join(2)
        sock.close()
    assert (status, error_of(body)["code"]) == (408, "request_timeout")
    assert closed and time.monotonic() - began < BODY_TIMEOUT + 5


def test_a_stalled_chunked_body_is_answered_408(chat):
    sock = stalled_post(chat, chunked=True)
    try:
        status, _, body, closed = read_response(sock, within=BODY_TIMEOUT + 5)
    finally:
        sock.close()
    assert (status, error_of(body)["code"], closed) == (408, "request_timeout", True)


def test_a_slow_but_steady_16_kib_chat_body_is_read_in_full(chat):
    """16 KiB in 1 KiB pieces over about 1.6 s (the deadline is 3 s here, 10 s by default): chat sees the whole
    body, and its own validation answers (the message is over CHAT_MAX_MESSAGE_CHARS)."""
    body = json.dumps({"message": "x" * (16 * 1024 - 20)}).encode()
    assert len(body) <= 16 * 1024
    sock = chat.connect()
    try:
        sock.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 1024):
            sock.sendall(body[i:i + 1024])
            time.sleep(0.1)
        status, headers, answer, _ = read_response(sock, within=10)
    finally:
        sock.close()
    assert status == 400, answer
    assert error_of(answer) == {"code": "bad_request", "message": "message is longer than 4000 characters"}
    assert headers["connection"] == "keep-alive"  # a served request keeps its connection


# --- malformed HTTP ----------------------------------------------------------------------------------------------

ECHO = b"zq9echo"  # must never come back in an answer

MALFORMED = {
    "bad request line": (b"GARBAGE-" + ECHO + b"\r\n\r\n", 400, "bad_request", "invalid request line"),
    "bad method": (b"G<T /" + ECHO + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request", "invalid request method"),
    "bad version": (b"GET /" + ECHO + b" HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request", "unsupported HTTP version"),
    "oversized header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + ECHO + b"a" * 20000 + b"\r\n\r\n", 431,
                         "request_header_fields_too_large", "request header fields too large"),
    "too many headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
                         + b"\r\n", 431, "request_header_fields_too_large", "request header fields too large"),
    "bad header name": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad " + ECHO + b": 1\r\n\r\n", 400, "bad_request",
                        "invalid header name"),
    "bad content-length": (b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: " + ECHO + b"\r\n\r\n", 400,
                           "bad_request", "invalid header"),
    "unknown transfer-coding": (b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + ECHO + b"\r\n\r\n", 501,
                                "not_implemented", "unsupported transfer coding"),
    "transfer-coding without chunked": (b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
                                        "bad_request", "invalid header"),
    "bare LF": (b"GET /healthz HTTP/1.1\nHost: " + ECHO + b"\n\n", 400, "bad_request", "invalid request line"),
    "bad chunk size": (b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + ECHO + b"\r\n", 400, "bad_request",
                       "the request body is malformed or was cut off"),
}


@pytest.mark.parametrize("raw, status, code, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_http_gets_a_json_error_that_does_not_echo_the_request(chat, raw, status, code, message):
    sock = chat.connect()
    try:
        sock.sendall(raw)
        answer_status, headers, body, closed = read_response(sock, within=10)
    finally:
        sock.close()
    assert (answer_status, headers.get("content-type")) == (status, "application/json"), body[:300]
    assert error_of(body) == {"code": code, "message": message}
    assert ECHO not in body and closed


def test_clients_that_keep_refused_connections_open_do_not_stall_the_server(chat):
    """gunicorn lingers up to 2 s for the client to close before it closes a refused connection, on the thread that
    accepts connections: ten such clients would delay everyone else by about 20 s."""
    held = []
    try:
        for _ in range(10):
            sock = chat.connect()
            sock.sendall(b"GARBAGE\r\n\r\n")
            held.append(sock)
        big = chat.connect()  # and a body over REQUEST_MAX_BODY_BYTES, refused without reading it
        big.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 99999999\r\n\r\n{")
        held.append(big)
        time.sleep(0.3)
        assert healthz_seconds(chat, timeout=30) < 3
    finally:
        for sock in held:
            sock.close()


def test_the_frameworks_own_errors_are_json_without_the_request(ingest):
    """An event function: a GET is 405 (with Allow), a POST that is not a CloudEvent is 400 — the framework's
    HTML page for the latter quotes every header and the body back."""
    request = urllib.request.Request(ingest.url + "/", method="GET")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405 and refused.value.headers["Allow"] == "POST"
    assert refused.value.headers["Content-Type"] == "application/json"
    assert error_of(refused.value.read()) == {"code": "method_not_allowed", "message": "method not allowed"}

    request = urllib.request.Request(ingest.url + "/", data=b'{"not": "an event"}', method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer " + ECHO.decode()})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    body = refused.value.read()
    assert refused.value.code == 400 and refused.value.headers["Content-Type"] == "application/json"
    assert error_of(body) == {"code": "bad_request", "message": "bad request"}
    assert ECHO not in body


def test_a_stalled_event_body_is_answered_408_by_an_event_function_too(ingest):
    sock = ingest.connect()
    try:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nce-id: 1\r\n"
                     b"Content-Length: 500\r\n\r\n{")
        status, _, body, closed = read_response(sock, within=BODY_TIMEOUT + 5)
    finally:
        sock.close()
    assert (status, error_of(body)["code"], closed) == (408, "request_timeout", True)
