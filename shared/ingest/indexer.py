"""Embed: one document version becomes chunks in PostgreSQL and vectors in the index, replacing the old ones.

    lock the document -> skip if the version is gone, failed, already live, or no longer the latest
    -> chunk (structure-aware) -> embed (batched; cached by content hash)
    -> upsert vectors -> delete vectors of chunks that no longer exist -> swap chunks in one transaction

Chunk ids are "{document}#{ordinal}", so a retried task overwrites what a failed attempt wrote, and the advisory
lock keeps two versions of one document (or a delete) from interleaving. Status, timings and errors are recorded on
the version. Transient trouble re-raises (Cloud Tasks retries with backoff); permanent trouble is recorded as failed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shared.documents import Document, DocumentStore, Version, chunk_id, title_vector_id, vector_ids
from shared.errors import AppError, TransientError
from shared.ingest.chunker import chunk_document
from shared.logs import bind
from shared.models import Chunk, ParsedDocument, VectorRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexOutcome:
    outcome: str  # indexed | skipped | failed
    detail: str = ""
    chunks: int = 0
    embedded: int = 0


class Indexer:
    def __init__(self, settings, store: DocumentStore, embedder, cache, vectors):
        self._settings = settings
        self._store = store
        self._embedder = embedder
        self._cache = cache
        self._vectors = vectors

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
            try:
                return self._index(doc, version)
            except TransientError as exc:
                self._store.set_status(version.id, "queued", error=f"retrying: {exc}")
                raise
            except AppError as exc:
                self._store.set_status(version.id, "failed", error=str(exc))
                log.error("embed failed: %s", exc)
                return IndexOutcome("failed", str(exc))

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
        queued_at = version.timings.get("queued_at")
        self._store.start_attempt(version.id, **({"queue_wait_ms": round((time.time() - queued_at) * 1000, 1)}
                                                 if queued_at and version.attempts == 0 else {}))
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
        chunked = time.perf_counter()

        # The title is embedded on its own too: help articles are often titled by the question they answer, and a
        # question matches its paraphrase far better than a passage that merely starts with it.
        texts = [c.embedding_text for c in chunks] + ([title] if title.strip() and chunks else [])
        embedded = self._embedder.embed_documents(texts, cache=self._cache)
        embedded_at = time.perf_counter()

        records = [VectorRecord(id=c.id, values=v, metadata={**vector_metadata(doc, version.id), "ordinal": c.ordinal})
                   for c, v in zip(chunks, embedded.vectors)]
        if len(texts) > len(chunks):
            records.append(title_record(doc, version.id, embedded.vectors[-1]))
        self._vectors.upsert(doc.tenant, records)
        new_ids = {r.id for r in records}
        stale = [i for i in vector_ids(doc.id, self._store.chunk_ids(doc.id)) if i not in new_ids]
        self._vectors.delete(doc.tenant, stale)
        indexed_at = time.perf_counter()

        timings = {
            "chunk_ms": _ms(started, chunked),
            "embed_ms": _ms(chunked, embedded_at),
            "index_ms": _ms(embedded_at, indexed_at),
        }
        self._store.replace_chunks(doc, version, chunks, embedded.computed, timings)
        log.info("embed indexed %d chunks (%d embedded, %d cached, %d stale removed)", len(chunks),
                 embedded.computed, len(chunks) - embedded.computed, len(stale))
        return IndexOutcome("indexed", f"{len(chunks)} chunks", len(chunks), embedded.computed)


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
