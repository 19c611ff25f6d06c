"""chat: the HTTPS API the web widget calls; `openapi.yaml` next to this file is the contract.

    GET  /healthz (and /)        {"status": "ok"}; `?warm=1` first loads the model and opens the database
    POST /v1/chat                the answer as Server-Sent Events, or one JSON object with `Accept: application/json`
    GET  /v1/sessions/{id}       the conversation (`?site_key=` with a tenant registry; a signed user's needs
                                 X-User-Token)
    POST /v1/feedback            204
    POST /v1/handoff             201 {ticket_id, status}
    OPTIONS /v1/...              CORS preflight
    GET  /widget/v1/widget.js    the embeddable web widget (`widget/widget.js`), public and cacheable

Parsing, CORS and streaming live in `shared.chat.http`; the conversation itself in the chat service. Refusals
(bad field, bad token, rate limit) are raised by `start_turn` before a byte is sent, so they are plain 4xx answers.
"""

import functools
import gzip
import hashlib
import pathlib

import flask
import functions_framework
from werkzeug.routing import Map, Rule

from shared import services
from shared.chat import http
from shared.config import Settings, get_settings
from shared.errors import NotFound
from shared.web import error_response, http_endpoint

# The widget's URL names its major version: a change that breaks an existing embed (an attribute renamed, a DOM
# contract dropped) ships as v2 next to v1, so pages that pinned v1 keep working.
WIDGET_VERSION = "v1"
WIDGET_FILE = pathlib.Path(__file__).resolve().parent / "widget" / "widget.js"
# An hour: a fix reaches every page within the hour, and the ETag makes the revalidation after that a cheap 304.
WIDGET_CACHE_CONTROL = "public, max-age=3600"

ROUTES = Map([
    Rule("/", endpoint="health", methods=["GET"]),
    Rule("/healthz", endpoint="health", methods=["GET"]),
    Rule("/v1/chat", endpoint="chat", methods=["POST", "OPTIONS"]),
    Rule("/v1/sessions/<session_id>", endpoint="session", methods=["GET", "OPTIONS"]),
    Rule("/v1/feedback", endpoint="feedback", methods=["POST", "OPTIONS"]),
    Rule("/v1/handoff", endpoint="handoff", methods=["POST", "OPTIONS"]),
    Rule(f"/widget/{WIDGET_VERSION}/widget.js", endpoint="widget", methods=["GET"]),
])


@functions_framework.http
@http_endpoint("chat")
def chat(request: flask.Request) -> flask.Response:
    settings = get_settings()
    if not request.path.startswith("/widget/"):  # a public file any page may load: no origin allow-list
        registry = services.tenant_registry()
        http.apply_cors(request, None if registry.requires_key else registry.resolve(None))
    endpoint, args = http.route(ROUTES, request)
    if request.method == "OPTIONS":
        return http.preflight_response(http.allowed_methods(ROUTES, request))
    return HANDLERS[endpoint](request, settings, **args)


def health(request: flask.Request, settings: Settings) -> flask.Response:
    """`?warm=1` also loads the embedding model, opens the database and Firestore's channel (a fresh client's first
    call can take seconds, more than a request's Firestore deadline allows), so the first question is fast."""
    if request.args.get("warm"):
        services.retriever().retrieve("warm-up", settings.default_tenant)
        services.memory_store().policies.get(settings.default_tenant)
    return flask.jsonify({"status": "ok"})


def ask(request: flask.Request, settings: Settings) -> flask.Response:
    body = http.read_json(request, settings.chat_max_body_bytes)
    tenant = http.admit(request, services.tenant_registry(), body.get("site_key"))
    as_json = http.wants_json(request)
    chat_request = http.parse_chat_request(body, settings, http.client_id(request, settings.trusted_proxy_hops),
                                           tenant, streamed=not as_json)
    service = services.chat_service()
    turn = functools.partial(service.run_turn, service.start_turn(chat_request))
    if as_json:
        return http.json_answer(turn)
    return http.sse_response(turn, settings.sse_heartbeat_seconds)


def session(request: flask.Request, settings: Settings, session_id: str) -> flask.Response:
    http.refuse_tenant_field(request.args)
    tenant = http.admit(request, services.tenant_registry(), request.args.get("site_key"))
    view = services.chat_service().session_view(tenant.id, http.parse_session_id(session_id),
                                                user_token=http.user_token_header(request))
    return flask.jsonify(view)


def feedback(request: flask.Request, settings: Settings) -> flask.Response:
    body = http.read_json(request, settings.chat_max_body_bytes)
    tenant = http.admit(request, services.tenant_registry(), body.get("site_key"))
    vote = http.parse_feedback(body, tenant)
    services.chat_service().feedback(vote.tenant, vote.session_id, vote.turn_id, vote.rating, vote.reason,
                                     user_token=vote.user_token,
                                     client_id=http.client_id(request, settings.trusted_proxy_hops),
                                     limit=tenant.limit("feedback_per_minute", settings.rate_limit_feedback_per_minute))
    return http.no_content()


def handoff(request: flask.Request, settings: Settings) -> flask.Response:
    body = http.read_json(request, settings.chat_max_body_bytes)
    tenant = http.admit(request, services.tenant_registry(), body.get("site_key"))
    ask_human = http.parse_handoff(body, tenant)
    ticket = services.chat_service().handoff(ask_human.tenant, ask_human.session_id, ask_human.reason,
                                             ask_human.contact, user_token=ask_human.user_token,
                                             client_id=http.client_id(request, settings.trusted_proxy_hops),
                                             limit=tenant.limit("handoff_per_hour", settings.rate_limit_handoff_per_hour))
    response = flask.jsonify(ticket)
    response.status_code = 201
    return response


def widget(request: flask.Request, settings: Settings) -> flask.Response:
    """The widget script, gzipped when the browser accepts it; 304 when the browser's copy is current."""
    plain, zipped, etag = _widget_asset()
    use_gzip = request.accept_encodings["gzip"] > 0  # the quality of gzip (q=0 refuses it)
    response = flask.Response(zipped if use_gzip else plain, content_type="application/javascript; charset=utf-8")
    response.set_etag(etag + ("-gz" if use_gzip else ""))  # one tag per representation (RFC 9110 8.8.3)
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    response.headers["Cache-Control"] = WIDGET_CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Public, credential-free: lets a page load it with <script crossorigin integrity=...> (subresource integrity).
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


@functools.cache
def _widget_asset() -> tuple[bytes, bytes, str]:
    """(bytes, gzipped bytes, ETag) of widget.js, read once per instance on first request."""
    plain = WIDGET_FILE.read_bytes()
    return plain, gzip.compress(plain, compresslevel=9, mtime=0), hashlib.sha256(plain).hexdigest()[:20]


@functions_framework.errorhandler(404)
def framework_not_found(error) -> flask.Response:
    """The framework answers /robots.txt and /favicon.ico itself; keep its 404 JSON like every other one."""
    return error_response(NotFound("no such route"))


HANDLERS = {"health": health, "chat": ask, "session": session, "feedback": feedback, "handoff": handoff,
            "widget": widget}
