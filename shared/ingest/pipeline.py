"""Ingest: a storage event becomes a recorded document version and one embed task.

    finalized(object) -> drop if too old / already seen / stale / a folder placeholder
                      -> download the generation -> hash -> unchanged? done
                      -> prepare: parse within the parse limits, text cleaned, chunks counted against
                         MAX_CHUNKS_PER_DOCUMENT (or record failed with the reason)
                      -> record version -> enqueue named task
    deleted(object)   -> stale if the object still exists at a newer generation (an overwrite, which GCS also
                         reports as a delete of the old generation) -> delete vectors, chunks, versions

Permanent trouble (unsupported, corrupt, empty, oversized on disk or once expanded, data PostgreSQL refuses) is
recorded and acknowledged; transient trouble (database, storage or queue unavailable) raises a TransientError so
Eventarc delivers the event again. Text from object metadata is cleaned like parsed text (clean_text, clean_title):
nothing PostgreSQL or Firestore cannot store reaches them.

An event that gives a document version an outcome (recorded and queued, failed with its reason, deleted) logs it as
one `ingest_version` event (stage "ingest", see shared/logs.py); embed logs the version's end (indexer.py).
"""

from __future__ import annotations

import logging
import posixpath
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.documents import DocumentStore, document_id, vector_ids
from shared.errors import BadRequest, DocumentRejected, DocumentTooLarge, FileTooLarge, RejectedByDatabase
from shared.ingest.chunker import chunk_document
from shared.ingest.parsers import ParseLimits, clean_text, clean_title, parse_document
from shared.logs import bind, log_event
from shared.models import ParsedDocument, content_hash
from shared.tenants import TENANT_ID

log = logging.getLogger(__name__)

VERSION_OUTCOMES = frozenset({"recorded", "failed", "deleted"})  # the others leave the versions as they were
FINALIZED = "google.cloud.storage.object.v1.finalized"
DELETED = "google.cloud.storage.object.v1.deleted"
# In a bucket that keeps versions, removing a file makes its live version noncurrent: GCS reports that as `archived`
# (and `deleted` only when a version is gone for good). Both are handled as a deletion of that generation.
ARCHIVED = "google.cloud.storage.object.v1.archived"


def tenant_of(metadata: dict, default_tenant: str) -> str:
    """An object's tenant: its metadata entry `tenant`, else DEFAULT_TENANT (checked against TENANT_ID by the caller:
    a mixed-case or malformed one is recorded as failed, never made a second tenant)."""
    return str(metadata.get("tenant") or default_tenant)


def is_ignored(name: str) -> bool:
    """Objects ingestion never reads: folder placeholders and hidden files."""
    return name.endswith("/") or posixpath.basename(name).startswith(".")


@dataclass(frozen=True)
class StorageObject:
    """The parts of a GCS object resource (the event's data) that ingestion uses."""

    bucket: str
    name: str
    generation: int
    size: int
    content_type: str
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_event_data(cls, data: dict) -> StorageObject:
        if not isinstance(data, dict) or not data.get("bucket") or not data.get("name"):
            raise BadRequest("event data must be a storage object with 'bucket' and 'name'")
        try:
            generation = int(data.get("generation") or 0)
            size = int(data.get("size") or 0)
        except (TypeError, ValueError):
            raise BadRequest("event data has a non-numeric generation or size") from None
        if not isinstance(data["name"], str) or clean_text(data["name"]) != data["name"]:
            # GCS names are UTF-8 without NUL: this event did not come from a bucket.
            raise BadRequest("event data has an object name with characters that cannot be stored")
        return cls(bucket=data["bucket"], name=data["name"], generation=generation, size=size,
                   content_type=_text(data.get("contentType")), metadata=dict(data.get("metadata") or {}))

    def metadata_text(self, key: str) -> str:
        """A custom metadata value as text we can store ("" when absent or not a string)."""
        return _text(self.metadata.get(key))

    @property
    def source_uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    @property
    def topic(self) -> str:
        """The top-level folder names the topic: billing/refunds.md -> billing."""
        return self.name.split("/", 1)[0] if "/" in self.name else ""


def _text(value) -> str:
    return clean_text(value) if isinstance(value, str) else ""


@dataclass(frozen=True)
class PreparedDocument:
    """A parsed document that is within every bound, and how many chunks embed will make of it."""

    parsed: ParsedDocument
    chunk_count: int


