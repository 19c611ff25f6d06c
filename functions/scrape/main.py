"""scrape: called nightly by Cloud Scheduler (POST). Runs the nightly jobs in order and answers their summaries.

    GET  /healthz (and /)   {"status": "ok"}
    POST /                  the nightly run: {"status": "ok", "jobs": {"reconcile": {...counts}}}; body optional,
                            {"dry_run": true} reports without changing anything

Jobs today: `reconcile` (the knowledge bucket against the database: lost uploads ingested, documents whose object is
gone deleted; see shared/ingest/reconcile.py). Syncing doc sites into the bucket arrives with its issue and runs
before it, so that reconciliation sees what the sync wrote. Each job logs one structured summary record (labels
`job`, and its counts). A bucket that cannot be listed answers 503, so Cloud Scheduler's retry policy applies.
"""

import logging

import flask
import functions_framework

from shared import services
from shared.errors import BadRequest
from shared.web import http_endpoint

log = logging.getLogger("functions.scrape")


def reconcile(dry_run: bool) -> dict:
    summary = services.reconciler().run(dry_run=dry_run).summary()
    log.info("nightly reconcile: %(objects)s objects, %(documents)s documents; ingested %(ingested)s, deleted "
             "%(deleted)s, withheld %(withheld)s, kept %(kept)s, errors %(errors)s", summary,
             extra={"labels": {"job": "reconcile", **{k: str(v) for k, v in summary.items()}}})
    return summary


NIGHTLY_JOBS = (("reconcile", reconcile),)  # the sync joins in front of reconcile


@functions_framework.http
@http_endpoint("scrape")
def scrape(request: flask.Request):
    if request.method == "GET":
        return flask.jsonify({"status": "ok"})
    if request.method != "POST":
        raise BadRequest("use POST to run the nightly jobs")
    body = request.get_json(silent=True) if request.content_length else None
    if body is not None and not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object, or empty")
    dry_run = (body or {}).get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("'dry_run' must be true or false")
    return flask.jsonify({"status": "ok", "jobs": {name: job(dry_run) for name, job in NIGHTLY_JOBS}})
