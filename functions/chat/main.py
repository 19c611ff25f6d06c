"""chat: the HTTPS API the web widget calls. Only the health check exists yet; the conversation API is issue #3."""

import flask
import functions_framework

from shared.errors import AppError, NotFound
from shared.web import http_endpoint


class NotImplementedYet(AppError):
    status = 501
    public_message = "the chat API is not available in this release yet"


@functions_framework.http
@http_endpoint("chat")
def chat(request: flask.Request):
    if request.path in ("/", "/healthz"):
        return flask.jsonify({"status": "ok"})
    if request.path.startswith("/v1/"):
        raise NotImplementedYet()
    raise NotFound(f"no route {request.path}")
