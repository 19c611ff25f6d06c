"""Reconciliation: the knowledge bucket is the editors' source of truth; make the database agree with it.

Events get lost (an outage longer than Eventarc's 24 h of redelivery, a trigger created after the upload, a bug),
and nothing else would notice. One run:

    list the whole bucket  (a failed listing ends the run before anything changes: never act on half a picture)
    -> each object with no document, a deleted document, or a document at an older generation: ingested through
       IngestService as a `finalized` event whose id is derived from what was found, so a rerun that finds the same
       thing meets an event already recorded and does nothing twice
    -> each live document whose URI no listed object has (in any tenant): read the object directly once more, and
       only if it is really gone, delete the document through IngestService (a `deleted` event); at most
       `max_deletes` per run, the rest reported as withheld

Deletions are bounded and run first, so a run cut short still removes what was deleted behind our back. Versions
that were recorded but never finished (pending, queued, embedding) are `kb requeue`'s business. Objects the ingest
rules skip (folder placeholders, hidden files) are skipped here too.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

from shared.documents import Document, DocumentStore
from shared.errors import AppError
from shared.ingest.pipeline import DELETED, FINALIZED, IngestService, is_ignored, tenant_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Action:
    """One thing a run found, and what it did about it."""

    kind: str  # ingest | delete | withheld | kept | error
    reason: str  # missing | deleted | older | gone | ...
    source_uri: str
    tenant: str
    outcome: str = ""  # IngestService's outcome (recorded, deleted, duplicate, ...), or "dry run"
    detail: str = ""


@dataclass
class ReconcileReport:
    bucket: str
    tenant: str | None
    dry_run: bool
    objects: int = 0
    documents: int = 0
    seconds: float = 0.0
    actions: list[Action] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    def summary(self) -> dict:
        """Counts for a log record or a response (no object names)."""
        return {"bucket": self.bucket, "tenant": self.tenant or "*", "dry_run": self.dry_run, "objects": self.objects,
                "documents": self.documents, "ingested": self.count("ingest"), "deleted": self.count("delete"),
                "withheld": self.count("withheld"), "kept": self.count("kept"), "errors": self.count("error"),
                "seconds": round(self.seconds, 2)}


class Reconciler:
    def __init__(self, settings, store: DocumentStore, objects, ingest: IngestService):
        self._settings = settings
        self._store = store
        self._objects = objects
        self._ingest = ingest

    def run(self, tenant: str | None = None, dry_run: bool = False, max_deletes: int | None = None) -> ReconcileReport:
        """Compare the bucket with the documents (of `tenant`, or all) and ingest or delete what differs.
        `dry_run`: report only (objects are still read to re-check deletions). `max_deletes`: default
        RECONCILE_MAX_DELETES. Raises StorageUnavailable when the bucket cannot be listed completely."""
        started = time.monotonic()
        bucket = self._settings.knowledge_bucket
        prefix = f"gs://{bucket}/"
        listing = self._objects.list_objects(bucket)  # all pages or an exception: nothing has changed yet
        documents = self._store.documents_under(prefix, tenant)
        report = ReconcileReport(bucket=bucket, tenant=tenant, dry_run=dry_run, documents=len(documents))

        listed_uris = {prefix + o["name"] for o in listing}
        present: dict[tuple[str, str], dict] = {}
        for resource in listing:
            if is_ignored(resource["name"]):
                continue
            owner = tenant_of(resource.get("metadata") or {}, self._settings.default_tenant)
            if tenant is None or owner == tenant:
                present[(owner, prefix + resource["name"])] = resource
        report.objects = len(present)

        cap = self._settings.reconcile_max_deletes if max_deletes is None else max_deletes
        gone = [d for d in documents if d.deleted_at is None and d.source_uri not in listed_uris]
        for doc in gone:
            if report.count("delete") >= cap:
                report.actions.append(Action("withheld", "gone", doc.source_uri, doc.tenant, detail=(
                    f"over the cap of {cap} deletions per run (RECONCILE_MAX_DELETES, --max-deletes)")))
                continue
            report.actions.append(self._delete(doc, bucket, prefix, dry_run))

        known = {(d.tenant, d.source_uri): d for d in documents}
        for (owner, uri), resource in sorted(present.items()):
            reason = _ingest_reason(known.get((owner, uri)), int(resource.get("generation") or 0))
            if reason:
                report.actions.append(self._ingest_object(resource, owner, uri, reason, dry_run))
        report.seconds = time.monotonic() - started
        return report

    def _ingest_object(self, resource: dict, tenant: str, uri: str, reason: str, dry_run: bool) -> Action:
        if dry_run:
            return Action("ingest", reason, uri, tenant, "dry run")
        event_id = _event_id("finalized", tenant, uri, resource.get("generation"), reason)
        try:
            outcome = self._ingest.handle_event(event_id=event_id, event_type=FINALIZED, event_time=None,
                                                data=resource)
        except AppError as exc:
            log.warning("reconcile could not ingest %s: %s", uri, exc)
            return Action("error", reason, uri, tenant, exc.code, str(exc))
        if outcome.outcome == "duplicate":  # the same finding as an earlier run, and that run's outcome stands
            return Action("kept", reason, uri, tenant, "duplicate", "handled by an earlier run (see `kb events`)")
        return Action("ingest", reason, uri, tenant, outcome.outcome, outcome.detail)

    def _delete(self, doc: Document, bucket: str, prefix: str, dry_run: bool) -> Action:
        name = doc.source_uri[len(prefix):]
        try:
            live = self._objects.live_generation(bucket, name)  # the listing said it is gone: make sure
        except AppError as exc:
            return Action("error", "gone", doc.source_uri, doc.tenant, exc.code, f"re-check failed, kept: {exc}")
        if live is not None:
            return Action("kept", "listed as gone", doc.source_uri, doc.tenant,
                          detail=f"a direct read finds the object (generation {live}); not deleted")
        if dry_run:
            return Action("delete", "gone", doc.source_uri, doc.tenant, "dry run")
        event_id = _event_id("deleted", doc.tenant, doc.source_uri, doc.generation, "gone")
        data = {"bucket": bucket, "name": name, "generation": str(doc.generation), "metadata": {"tenant": doc.tenant}}
        try:
            outcome = self._ingest.handle_event(event_id=event_id, event_type=DELETED, event_time=None, data=data)
        except AppError as exc:
            log.warning("reconcile could not delete %s: %s", doc.source_uri, exc)
            return Action("error", "gone", doc.source_uri, doc.tenant, exc.code, str(exc))
        return Action("delete", "gone", doc.source_uri, doc.tenant, outcome.outcome, outcome.detail)


def _ingest_reason(doc: Document | None, generation: int) -> str:
    if doc is None:
        return "missing"
    if doc.deleted_at is not None:
        return "deleted"
    if doc.generation < generation:
        return "older"
    return ""


def _event_id(kind: str, tenant: str, uri: str, generation, state: str) -> str:
    """A synthetic event id, the same for the same finding: a rerun is a recorded duplicate, never new work."""
    digest = hashlib.sha256(f"{kind}\0{tenant}\0{uri}\0{generation}\0{state}".encode()).hexdigest()[:32]
    return f"reconcile-{kind}-{digest}"
