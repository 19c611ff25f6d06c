"""The chat API's HTTP surface, kept out of `functions/chat/main.py` so the entry point stays thin:

    routing      a werkzeug `Map` match; unknown path -> 404, known path and wrong method -> 405 with `Allow`
    tenants      the site key (`site_key` in a body, or the query of a GET) names the tenant through the registry
                 (shared/tenants.py); a request may not name a tenant itself
    CORS         the caller's `Origin` must be one of the tenant's allowed origins (single-tenant mode:
                 CHAT_ALLOWED_ORIGINS); no `Origin` (curl, servers) is allowed; every response to an allowed origin
                 carries the CORS headers, errors included
    bodies       JSON objects only, at most CHAT_MAX_BODY_BYTES even without a Content-Length (chunked uploads),
                 nested no deeper than the parser allows (400, never a RecursionError); each field validated into
                 a 400 that names it, including text no store can hold (NUL, a lone UTF-16 surrogate)
    callers      the client address of the rate limits from X-Forwarded-For, trusting TRUSTED_PROXY_HOPS entries
                 from the right; a signed user's token (body `user_token`, or the X-User-Token header of a GET)
    answers      `Accept: application/json` folds a turn's events into one ChatResponse (503 when it failed);
                 otherwise Server-Sent Events, relayed from a worker thread with `: ping` heartbeats in between

Errors are AppErrors, so `shared.web.http_endpoint` maps them to `{"error": {"code", "message"}}` responses.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import logging
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import flask
from werkzeug.exceptions import MethodNotAllowed as _WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as _WerkzeugNotFound
from werkzeug.routing import Map, RequestRedirect

from shared.chat.events import ErrorEvent, Event, collect
from shared.chat.service import ChatRequest, check_storable
from shared.config import Settings
from shared.errors import AppError, BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from shared.tenants import Tenant

log = logging.getLogger(__name__)

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
PING = ": ping\n\n"
INTERNAL_MESSAGE = "something went wrong while answering; please try again"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Accept, X-User-Token",
    "Access-Control-Max-Age": "600",
}
DEFAULT_HANDOFF_REASON = "customer asked for a human"
USER_TOKEN_HEADER = "X-User-Token"  # a header, not a query parameter: URLs end up in logs and browser history
RETRY_AFTER_SECONDS = 10  # what a 503 without a better estimate tells the caller (as shared.web does)

_TOPIC = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_RATINGS = ("up", "down")
_QUEUE_SIZE = 64  # events buffered between the turn's worker thread and the response
_PUT_POLL_SECONDS = 0.1  # how often a worker facing a full queue checks whether the client is still there


class OriginNotAllowed(AppError):
    """A browser on an origin that is not in CHAT_ALLOWED_ORIGINS."""

    status = 403
    public_message = "this origin may not call the chat API"

    def __init__(self, origin: str):
        # The origin goes to the log only: the caller knows it already.
        super().__init__(f"origin {origin[:200]!r} is not allowed for this site",
                         public_message=self.public_message)


class MethodNotAllowed(AppError):
    """A known path called with a method it does not answer; `allowed` goes into the `Allow` header."""

    status = 405
    public_message = "method not allowed"

    def __init__(self, allowed: Iterable[str]):
        self.allowed = sorted(allowed)
        super().__init__(f"method not allowed; use {', '.join(self.allowed)}")


# --- routing and CORS ------------------------------------------------------------------------------------------------
def route(routes: Map, request: flask.Request) -> tuple[str, dict[str, Any]]:
    """The endpoint name and path arguments of the request; NotFound or MethodNotAllowed (with `Allow` set)."""
    adapter = routes.bind("localhost", url_scheme=request.scheme)
    try:
        return adapter.match(request.path, method=request.method)
    except _WerkzeugMethodNotAllowed as exc:
        allowed = sorted(exc.valid_methods or ())
        flask.after_this_request(_set_header("Allow", ", ".join(allowed)))
        raise MethodNotAllowed(allowed) from None
    except (_WerkzeugNotFound, RequestRedirect):
        raise NotFound("no such route") from None  # never echo the path: it is the caller's, and may be a payload


def allowed_methods(routes: Map, request: flask.Request) -> list[str]:
    """The methods the request's (matched) path answers, for the `Allow` header of an OPTIONS response."""
    return sorted(routes.bind("localhost").allowed_methods(request.path))