def prepare_document(data: bytes, filename: str, content_type: str | None, settings,
                     title: str = "") -> PreparedDocument:
    """Parse within the settings' parse limits, then count the chunks embed will make: the chunker is deterministic,
    so counting here with CHUNK_MAX_TOKENS / CHUNK_OVERLAP_TOKENS (and the `title` the version will carry, which
    heads every chunk's path) gives embed's count. Raises DocumentRejected, DocumentTooLarge beyond a bound."""
    parsed = parse_document(data, filename, content_type, ParseLimits.from_settings(settings))
    if title:
        parsed = ParsedDocument(title=title, blocks=parsed.blocks)
    chunks = len(chunk_document(parsed, max_tokens=settings.chunk_max_tokens,
                                overlap_tokens=settings.chunk_overlap_tokens))
    if chunks > settings.max_chunks_per_document:
        raise DocumentTooLarge(f"the document has {chunks:,} chunks; the limit is {settings.max_chunks_per_document:,} "
                               "(MAX_CHUNKS_PER_DOCUMENT): split it into smaller files")
    return PreparedDocument(parsed, chunks)


@dataclass(frozen=True)
class IngestOutcome:
    outcome: str  # recorded | unchanged | stale | deleted | failed | ignored | duplicate
    detail: str = ""
    document_id: str | None = None
    version_id: str | None = None
    bytes: int | None = None  # the file's size, when it was known
    chunks: int | None = None  # chunks embed will make (recorded) or that were removed (deleted)


