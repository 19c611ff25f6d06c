"""Embed: one document version becomes chunks in PostgreSQL and vectors in the index, replacing the old ones.

    lock the document -> skip if the version is gone, failed, already live, or no longer the latest
    -> give up (failed, with what to do) past EMBED_MAX_CALLS calls or EMBED_MAX_STALLED_CALLS dead ones in a row
    -> chunk (structure-aware) -> embed what the cache lacks, batch by batch, each batch cached as it completes
    -> over EMBED_TIME_BUDGET_SECONDS with batches left: enqueue a continuation task (back of the queue), stop here
    -> upsert vectors -> delete vectors of chunks that no longer exist -> swap chunks in one transaction

Chunk ids are "{document}#{ordinal}", so a retried task overwrites what a failed attempt wrote, and the advisory
lock keeps two versions of one document (or a delete) from interleaving. Status, timings and errors are recorded on
the version. Transient trouble re-raises (Cloud Tasks retries with backoff); permanent trouble is recorded as failed.

A large version is finished across calls: its progress is the embedding cache itself (vectors by content hash, one
write per batch), so a continuation, or a retry after a call was killed, embeds only what is missing; nothing is
written to the index or the chunks table until every vector exists, so the live version stays searchable, whole,
until the new one replaces it in the final call. Per-version counters in `timings` (reset by `kb requeue`):
`embed_calls` (calls so far), `stalled_calls` (calls in a row that died with no batch done), `uncached_at_start`
(texts without a vector when the last call began), `embedded` (texts embedded over all calls).

A call that ends a version (indexed, or failed with its reason) logs one `ingest_version` event (stage "embed",
shared/logs.py) with the call's duration; a continuation or a skip is no outcome of the version.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shared.documents import Document, DocumentStore, Version, chunk_id, title_vector_id, vector_ids
from shared.errors import AppError, TransientError
from shared.ingest.chunker import chunk_document
from shared.logs import bind, log_event
from shared.models import Chunk, ParsedDocument, VectorRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexOutcome:
    outcome: str  # indexed | continued | skipped | failed
    detail: str = ""
    chunks: int = 0
    embedded: int = 0


class Indexer:
    def __init__(self, settings, store: DocumentStore, embedder, cache, vectors, queue=None):
        """`queue` (an EmbedQueue) lets a call hand the rest of a large version to a new task after
        EMBED_TIME_BUDGET_SECONDS; without one (benchmarks, admin commands) a version is embedded in one call."""
        self._settings = settings
        self._store = store
        self._embedder = embedder
        self._cache = cache
        self._vectors = vectors
        self._queue = queue

    def index_version(self, version_id: str) -> IndexOutcome:
        head = self._store.get_version(version_id, with_blocks=False)
        if head is None:
            return IndexOutcome("skipped", "version no longer exists (document deleted)")
        with bind(document_id=head.document_id, version_id=version_id), \
                self._store.document_lock(head.document_id):
            version = self._store.get_version(version_id)
            doc = self._store.get_document(head.document_id)
            reason = _skip_reason(doc, version)
            if reason:
                if version is not None and doc is not None and reason == NEWER and version.status != "superseded":
                    self._store.set_status(version.id, "superseded")
                log.info("embed skipped: %s", reason)
                return IndexOutcome("skipped", reason)
            started = time.perf_counter()
            try:
                outcome = self._index(doc, version)
            except TransientError as exc:
                self._store.set_status(version.id, "queued", error=f"retrying: {exc}")
                raise
            except AppError as exc:
                self._store.set_status(version.id, "failed", error=str(exc))
                log.error("embed failed: %s", exc)
                outcome = IndexOutcome("failed", str(exc))
            if outcome.outcome in ("indexed", "failed"):
                log_event(log, "ingest_version", message=f"embed: {outcome.outcome}",
                          severity=logging.INFO if outcome.outcome == "indexed" else logging.WARNING,
                          tenant=doc.tenant, stage="embed", outcome=outcome.outcome,
                          reason=outcome.detail[:500] if outcome.outcome == "failed" else None,
                          document_id=doc.id,
                          chunks=outcome.chunks if outcome.outcome == "indexed" else None,
                          duration_ms=round((time.perf_counter() - started) * 1000, 1))
            return outcome

    def add_missing_title_vectors(self, tenant: str, batch: int = 500) -> int:
        """Write the title vector of every live document that lacks one (documents indexed before the Indexer wrote
        them); return how many were added. Safe to repeat: present vectors are left alone."""
        live = self._store.live_versions(tenant)
        have = self._vectors.fetch_ids(tenant, [title_vector_id(d) for d in live])
        docs = [d for d in (self._store.get_document(i) for i in live if title_vector_id(i) not in have)
                if d is not None and d.title.strip()]
        for start in range(0, len(docs), batch):
            part = docs[start : start + batch]
            vectors = self._embedder.embed_documents([d.title for d in part], cache=self._cache).vectors
            self._vectors.upsert(tenant, [title_record(d, live[d.id], v) for d, v in zip(part, vectors)])
        return len(docs)

    def _index(self, doc: Document, version: Version) -> IndexOutcome:
        started = time.perf_counter()
        s = self._settings
        drafts = chunk_document(ParsedDocument(title=version.title or doc.title, blocks=version.blocks or []),
                                max_tokens=s.chunk_max_tokens, overlap_tokens=s.chunk_overlap_tokens)
        title = version.title or doc.title
        chunks = [
            Chunk(id=chunk_id(doc.id, d.ordinal), tenant=doc.tenant, document_id=doc.id, version_id=version.id,
                  ordinal=d.ordinal, title=title, topic=doc.topic, source_uri=doc.source_uri, url=doc.url,
                  heading_path=d.heading_path, text=d.text, token_count=d.token_count, content_hash=d.content_hash)
            for d in drafts
        ]
        # The title is embedded on its own too: help articles are often titled by the question they answer, and a
        # question matches its paraphrase far better than a passage that merely starts with it.
        texts = [c.embedding_text for c in chunks] + ([title] if title.strip() and chunks else [])
        chunked = time.perf_counter()

        progress = _Progress.of(version)
        uncached = self._embedder.uncached(texts, self._cache)
        # A call that found the version still 'embedding' follows one that died without recording anything.
        died = version.status == "embedding"
        stalled = progress.stalled + 1 if died and uncached >= progress.uncached_at_start else 0
        if progress.calls >= s.embed_max_calls:
            return self._give_up(version, _too_many_calls(s.embed_max_calls, uncached, len(set(texts)), version))
        if stalled >= s.embed_max_stalled_calls:
            return self._give_up(version, _stalled(stalled))
        queued_at = version.timings.get("queued_at")
        self._store.start_attempt(
            version.id, embed_calls=progress.calls + 1, stalled_calls=stalled, uncached_at_start=uncached,
            **({"queue_wait_ms": round((time.time() - queued_at) * 1000, 1)} if queued_at and version.attempts == 0
               else {}))

        budget = s.embed_time_budget_seconds
        stop = (lambda: time.perf_counter() - started >= budget) if self._queue is not None else None
        embedded = self._embedder.embed_documents(texts, cache=self._cache, stop=stop)
        embedded_at = time.perf_counter()
        total = {"embed_ms": round(progress.embed_ms + _ms(chunked, embedded_at), 1),
                 "embedded": progress.embedded + embedded.computed}
        if embedded.remaining:
            return self._continue(doc, version, embedded, total, len(set(texts)))

        records = [VectorRecord(id=c.id, values=v, metadata={**vector_metadata(doc, version.id), "ordinal": c.ordinal})
                   for c, v in zip(chunks, embedded.vectors)]
        if len(texts) > len(chunks):
            records.append(title_record(doc, version.id, embedded.vectors[-1]))
        new_ids = {r.id for r in records}
        stale = [i for i in vector_ids(doc.id, self._store.chunk_ids(doc.id)) if i not in new_ids]
        timings = {"chunk_ms": _ms(started, chunked), **total}

        def write_vectors() -> None:
            # Inside the chunk swap's transaction, after PostgreSQL took the chunks: a version whose chunks it
            # refuses (RejectedByDatabase) leaves the live version's vectors as they were.
            written = time.perf_counter()
            self._vectors.upsert(doc.tenant, records)
            self._vectors.delete(doc.tenant, stale)
            timings["index_ms"] = _ms(written, time.perf_counter())

        self._store.replace_chunks(doc, version, chunks, total["embedded"], timings, before_commit=write_vectors)
        log.info("embed indexed %d chunks (%d embedded, %d cached, %d stale removed, call %d)", len(chunks),
                 embedded.computed, len(chunks) - embedded.computed, len(stale), progress.calls + 1)
        return IndexOutcome("indexed", f"{len(chunks)} chunks", len(chunks), embedded.computed)

    def _continue(self, doc: Document, version: Version, embedded, total: dict, distinct: int) -> IndexOutcome:
        """Out of time with batches left: a new named task (at the back of the queue, so files uploaded after this
        one are not stuck behind it) continues from the cache. Created before the status changes: if creating it
        fails, the TransientError makes Cloud Tasks retry this task instead, which continues just the same."""
        task = self._queue.enqueue(version.id, doc.tenant, attempt=time.time_ns() // 1_000_000)
        self._store.set_status(version.id, "queued", **total)
        detail = (f"{distinct - embedded.remaining} of {distinct} passages embedded; continuing in "
                  f"{task.rsplit('/', 1)[-1]}")
        log.info("embed continues: %s", detail)
        return IndexOutcome("continued", detail, 0, embedded.computed)

    def _give_up(self, version: Version, reason: str) -> IndexOutcome:
        self._store.set_status(version.id, "failed", error=reason)
        log.error("embed failed: %s", reason)
        return IndexOutcome("failed", reason)


@dataclass(frozen=True)
class _Progress:
    """What earlier embed calls of a version recorded in its timings (see the module docstring)."""

    calls: int = 0
    stalled: int = 0
    uncached_at_start: int = 0
    embedded: int = 0
    embed_ms: float = 0.0

    @classmethod
    def of(cls, version: Version) -> _Progress:
        t = version.timings or {}
        return cls(calls=int(t.get("embed_calls", 0)), stalled=int(t.get("stalled_calls", 0)),
                   uncached_at_start=int(t.get("uncached_at_start", 0)), embedded=int(t.get("embedded", 0)),
                   embed_ms=float(t.get("embed_ms", 0.0)))


REQUEUE_HINT = "then run `python -m infra.kb requeue --failed` to continue from what is already embedded"


def _too_many_calls(limit: int, uncached: int, distinct: int, version: Version) -> str:
    if uncached:
        return (f"embedding needs more than {limit} embed calls (EMBED_MAX_CALLS): {distinct - uncached} of "
                f"{distinct} passages embedded so far. Raise EMBED_TIME_BUDGET_SECONDS (with embed's timeout) or "
                f"EMBED_MAX_CALLS, or split the file; {REQUEUE_HINT}")
    last = f" (last error: {version.error})" if version.error else ""
    return (f"every passage is embedded, but {limit} embed calls (EMBED_MAX_CALLS) did not finish writing the "
            f"index{last}. Check that the vector index and the database are reachable; {REQUEUE_HINT}")


def _stalled(calls: int) -> str:
    return (f"{calls} embed calls in a row ended without an outcome and without embedding a batch (killed at the "
            "deadline, out of memory, or crashed; see embed's logs). Lower EMBED_BATCH_SIZE, or give embed a longer "
            f"timeout or more memory; {REQUEUE_HINT}")


def vector_metadata(doc: Document, version_id: str) -> dict:
    """Filter metadata every vector of a document carries."""
    return {"document_id": doc.id, "version_id": version_id, "topic": doc.topic, "tenant": doc.tenant}


def title_record(doc: Document, version_id: str, values: list[float]) -> VectorRecord:
    """The vector of a document's title alone (it stands for the first chunk in search results)."""
    return VectorRecord(id=title_vector_id(doc.id), values=values,
                        metadata={**vector_metadata(doc, version_id), "ordinal": 0, "kind": "title"})


NEWER = "a newer version exists"


def _skip_reason(doc: Document | None, version: Version | None) -> str:
    if version is None or doc is None:
        return "version no longer exists (document deleted)"
    if doc.deleted_at:
        return "document was deleted"
    if version.status == "failed":
        return f"version failed permanently: {version.error}"
    if doc.live_version_id == version.id and version.status == "ready":
        return "version is already live"
    if doc.latest_version_id != version.id:
        return NEWER
    return ""


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
