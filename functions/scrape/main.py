"""scrape: called nightly by Cloud Scheduler to sync doc sites into the bucket. Syncing arrives with its issue; until
then the function answers its health check and reports that no sources are configured."""

import flask
import functions_framework

from shared.web import http_endpoint


@functions_framework.http
@http_endpoint("scrape")
def scrape(request: flask.Request):
    return flask.jsonify({"status": "ok", "synced": 0, "detail": "no sources configured"})