class IngestService:
    def __init__(self, settings, store: DocumentStore, objects, queue, vectors):
        self._settings = settings
        self._store = store
        self._objects = objects
        self._queue = queue
        self._vectors = vectors

    def handle_event(self, *, event_id: str, event_type: str, event_time: datetime | str | None,
                     data: dict) -> IngestOutcome:
        obj = StorageObject.from_event_data(data)
        if isinstance(event_time, str):
            try:
                event_time = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
            except ValueError:
                raise BadRequest(f"event time {event_time!r} is not RFC 3339") from None
        tenant = tenant_of(obj.metadata, self._settings.default_tenant)
        started = time.perf_counter()
        with bind(event_id=event_id, object=obj.name, generation=obj.generation):
            try:
                outcome = self._handle(event_id, event_type, event_time, obj, tenant)
            except RejectedByDatabase as error:  # not even the failure could be recorded on the version
                log.error("ingest could not record %s: %s", obj.source_uri, error)
                outcome = IngestOutcome("failed", str(error), document_id(tenant, obj.source_uri), bytes=obj.size)
            if outcome.outcome != "duplicate":
                self._store.record_event(event_id, event_type, clean_text(tenant), obj.source_uri, obj.generation,
                                         outcome.outcome, clean_text(outcome.detail), outcome.document_id,
                                         outcome.version_id)
            labels = {"document_id": outcome.document_id or "", "outcome": outcome.outcome}
            message = f"ingest {event_type.rsplit('.', 1)[-1]}: {outcome.outcome}"
            if outcome.outcome in VERSION_OUTCOMES:
                log_event(log, "ingest_version", message=message, labels=labels,
                          tenant=clean_text(tenant)[:64], stage="ingest", outcome=outcome.outcome,
                          reason=outcome.detail[:500] if outcome.outcome == "failed" else None,
                          document_id=outcome.document_id, bytes=outcome.bytes, chunks=outcome.chunks,
                          duration_ms=round((time.perf_counter() - started) * 1000, 1))
            else:
                log.info("%s", message, extra={"labels": labels})
            return outcome

    def _handle(self, event_id, event_type, event_time, obj: StorageObject, tenant: str) -> IngestOutcome:
        if event_time is not None:
            age = (datetime.now(UTC) - event_time).total_seconds()
            if age > self._settings.max_event_age_seconds:
                return IngestOutcome("ignored", f"event is {age:.0f}s old (MAX_EVENT_AGE_SECONDS)")
        if self._store.event_seen(event_id):
            return IngestOutcome("duplicate", "event already processed")
        if event_type not in (FINALIZED, DELETED, ARCHIVED):
            return IngestOutcome("ignored", f"event type {event_type} is not handled")
        if is_ignored(obj.name):
            return IngestOutcome("ignored", "folder placeholder or hidden file")
        if not TENANT_ID.fullmatch(tenant):
            return IngestOutcome("failed", f"invalid tenant {tenant!r} in object metadata", bytes=obj.size)
        doc_id = document_id(tenant, obj.source_uri)
        if event_type in (DELETED, ARCHIVED):
            return self._delete(obj, tenant, doc_id)
        return self._finalize(obj, tenant, doc_id)

    # -- finalized -------------------------------------------------------------------------------------------------
    def _finalize(self, obj: StorageObject, tenant: str, doc_id: str) -> IngestOutcome:
        doc = self._store.get_document(doc_id)
        if doc and doc.generation > obj.generation:
            return IngestOutcome("stale", f"a newer generation {doc.generation} was seen", doc_id)
        common = dict(doc_id=doc_id, tenant=tenant, source_uri=obj.source_uri, topic=obj.topic,
                      url=obj.metadata_text("source_url"), generation=obj.generation,
                      content_type=obj.content_type, size_bytes=obj.size)

        if obj.size > self._settings.max_file_bytes:
            error = FileTooLarge(f"file is {obj.size:,} bytes; the limit is {self._settings.max_file_bytes:,} "
                                 "(MAX_FILE_BYTES)")
            return self._record_failure(common, f"size-limit:{obj.generation}", obj, error)

        started = time.perf_counter()
        data = self._objects.download(obj.bucket, obj.name, obj.generation)
        if data is None:
            return IngestOutcome("stale", "the object no longer exists at this generation", doc_id)
        if len(data) > self._settings.max_file_bytes:
            error = FileTooLarge(f"file is {len(data):,} bytes; the limit is {self._settings.max_file_bytes:,}")
            return self._record_failure(common, f"size-limit:{obj.generation}", obj, error)
        digest = content_hash(data)

        latest = self._store.get_version(doc.latest_version_id, with_blocks=False) if doc and doc.latest_version_id \
            else None
        if doc and not doc.deleted_at and latest and latest.content_hash == digest:
            self._store.touch_generation(doc_id, obj.generation)
            if latest.status == "pending":  # recorded but never queued: an earlier attempt lost the queue
                self._queue.enqueue(latest.id, tenant, attempt=obj.generation)
                self._store.set_status(latest.id, "queued")
                return IngestOutcome("recorded", "re-enqueued a pending version", doc_id, latest.id)
            return IngestOutcome("unchanged", f"same content as version {latest.id} ({latest.status})",
                                 doc_id, latest.id)

        try:
            prepared = prepare_document(data, posixpath.basename(obj.name), obj.content_type, self._settings,
                                        title=clean_title(obj.metadata_text("title")))
            parsed = prepared.parsed
            parse_ms = round((time.perf_counter() - started) * 1000, 1)
            version = self._store.record_version(**common, title=parsed.title, content_hash=digest,
                                                 blocks=parsed.blocks, status="pending",
                                                 timings={"parse_ms": parse_ms, "queued_at": time.time()})
        except DocumentRejected as error:  # the file, or PostgreSQL refusing what was made of it (RejectedByDatabase)
            return self._record_failure(common, digest, obj, error)
        # Named by version and generation: a redelivered event makes no second task, but the same bytes uploaded
        # again after a delete (the same version id) get a task of their own; Cloud Tasks refuses a name used in
        # the last hour or so, and the version would have stayed queued.
        self._queue.enqueue(version.id, tenant, attempt=obj.generation)
        self._store.set_status(version.id, "queued")
        return IngestOutcome("recorded", f"{len(parsed.blocks)} blocks, {prepared.chunk_count} chunks, queued for "
                             "embedding", doc_id, version.id, bytes=len(data), chunks=prepared.chunk_count)

    def _record_failure(self, common: dict, digest: str, obj: StorageObject, error: DocumentRejected) -> IngestOutcome:
        title = clean_title(obj.metadata_text("title") or posixpath.basename(obj.name))
        reason = clean_text(str(error))
        version = self._store.record_version(**common, title=title, content_hash=digest, blocks=None,
                                             status="failed", error=reason)
        log.warning("ingest rejected %s: %s", obj.source_uri, reason)
        return IngestOutcome("failed", reason, common["doc_id"], version.id, bytes=obj.size)

    # -- deleted ---------------------------------------------------------------------------------------------------
    def _delete(self, obj: StorageObject, tenant: str, doc_id: str) -> IngestOutcome:
        doc = self._store.get_document(doc_id)
        if doc is None or doc.deleted_at:
            return IngestOutcome("ignored", "no such document", doc_id)
        if doc.generation > obj.generation:
            return IngestOutcome("stale", f"generation {obj.generation} was replaced by {doc.generation}", doc_id)
        live = self._objects.live_generation(obj.bucket, obj.name)
        if live is not None and live > obj.generation:
            # An overwrite: GCS reports the old generation as deleted; the finalized event of the new one does the work.
            return IngestOutcome("stale", f"overwritten by generation {live}", doc_id)
        with self._store.document_lock(doc_id):
            ids = self._store.chunk_ids(doc_id)
            self._vectors.delete(tenant, vector_ids(doc_id, ids))
            self._store.delete_document(doc_id, obj.generation)
        return IngestOutcome("deleted", f"removed {len(ids)} chunks", doc_id, chunks=len(ids))
