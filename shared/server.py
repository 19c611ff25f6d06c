"""The HTTP server layer every function runs behind: request bodies with a deadline, and JSON for protocol errors.

Each function is served as `python -m functions_framework` serves it, locally and on Cloud Functions (2nd gen, which
runs the same framework on Cloud Run): gunicorn, one worker process with THREADS threads (gthread worker; THREADS
defaults to 4 per CPU). gunicorn reads a request's line and headers, then hands the request to a thread, which
runs the function; the function reads the body from the socket as it arrives. Nothing bounds that read: a client
that sends headers and part of a body holds its thread for as long as it keeps the connection open, and THREADS
such clients hold them all (health checks time out).

`install()` fixes that for the app being loaded (`shared.web.http_endpoint` calls it for HTTP functions, ingest
calls it itself), without any change to how the framework is run:

- The body is read in full before the function runs, with a deadline of REQUEST_BODY_TIMEOUT_SECONDS from the
  moment the headers are in, and up to REQUEST_MAX_BODY_BYTES. A body that is not complete by then is answered
  408 `request_timeout`, a larger one 413 `payload_too_large`, a malformed chunked one 400; each closes the
  connection. The deadline is enforced by shutting the socket's read side when it passes, which wakes the blocked
  read at once however the client trickles its bytes (a per-read timeout would not).
- At most half of the threads (at least one) wait for bodies at once. A request with a body that finds them all
  busy is answered 503 `server_busy` with Retry-After straight away, so requests without a body (health checks,
  GETs) always find a thread, whatever the number of slow clients.
- gunicorn's own error pages (a bad request line, oversized or malformed headers, a bad Content-Length or
  Transfer-Encoding) are JSON `{"error": {"code", "message"}}` like every other error, with a fixed message that
  does not echo the request; so are the HTTP errors Flask and the framework raise (405 for a GET to an event
  function, the framework's 400 for a POST that is not a CloudEvent, which would otherwise echo its headers).

Not bounded here: the request line and headers. gunicorn waits 5 s for a connection's first byte (then parks it
without a thread), but once a byte has arrived it reads the headers in a worker thread with no deadline, and a WSGI
layer cannot see a request before its headers are complete. In production Google's front end receives the
headers before it forwards a request, so only bodies reach an instance slowly; locally everything listens on
loopback only.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from io import BytesIO
from typing import Any

from shared.errors import AppError, BadRequest, ConfigurationError, PayloadTooLarge, RequestTimeout, ServerBusy

log = logging.getLogger(__name__)

_INSTALLED = "shared.server"  # key in app.extensions: installed on that app
_READ_STEP = 64 * 1024
_DRAIN_LIMIT = 1024 * 1024  # bytes read (and dropped) before shutting the read side of a connection we close
BUSY_RETRY_AFTER_SECONDS = 2


def server_threads() -> int:
    """The worker threads functions_framework gives gunicorn: THREADS, else 4 per CPU (its own default)."""
    try:
        return max(1, int(os.environ.get("THREADS") or (os.cpu_count() or 1) * 4))
    except ValueError:
        return (os.cpu_count() or 1) * 4


def install(app: Any = None) -> None:
    """Guard the Flask app being loaded (by default the current one: functions_framework loads a function's module
    inside its app's context) and make gunicorn's protocol errors JSON. Idempotent; outside an app context (a unit
    test importing a module) only the gunicorn part applies."""
    _install_gunicorn_errors()
    if app is None:
        import flask

        if not flask.has_app_context():
            return
        app = flask.current_app._get_current_object()
    if app.extensions.get(_INSTALLED):
        return
    from werkzeug.exceptions import HTTPException

    app.wsgi_app = BodyGuard(app.wsgi_app)
    app.register_error_handler(HTTPException, http_error_as_json)
    app.extensions[_INSTALLED] = True


# --- request bodies --------------------------------------------------------------------------------------------------


class BodyGuard:
    """WSGI middleware: read the request body within a deadline and a size bound before the app sees it; the app
    then reads it from memory (`wsgi.input` is a BytesIO, CONTENT_LENGTH its size, any chunked coding removed).

    `settings` returns (timeout seconds, max body bytes); by default from `get_settings()`, read per request so a
    test that changes the environment (and resets the settings) is seen. `readers` bounds the requests that wait for
    their body at once (default: half of `server_threads()`, at least one).
    """

    def __init__(self, app: Callable, *, settings: Callable[[], tuple[float, int]] | None = None,
                 readers: int | None = None) -> None:
        self.app = app
        self._settings = settings or _body_settings
        self.readers = readers if readers is not None else max(1, server_threads() // 2)
        self._slots = threading.BoundedSemaphore(self.readers)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        declared = _declared_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked and not declared:
            return self.app(environ, start_response)  # no body: nothing to wait for
        sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
        try:
            timeout, max_bytes = self._settings()
        except ConfigurationError as exc:
            return _error(start_response, exc, sock)
        if declared is not None and declared > max_bytes:
            return _error(start_response, PayloadTooLarge(f"the request body is over {max_bytes} bytes"), sock)
        if not self._slots.acquire(blocking=False):
            log.warning("%d requests are already waiting for their bodies; answered 503", self.readers)
            return _error(start_response, ServerBusy(retry_after=BUSY_RETRY_AFTER_SECONDS), sock)
        try:
            outcome = _read_body(environ["wsgi.input"], sock, declared, max_bytes, timeout)
        finally:
            self._slots.release()
        if isinstance(outcome, AppError):
            return _error(start_response, outcome, sock)
        environ["wsgi.input"] = BytesIO(outcome)
        environ["CONTENT_LENGTH"] = str(len(outcome))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)


def _body_settings() -> tuple[float, int]:
    from shared.config import get_settings

    settings = get_settings()
    return settings.request_body_timeout_seconds, settings.request_max_body_bytes


def _declared_length(environ: dict) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        return None  # gunicorn refuses a bad Content-Length before we are called


def _read_body(stream: Any, sock: socket.socket | None, declared: int | None, max_bytes: int,
               timeout: float) -> bytes | AppError:
    """The whole body, or the error to answer. `declared` None: read to the end of a chunked body."""
    guard = _watchdog.watch(sock, time.monotonic() + timeout) if sock is not None else None
    parts: list[bytes] = []
    size = 0
    failure: Exception | None = None
    began = time.monotonic()
    try:
        while declared is None or size < declared:
            want = _READ_STEP if declared is None else min(_READ_STEP, declared - size)
            piece = stream.read(min(want, max_bytes + 1 - size))
            if not piece:
                break
            parts.append(piece)
            size += len(piece)
            if size > max_bytes:
                break
    except Exception as exc:  # a malformed chunked body, a reset, or the read side we shut at the deadline
        failure = exc
    finally:
        expired = guard.finish() if guard is not None else False
    if expired:
        log.warning("request body incomplete after %.1f s (%d bytes of %s); answered 408", time.monotonic() - began,
                    size, declared if declared is not None else "a chunked body")
        return RequestTimeout(f"the request body did not arrive within {timeout:g} s")
    if size > max_bytes:
        return PayloadTooLarge(f"the request body is over {max_bytes} bytes")
    if failure is not None:
        log.warning("request body unreadable: %s: %s", type(failure).__name__, failure)
        return BadRequest("the request body is malformed or was cut off")
    if declared is not None and size < declared:
        return BadRequest("the request body ended before its Content-Length")
    return b"".join(parts)


class _Deadline:
    """One body read under watch: `expire()` (watchdog thread) and `finish()` (reader) exclude each other, so the
    read side is never shut after the reader has finished."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.done = False
        self.expired = False

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            try:
                self._sock.shutdown(socket.SHUT_RD)  # a blocked recv() returns b"" at once
            except OSError:
                pass

    def finish(self) -> bool:
        """Stop watching; True if the deadline had passed (the read side is then shut)."""
        with self._lock:
            self.done = True
            return self.expired


class _Watchdog:
    """One daemon thread per process that expires deadlines in order (started on first use, so in the worker that
    gunicorn forks rather than in its master)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._pid: int | None = None

    def watch(self, sock: socket.socket, deadline: float) -> _Deadline:
        entry = _Deadline(sock)
        with self._cond:
            if self._pid != os.getpid():  # first use in this process (or a fork inherited our state)
                self._heap.clear()
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="request-body-deadlines", daemon=True).start()
            heapq.heappush(self._heap, (deadline, next(self._order), entry))
            self._cond.notify()
        return entry

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)[2].expire()


_watchdog = _Watchdog()


def _error(start_response: Callable, exc: AppError, sock: socket.socket | None) -> list[bytes]:
    """Answer `exc` as JSON and close the connection. Whatever the client still sends is not read: the read side is
    shut, so closing does not wait for a client that never finishes (gunicorn would linger 2 s on it)."""
    body = _json_error(exc.code, exc.public_message)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
    if exc.retryable:
        headers.append(("Retry-After", str(getattr(exc, "retry_after", 10))))
    if sock is not None:
        stop_reading(sock)
    # gunicorn drops an application's Connection header (hop-by-hop) and would announce keep-alive; its response
    # object (whose method start_response is) closes when told to.
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()
    start_response(f"{exc.status} {HTTPStatus(exc.status).phrase}", headers)
    return [body]


def _json_error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode() + b"\n"


def stop_reading(sock: socket.socket) -> None:
    """Drop what the client has sent so far (without waiting for more), then shut the read side."""
    try:
        for _ in range(_DRAIN_LIMIT // _READ_STEP):
            if not sock.recv(_READ_STEP, socket.MSG_DONTWAIT):
                break
    except (BlockingIOError, InterruptedError, OSError, ValueError):
        pass
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


# --- protocol errors -------------------------------------------------------------------------------------------------

# gunicorn's message starts with what went wrong and goes on to quote the request; keep the first part only.
_GUNICORN_KINDS = (
    ("Invalid Request Line", "invalid request line"),
    ("Invalid Method", "invalid request method"),
    ("Invalid HTTP Version", "unsupported HTTP version"),
    ("Invalid HTTP header name", "invalid header name"),
    ("Invalid HTTP Header", "invalid header"),
    ("Invalid chunk", "invalid chunked body"),
    ("Error parsing headers", "request header fields too large"),
    ("Unable to comply with expectation", "unsupported Expect header"),
)
_FIXED_MESSAGES = {
    403: ("forbidden", "request forbidden"),
    414: ("uri_too_long", "request line too long"),
    417: ("expectation_failed", "unsupported Expect header"),
    431: ("request_header_fields_too_large", "request header fields too large"),
    500: ("app_error", "internal error"),
    501: ("not_implemented", "unsupported transfer coding"),
}


def protocol_error(status: int, reason: str, gunicorn_message: str) -> tuple[str, str]:
    """(code, message) for an error gunicorn answers itself, never quoting the request."""
    if status in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[status]
    message = next((text for prefix, text in _GUNICORN_KINDS if gunicorn_message.startswith(prefix)),
                   "malformed HTTP request")
    return _code_of(reason), message


def _code_of(reason: str) -> str:
    return "_".join(reason.lower().replace("-", " ").split()) or "error"


def _write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for gunicorn.util.write_error (same arguments): the same status, a JSON body."""
    import gunicorn.util

    code, message = protocol_error(status_int, reason, mesg)
    body = _json_error(code, message)
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)
    stop_reading(sock)  # the connection is closed next: do not wait on a client that goes on sending