def apply_cors(request: flask.Request, fixed: Tenant | None) -> None:
    """Have the response carry the CORS headers for the request's origin, whatever it turns out to be (a 429 or 400
    must be readable by the widget). With a `fixed` tenant (single-tenant mode) the origin is checked here:
    OriginNotAllowed (403) for a browser on any other origin. With `fixed` None (tenant registry) the origin is
    checked by `admit` once the site key has named the tenant; until then errors stay readable (they carry nothing
    a tenant owns)."""
    origin = request.headers.get("Origin")
    flask.g.cors_origin = origin
    flask.after_this_request(_add_cors_headers)
    if fixed is not None and origin is not None and not fixed.allows_origin(origin):
        flask.g.cors_origin = None
        raise OriginNotAllowed(origin)


def admit(request: flask.Request, registry, site_key: Any) -> Tenant:
    """The tenant the request's site key names, once the caller's Origin is one of that tenant's (requests without
    an Origin, from servers and curl, are not restricted); UnknownSiteKey (403) or OriginNotAllowed (403)."""
    if site_key is not None and not isinstance(site_key, str):
        raise BadRequest("site_key must be a string")
    tenant = registry.resolve(site_key or None)
    origin = request.headers.get("Origin")
    if origin is not None and not tenant.allows_origin(origin):
        flask.g.cors_origin = None
        raise OriginNotAllowed(origin)
    return tenant


def refuse_tenant_field(container: dict[str, Any] | Any) -> None:
    """A request may not pick its tenant: the site key does (a `tenant` field let any caller read any tenant)."""
    if container.get("tenant") is not None:
        raise BadRequest("tenant is not a request field: the widget's site key (site_key) selects the tenant")


def no_content() -> flask.Response:
    """An empty 204 (without the default text/html Content-Type of an empty Flask response)."""
    response = flask.Response(status=204)
    del response.headers["Content-Type"]
    return response


def preflight_response(allowed: list[str]) -> flask.Response:
    """204 to an OPTIONS request (a CORS preflight when it comes with an `Origin`)."""
    response = no_content()
    response.headers.update(PREFLIGHT_HEADERS)
    response.headers["Allow"] = ", ".join(allowed)
    return response


def _add_cors_headers(response: flask.Response) -> flask.Response:
    origin = flask.g.get("cors_origin")
    response.vary.add("Origin")  # the answer depends on the Origin header: shared caches must key on it
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def _set_header(name: str, value: str) -> Callable[[flask.Response], flask.Response]:
    def set_header(response: flask.Response) -> flask.Response:
        response.headers[name] = value
        return response

    return set_header


