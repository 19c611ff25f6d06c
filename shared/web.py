"""What every entry point shares: logging set-up, trace ids, and mapping errors to responses.

Callers see a short JSON error with a stable code; a 5xx never carries the internal message (it is logged instead).
"""

from __future__ import annotations

import functools
import logging

import flask

from shared import server
from shared.config import get_settings
from shared.errors import AppError
from shared.logs import set_trace, setup_logging

log = logging.getLogger(__name__)


def error_response(exc: AppError) -> flask.Response:
    body = {"error": {"code": exc.code, "message": exc.public_message}}
    response = flask.jsonify(body)
    response.status_code = exc.status
    if exc.retryable:
        response.headers["Retry-After"] = str(getattr(exc, "retry_after", 10))
    return response


def http_endpoint(function_name: str):
    """Decorate an HTTP function: structured logs with the trace id, AppError -> its status, anything else -> 500.

    Decorating also installs the server layer (shared/server.py: request bodies with a deadline, JSON protocol
    errors) on the app functions_framework is loading the module into."""

    def decorate(handler):
        server.install()

        @functools.wraps(handler)
        def wrapper(request: flask.Request):
            setup_logging(function_name)
            try:
                set_trace(request.headers.get("X-Cloud-Trace-Context"), get_settings().project)
                return handler(request)
            except AppError as exc:
                (log.warning if exc.status < 500 else log.error)("%s: %s", exc.code, exc)
                return error_response(exc)
            except Exception:
                log.exception("unhandled error")
                return error_response(AppError())

        return wrapper

    return decorate


def json_body(request: flask.Request, max_bytes: int = 64 * 1024) -> dict:
    """The request's JSON object, or a BadRequest that says what is wrong with it."""
    from shared.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"request body is over {max_bytes} bytes")
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON body with Content-Type: application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data
