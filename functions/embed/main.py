"""embed: the Cloud Tasks target. Body: {"version_id": "...", "tenant": "..."}.

200 when the version was indexed, continued (out of EMBED_TIME_BUDGET_SECONDS: a new task at the back of the queue
carries on from what is embedded), skipped or recorded as failed; 503 for transient trouble (Cloud Tasks retries
with its backoff); 400 for a body that is not a task of ours. `GET /healthz` answers 200; `GET /healthz?warm=1` also
loads the embedding model, so a fresh instance's first task does not pay for it (make dev calls it at start).
"""

import flask
import functions_framework

from shared import services
from shared.errors import BadRequest
from shared.web import http_endpoint, json_body


@functions_framework.http
@http_endpoint("embed")
def embed(request: flask.Request):
    if request.method == "GET" and request.path == "/healthz":
        if request.args.get("warm"):
            services.embedder().embed_query("warm-up")
        return flask.jsonify({"status": "ok"})
    if request.method != "POST":
        raise BadRequest("use POST")
    body = json_body(request)
    version_id = body.get("version_id")
    if not isinstance(version_id, str) or not version_id:
        raise BadRequest("'version_id' (string) is required")
    outcome = services.indexer().index_version(version_id)
    return flask.jsonify({"outcome": outcome.outcome, "detail": outcome.detail, "chunks": outcome.chunks,
                          "embedded": outcome.embedded})