_gunicorn_lock = threading.Lock()


def _install_gunicorn_errors() -> None:
    """Replace gunicorn's HTML error writer, once per process (inherited by the worker it forks).

    gunicorn calls `util.write_error(sock, status_int, reason, mesg)` for every request it refuses before the app
    runs; a version without that function is left alone (and says so), rather than patched blindly.
    """
    try:
        import gunicorn.util
    except ImportError:  # not served by gunicorn (the werkzeug server of `--debug`, tests)
        return
    with _gunicorn_lock:
        current = getattr(gunicorn.util, "write_error", None)
        if current is None or not callable(getattr(gunicorn.util, "write_nonblock", None)):
            log.warning("gunicorn %s has no util.write_error/write_nonblock: its error pages stay HTML",
                        getattr(__import__("gunicorn"), "__version__", "?"))
            return
        if current is not _write_json_error:
            gunicorn.util.write_error = _write_json_error


# --- HTTP errors raised in Flask --------------------------------------------------------------------------------------


def http_error_as_json(exc: Any):
    """A werkzeug HTTPException (raised by Flask or the framework) as JSON with a fixed message; its headers (e.g. a
    405's Allow) are kept. Handlers registered for a status code (chat's 404, the framework's 500) still win."""
    import flask

    name = exc.name or HTTPStatus(exc.code).phrase
    response = flask.Response(_json_error(_code_of(name), name.lower()), status=exc.code,
                              content_type="application/json")
    for header, value in exc.get_headers():
        if header.lower() != "content-type":
            response.headers[header] = value
    return response


__all__ = ["BodyGuard", "install", "protocol_error", "server_threads", "stop_reading", "http_error_as_json"]