# --- request bodies and fields ---------------------------------------------------------------------------------------
def read_json(request: flask.Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object: 413 over `max_bytes` (read at most one byte more, so a chunked upload without a
    Content-Length cannot make us buffer it), 415 when it is not declared JSON, 400 when it is not a JSON object."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the request body is over {max_bytes} bytes")
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON object with Content-Type: application/json")
    raw = _read_at_most(request.stream, max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the request body is over {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8/16/32
        raise BadRequest("the body is not valid JSON") from None
    except RecursionError:  # [[[[… thousands deep: the parser gives up before we would
        raise BadRequest("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _read_at_most(stream: IO[bytes], limit: int) -> bytes:
    # A raw stream (the dev server's de-chunking input) may return fewer bytes than asked for before its end.
    parts: list[bytes] = []
    size = 0
    while size < limit:
        part = stream.read(limit - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def client_id(request: flask.Request, trusted_hops: int) -> str:
    """Who is calling, for the per-client rate limits.

    Each trusted proxy in front of chat appends the address it saw to `X-Forwarded-For`; everything to the left of
    those entries is whatever the client sent. So the client is the `trusted_hops`-th entry from the right: 1 behind
    Cloud Functions' own front end (it appends the caller's address), 2 behind an external Application Load Balancer
    (it appends the client and then its own forwarding-rule address). With fewer entries than that, the leftmost one
    (all of them came from trusted proxies); with `trusted_hops` 0, or no usable entry, the connection's peer address
    (what a local server without a proxy must use: there, the header is the caller's to pick).

    An IPv6 address counts as its /64 network: one subscriber usually holds a whole /64 and could rotate within it."""
    if trusted_hops > 0:
        entries = [e.strip() for e in ",".join(request.headers.getlist("X-Forwarded-For")).split(",")]
        entries = [e for e in entries if e]
        if entries:
            address = _address(entries[-trusted_hops] if len(entries) >= trusted_hops else entries[0])
            if address:
                return address
    return _address(request.remote_addr or "") or ""


def _address(value: str) -> str | None:
    """The normalised IP address (IPv6: its /64) of an X-Forwarded-For entry or peer address; None if it is none."""
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def user_token_header(request: flask.Request) -> str | None:
    """The signed user token of a GET request (the X-User-Token header), validated like a body field."""
    return _optional_string({"user_token": request.headers.get(USER_TOKEN_HEADER) or None}, "user_token", 256)


def parse_chat_request(body: dict[str, Any], settings: Settings, client: str, tenant: Tenant, *,
                       streamed: bool = False) -> ChatRequest:
    """A validated ChatRequest from a `POST /v1/chat` body; BadRequest naming the first bad field. `streamed`: the
    answer goes out as Server-Sent Events (recorded for the turn's log event)."""
    refuse_tenant_field(body)
    message = body.get("message")
    if message is None:
        raise BadRequest("'message' is required")
    if not isinstance(message, str):
        raise BadRequest("message must be a string")
    check_storable("message", message)
    message = message.strip()
    if not message:
        raise BadRequest("message must not be blank")
    if len(message) > settings.chat_max_message_chars:
        raise BadRequest(f"message is longer than {settings.chat_max_message_chars} characters")
    topic = _optional_string(body, "topic", 64)
    if topic is not None and not _TOPIC.fullmatch(topic):
        raise BadRequest("topic must be 1-64 of a-z, 0-9, '_' or '-', starting with a letter or digit")
    return ChatRequest(
        tenant=tenant.id,
        message=message,
        session_id=_optional_string(body, "session_id", 128),
        user_token=_optional_string(body, "user_token", 256),
        topic=topic,
        client_id=client,
        limits={"client": tenant.limit("client_per_minute", settings.rate_limit_client_per_minute),
                "session": tenant.limit("session_per_minute", settings.rate_limit_session_per_minute)},
        streamed=streamed,
    )


@dataclass(frozen=True)
class FeedbackRequest:
    tenant: str
    session_id: str
    turn_id: str
    rating: str  # up | down
    reason: str | None
    user_token: str | None = None


def parse_feedback(body: dict[str, Any], tenant: Tenant) -> FeedbackRequest:
    """A validated `POST /v1/feedback` body; BadRequest naming the first bad field."""
    refuse_tenant_field(body)
    rating = body.get("rating")
    if rating not in _RATINGS:
        raise BadRequest("rating must be 'up' or 'down'")
    return FeedbackRequest(
        tenant=tenant.id,
        session_id=_required_string(body, "session_id", 128),
        turn_id=_required_string(body, "turn_id", 128),
        rating=rating,
        reason=_optional_text(body, "reason", 1000),
        user_token=_optional_string(body, "user_token", 256),
    )


@dataclass(frozen=True)
class HandoffRequest:
    tenant: str
    session_id: str
    reason: str
    contact: str | None
    user_token: str | None = None


def parse_handoff(body: dict[str, Any], tenant: Tenant) -> HandoffRequest:
    """A validated `POST /v1/handoff` body; BadRequest naming the first bad field."""
    refuse_tenant_field(body)
    return HandoffRequest(
        tenant=tenant.id,
        session_id=_required_string(body, "session_id", 128),
        reason=_optional_text(body, "reason", 1000) or DEFAULT_HANDOFF_REASON,
        contact=_optional_text(body, "contact", 320),
        user_token=_optional_string(body, "user_token", 256),
    )


def parse_session_id(value: str) -> str:
    """The `{session_id}` path segment of `GET /v1/sessions/{session_id}`."""
    return _required_string({"session_id": value}, "session_id", 128)


def _required_string(body: dict[str, Any], name: str, max_chars: int) -> str:
    value = _optional_string(body, name, max_chars)
    if value is None:
        raise BadRequest(f"'{name}' is required")
    return value


def _optional_string(body: dict[str, Any], name: str, max_chars: int) -> str | None:
    """An identifier-like field: absent or null -> None; otherwise a non-empty string of at most `max_chars`."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise BadRequest(f"{name} must be a string of 1-{max_chars} characters")
    check_storable(name, value)
    return value


def _optional_text(body: dict[str, Any], name: str, max_chars: int) -> str | None:
    """A free-text field: absent, null or blank -> None; otherwise stripped, at most `max_chars`."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    check_storable(name, value)
    value = value.strip()
    if len(value) > max_chars:
        raise BadRequest(f"{name} is longer than {max_chars} characters")
    return value or None


# --- answers ---------------------------------------------------------------------------------------------------------
def wants_json(request: flask.Request) -> bool:
    """True when the caller lists `application/json` itself (not through a wildcard) and does not prefer
    `text/event-stream` to it; Server-Sent Events are the default (`*/*`, no Accept, or SSE ranked higher)."""
    json_q = sse_q = 0.0
    for value, quality in request.accept_mimetypes:
        media_type = value.split(";")[0].strip().lower()
        if media_type == "application/json":
            json_q = max(json_q, quality)
        elif media_type == "text/event-stream":
            sse_q = max(sse_q, quality)
    return json_q > 0 and json_q >= sse_q


def json_answer(turn: Callable[[], Iterable[Event]]) -> flask.Response:
    """Run the turn to its end and answer one ChatResponse; 503 with its `error` and `Retry-After` when the turn
    failed (as every 503 of the API)."""
    body = collect(guarded(turn))
    if "error" in body:
        response = flask.jsonify({"error": body["error"]})
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return flask.jsonify(body)


def sse_response(turn: Callable[[], Iterable[Event]], heartbeat_seconds: float) -> flask.Response:
    """The turn as a Server-Sent Events response that streams each event as soon as it is produced."""
    response = flask.Response(relay(turn, heartbeat_seconds), status=200, content_type=SSE_CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx-style proxies must not hold the stream back
    return response


def sse_frame(event: Event) -> str:
    """`event: <name>` and one `data:` line of compact JSON, then the blank line that ends an event."""
    data = json.dumps(event.data(), ensure_ascii=False, separators=(",", ":"))
    return f"event: {event.name}\ndata: {data}\n\n"


def guarded(turn: Callable[[], Iterable[Event]]) -> Iterator[Event]:
    """The turn's events. The service promises never to raise; if it does anyway, log it and end with an `error`
    event carrying nothing internal."""
    try:
        yield from turn()
    except Exception:
        log.exception("the chat turn raised instead of ending with an error event")
        yield ErrorEvent("internal", INTERNAL_MESSAGE)


_END = object()


def relay(turn: Callable[[], Iterable[Event]], heartbeat_seconds: float) -> Iterator[str]:
    """SSE frames of the turn, produced by a worker thread through a bounded queue; `: ping` after every
    `heartbeat_seconds` without an event, so proxies and browsers keep a slow answer's connection open.

    The worker runs in a copy of the caller's context (trace id and log labels survive). When the client goes away
    the response closes this generator: the worker then runs the turn to its end without sending anything (the
    turn is still saved), and never blocks on the full queue."""
    context = contextvars.copy_context()  # now, while the request's context is current

    def frames() -> Iterator[str]:
        channel: queue.Queue = queue.Queue(maxsize=_QUEUE_SIZE)
        gone = threading.Event()
        worker = threading.Thread(target=context.run, args=(_produce, turn, channel, gone), name="chat-turn",
                                  daemon=True)
        worker.start()
        try:
            while True:
                try:
                    item = channel.get(timeout=heartbeat_seconds)
                except queue.Empty:
                    yield PING
                    continue
                if item is _END:
                    return
                try:
                    frame = sse_frame(item)
                except Exception:  # an event whose data is not JSON (a bug): end the stream as the contract says
                    log.exception("a chat event could not be written as JSON")
                    yield sse_frame(ErrorEvent("internal", INTERNAL_MESSAGE))
                    return
                yield frame
        finally:
            gone.set()

    return frames()


def _produce(turn: Callable[[], Iterable[Event]], channel: queue.Queue, gone: threading.Event) -> None:
    for event in guarded(turn):
        _offer(channel, event, gone)  # once the client is gone, the rest is drained and dropped
    _offer(channel, _END, gone)


def _offer(channel: queue.Queue, item: object, gone: threading.Event) -> None:
    """Put `item` on the queue unless the consumer has gone; never blocks for good on a full queue."""
    while not gone.is_set():
        try:
            channel.put(item, timeout=_PUT_POLL_SECONDS)
            return
        except queue.Full:
            continue
