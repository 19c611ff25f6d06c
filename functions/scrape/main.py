"""scrape: the nightly sync and reconciliation (Cloud Scheduler), and the steps of sync runs (Cloud Tasks).

    GET  /healthz (and /)   {"status": "ok"}
    POST /                  the nightly run (Cloud Scheduler): starts a sync run of every enabled source (each
                            continues in steps on the sync queue), then reconciles the bucket with the database.
                            Body optional: {"dry_run": true} reports what would change; {"sources": ["docs"],
                            "tenant": "default"} limits the sync to those sources; {"jobs": ["sync"]} runs only
                            those jobs. Answers {"status": "ok", "jobs": {"sync": {"runs": [...]}, "reconcile": {...}}}
    POST /step              one step of a sync run (a Cloud Tasks task): {"run_id": N, "step": K}. 200 when it ran,
                            continues in a successor task, or was a duplicate delivery (a no-op); 503 when another
                            worker holds the run (Cloud Tasks retries later) or for transient trouble.

Syncing a source writes changed pages, feed items and S3 objects into the knowledge bucket (shared/sync); ingest
does the rest. Reconciliation catches events lost on the way (shared/ingest/reconcile.py). Each job logs one
structured event per run: `sync_run` per finished sync run (shared/sync/engine.py), `reconcile` per reconciliation
with the summary's own keys as numeric fields (shared/logs.py lists the events); both keep the labels `job` and its
counts. A bucket that cannot be listed answers 503, so Cloud Scheduler's retry policy applies.
"""

import logging

import flask
import functions_framework

from shared import services
from shared.errors import BadRequest, ServerBusy
from shared.logs import log_event
from shared.web import http_endpoint, json_body

log = logging.getLogger("functions.scrape")


def sync(body: dict, dry_run: bool) -> dict:
    names = body.get("sources")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise BadRequest("'sources' must be a list of source names")
    tenant = body.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise BadRequest("'tenant' must be a tenant id")
    runs = services.sync_engine().start(tenant=tenant, names=names or None, trigger="schedule", dry_run=dry_run)
    return {"runs": [{"run": r.id, "tenant": r.tenant, "source": r.source, "kind": r.kind, "phase": r.phase,
                      "dry_run": r.dry_run} for r in runs]}


def reconcile(body: dict, dry_run: bool) -> dict:
    summary = services.reconciler().run(dry_run=dry_run).summary()
    log_event(log, "reconcile",
              message="nightly reconcile: {objects} objects, {documents} documents; ingested {ingested}, deleted "
                      "{deleted}, withheld {withheld}, kept {kept}, errors {errors}".format(**summary),
              labels={"job": "reconcile", **{k: str(v) for k, v in summary.items()}}, **summary)
    return summary


NIGHTLY_JOBS = (("sync", sync), ("reconcile", reconcile))


def step(request: flask.Request):
    from shared.sync.state import Busy

    body = json_body(request)
    run_id, number = body.get("run_id"), body.get("step")
    if isinstance(run_id, bool) or not isinstance(run_id, int) or isinstance(number, bool) \
            or not isinstance(number, int) or number < 0:
        raise BadRequest("'run_id' and 'step' (whole numbers) are required")
    try:
        return flask.jsonify(services.sync_engine().step(run_id, number))
    except Busy as exc:
        raise ServerBusy(str(exc), retry_after=30, public_message="the run is busy; retry later") from None


@functions_framework.http
@http_endpoint("scrape")
def scrape(request: flask.Request):
    if request.method == "GET":
        return flask.jsonify({"status": "ok"})
    if request.method != "POST":
        raise BadRequest("use POST to run the nightly jobs")
    if request.path.rstrip("/") == "/step":
        return step(request)
    if request.path not in ("", "/"):
        raise BadRequest(f"unknown path {request.path}: POST / (nightly jobs) or /step (a sync step)")
    body = request.get_json(silent=True) if request.content_length else None
    if body is not None and not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object, or empty")
    body = body or {}
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("'dry_run' must be true or false")
    jobs = body.get("jobs")
    known = [name for name, _ in NIGHTLY_JOBS]
    if jobs is not None and (not isinstance(jobs, list) or not set(jobs) <= set(known)):
        raise BadRequest(f"'jobs' must be a list of {', '.join(known)}")
    return flask.jsonify({"status": "ok", "jobs": {name: job(body, dry_run) for name, job in NIGHTLY_JOBS
                                                   if jobs is None or name in jobs}})
