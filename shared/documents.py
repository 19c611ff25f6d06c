"""Document store: documents, their versions, chunks and the ingest audit log in PostgreSQL.

Identity is derived, never random, so every step is safe to repeat:
- document id  = hash(tenant, source URI)          - the same file is always the same document;
- version id   = hash(document id, content hash)   - the same bytes twice are the same version;
- chunk id     = "{document id}#{ordinal}"         - a retry or a new version overwrites, never duplicates.

Work on one document is serialised by a PostgreSQL advisory lock (`document_lock`), so an embed task and a delete or
a newer version's task never interleave their writes to the vector index.

When PostgreSQL refuses a document's data itself (SQLSTATE class 22, data exception, or 54, program limit exceeded:
text it cannot store, a tsvector or index row too large), the writes raise `RejectedByDatabase`, a DocumentRejected:
retrying cannot help, so ingest and embed record the version as failed with the server's reason and acknowledge.
Every other database error (connection trouble, serialization failures, deadlocks, shutdowns) propagates unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pg8000.dbapi

from shared.db import Database
from shared.errors import RejectedByDatabase, TransientError
from shared.models import Block, Chunk

# SQLSTATE classes about the data itself, which no retry changes: 22 data exception (22P02 invalid text
# representation, 22021 character not in repertoire, 22P05 untranslatable character, 22003 numeric value out of
# range, ...) and 54 program limit exceeded (54000: a tsvector over 1 MB, an index row over a third of a page).
# Not 40001/40P01 (serialization failure, deadlock), 57P01 (shutdown), 53 (resources), 08 (connection): transient.
_PERMANENT_SQLSTATE_CLASSES = ("22", "54")


@contextlib.contextmanager
def _refused(what: str):
    """Turn PostgreSQL's refusal of this data into RejectedByDatabase; let everything else through as it is.

    Wraps the whole transaction, so the database layer has seen (and cleaned up after) the original error first.
    """
    try:
        yield
    except pg8000.dbapi.DatabaseError as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        code = str(error.get("C", ""))
        if code[:2] not in _PERMANENT_SQLSTATE_CLASSES:
            raise
        detail = str(error.get("D", ""))[:300]
        reason = str(error.get("M", "error")) + (f" ({detail})" if detail else "")
        raise RejectedByDatabase(f"PostgreSQL refused {what}: {reason} [SQLSTATE {code}]. Fix or remove that "
                                 "content and upload the file again") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate: not text, so not even sent
        raise RejectedByDatabase(f"{what} contains text that has no UTF-8 encoding ({exc.reason} at position "
                                 f"{exc.start}); fix or remove that content and upload the file again") from exc


def document_id(tenant: str, source_uri: str) -> str:
    return hashlib.sha256(f"{tenant}\0{source_uri}".encode()).hexdigest()[:24]


def version_id(doc_id: str, content_hash: str) -> str:
    return hashlib.sha256(f"{doc_id}\0{content_hash}".encode()).hexdigest()[:24]


def chunk_id(doc_id: str, ordinal: int) -> str:
    return f"{doc_id}#{ordinal}"


def document_of(chunk_or_vector_id: str) -> str:
    """The document id inside a chunk id (or a vector id: chunk and title vectors are named after their document)."""
    return chunk_or_vector_id.rsplit("#", 1)[0]


TITLE_SUFFIX = "#title"


def title_vector_id(doc_id: str) -> str:
    """The id of a document's title vector in the vector index (the title embedded alone; see Indexer)."""
    return doc_id + TITLE_SUFFIX


def vector_ids(doc_id: str, chunk_ids: list[str]) -> list[str]:
    """Every vector id a document may have in the index: its chunks' and its title's."""
    return [*chunk_ids, title_vector_id(doc_id)]


@dataclass(frozen=True)
class Document:
    id: str
    tenant: str
    source_uri: str
    url: str
    title: str
    topic: str
    generation: int
    latest_version_id: str | None
    live_version_id: str | None
    deleted_at: datetime | None


@dataclass(frozen=True)
class Version:
    id: str
    document_id: str
    tenant: str
    content_hash: str
    generation: int
    title: str
    status: str
    error: str | None
    blocks: list[Block] | None
    chunk_count: int | None
    attempts: int
    timings: dict
    updated_at: datetime | None = None


_DOC_COLUMNS = "id, tenant, source_uri, url, title, topic, generation, latest_version_id, live_version_id, deleted_at"
_VERSION_COLUMNS = ("id, document_id, tenant, content_hash, generation, title, status, error, blocks, chunk_count, "
                    "attempts, timings, updated_at")


def _version(row) -> Version:
    blocks = [Block.from_json(b) for b in row[8]] if row[8] is not None else None
    return Version(*row[:8], blocks, *row[9:])


class DocumentStore:
    def __init__(self, db: Database):
        self._db = db

    # -- reading ----------------------------------------------------------------------------------------------------
    def get_document(self, doc_id: str) -> Document | None:
        with self._db.transaction() as cur:
            cur.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE id = %s", (doc_id,))
            row = cur.fetchone()
        return Document(*row) if row else None

    def get_version(self, ver_id: str, with_blocks: bool = True) -> Version | None:
        columns = _VERSION_COLUMNS if with_blocks else _VERSION_COLUMNS.replace("blocks", "NULL")
        with self._db.transaction() as cur:
            cur.execute(f"SELECT {columns} FROM document_versions WHERE id = %s", (ver_id,))
            row = cur.fetchone()
        return _version(row) if row else None

    def live_versions(self, tenant: str) -> dict[str, str]:
        """{document id: live version id} of the tenant's searchable documents."""
        with self._db.transaction() as cur:
            cur.execute("SELECT id, live_version_id FROM documents WHERE tenant = %s AND live_version_id IS NOT NULL "
                        "AND deleted_at IS NULL", (tenant,))
            return dict(cur.fetchall())

    def chunk_ids(self, doc_id: str) -> list[str]:
        with self._db.transaction() as cur:
            cur.execute("SELECT id FROM chunks WHERE document_id = %s ORDER BY ordinal", (doc_id,))
            return [r[0] for r in cur.fetchall()]

    def unfinished_versions(self, statuses: tuple[str, ...] = ("pending", "queued", "embedding")) -> list[tuple[str, str]]:
        """(version id, tenant) of each document's latest version that is still in one of `statuses`."""
        with self._db.transaction() as cur:
            cur.execute(
                "SELECT v.id, v.tenant FROM documents d JOIN document_versions v ON v.id = d.latest_version_id "
                "WHERE d.deleted_at IS NULL AND v.status = ANY(%s) ORDER BY v.created_at",
                (list(statuses),),
            )
            return [(r[0], r[1]) for r in cur.fetchall()]

    def event_seen(self, event_id: str) -> bool:
        with self._db.transaction() as cur:
            cur.execute("SELECT 1 FROM ingest_events WHERE event_id = %s", (event_id,))
            return cur.fetchone() is not None

    def status(self, tenant: str | None = None, status: str | None = None, limit: int = 500) -> list[dict]:
        """The editor's view: one row per document with its newest version's status and error."""
        where, params = [], []
        if tenant:
            where.append("tenant = %s")
            params.append(tenant)
        if status:
            where.append("status = %s")
            params.append(status)
        sql = "SELECT * FROM document_status" + (" WHERE " + " AND ".join(where) if where else "")
        with self._db.transaction() as cur:
            cur.execute(sql + " ORDER BY updated_at DESC LIMIT %s", (*params, limit))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    # -- the ingest side --------------------------------------------------------------------------------------------
    def record_event(self, event_id: str, event_type: str, tenant: str, source_uri: str, generation: int,
                     outcome: str, detail: str = "", doc_id: str | None = None, ver_id: str | None = None) -> None:
        with _refused("the event record"), self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO ingest_events (event_id, event_type, tenant, source_uri, generation, outcome, detail, "
                "document_id, version_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (event_id, event_type, tenant, source_uri, generation, outcome, detail[:2000], doc_id, ver_id),
            )

    def record_version(self, *, doc_id: str, tenant: str, source_uri: str, url: str, topic: str, title: str,
                       generation: int, content_hash: str, content_type: str, size_bytes: int,
                       blocks: list[Block] | None, status: str, error: str | None = None,
                       timings: dict | None = None) -> Version:
        """Upsert the document and insert its version (a no-op if the version exists); make it the latest.
        Raises RejectedByDatabase when PostgreSQL refuses the data (nothing is written then)."""
        ver_id = version_id(doc_id, content_hash)
        with _refused("the document"), self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO documents (id, tenant, source_uri, url, title, topic, generation) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, topic = EXCLUDED.topic, "
                "generation = GREATEST(documents.generation, EXCLUDED.generation), deleted_at = NULL, "
                "title = CASE WHEN %s THEN EXCLUDED.title ELSE documents.title END, updated_at = now()",
                (doc_id, tenant, source_uri, url, title, topic, generation, status != "failed"),
            )
            cur.execute(
                "INSERT INTO document_versions (id, document_id, tenant, content_hash, generation, content_type, "
                "size_bytes, title, blocks, status, error, timings) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s::jsonb) "
                # The same bytes coming back (an edit reverted) revive the old version as a new appearance.
                "ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation, status = EXCLUDED.status, "
                "error = EXCLUDED.error, blocks = EXCLUDED.blocks, timings = EXCLUDED.timings, "
                "created_at = now(), updated_at = now()",
                (ver_id, doc_id, tenant, content_hash, generation, content_type, size_bytes, title,
                 json.dumps([b.to_json() for b in blocks]) if blocks is not None else None, status, error,
                 json.dumps(timings or {})),
            )
            cur.execute("UPDATE documents SET latest_version_id = %s WHERE id = %s", (ver_id, doc_id))
        return self.get_version(ver_id, with_blocks=False)

    def touch_generation(self, doc_id: str, generation: int) -> None:
        with self._db.transaction() as cur:
            cur.execute("UPDATE documents SET generation = GREATEST(generation, %s), updated_at = now() "
                        "WHERE id = %s", (generation, doc_id))

    def set_status(self, ver_id: str, status: str, error: str | None = None, **timings) -> None:
        with _refused("the status"), self._db.transaction() as cur:
            cur.execute(
                "UPDATE document_versions SET status = %s, error = %s, timings = timings || %s::jsonb, "
                "updated_at = now() WHERE id = %s",
                (status, error, json.dumps(timings), ver_id),
            )

    def start_attempt(self, ver_id: str, **timings) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE document_versions SET status = 'embedding', error = NULL, attempts = attempts + 1, "
                "timings = timings || %s::jsonb, updated_at = now() WHERE id = %s",
                (json.dumps(timings), ver_id),
            )

    def replace_chunks(self, doc: Document, version: Version, chunks: list[Chunk], embedded: int,
                       timings: dict, before_commit: Callable[[], None] | None = None) -> None:
        """Make `version` the live one: its chunks replace every chunk of the document, atomically.

        `before_commit` runs once the chunks are written and before the version is marked ready (it may add to
        `timings`); if it raises, nothing changes. The indexer writes the vectors there, so a version whose chunks
        PostgreSQL refuses never touches the vector index. Raises RejectedByDatabase when PostgreSQL refuses the
        chunks (nothing changes then)."""
        with _refused("the document's chunks"), self._db.transaction() as cur:
            cur.execute("DELETE FROM chunks WHERE document_id = %s", (doc.id,))
            for start in range(0, len(chunks), 200):
                batch = chunks[start : start + 200]
                cur.execute(
                    "INSERT INTO chunks (id, tenant, document_id, version_id, ordinal, title, topic, source_uri, url, "
                    "heading_path, headings, content, token_count, content_hash) "
                    "SELECT c.id, %s, %s, %s, c.ordinal, %s, %s, %s, %s, "
                    "  ARRAY(SELECT json_array_elements_text(c.path::json)), c.headings, c.content, c.tokens, c.hash "
                    "FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[]) "
                    "  AS c(id, ordinal, path, headings, content, tokens, hash)",
                    (
                        doc.tenant, doc.id, version.id, version.title or doc.title, doc.topic, doc.source_uri, doc.url,
                        [c.id for c in batch],
                        [c.ordinal for c in batch],
                        [json.dumps(list(c.heading_path)) for c in batch],
                        [" > ".join(c.heading_path[1:]) for c in batch],
                        [c.text for c in batch],
                        [c.token_count for c in batch],
                        [c.content_hash for c in batch],
                    ),
                )
            if before_commit is not None:
                before_commit()
            cur.execute(
                "UPDATE document_versions SET status = 'ready', error = NULL, chunk_count = %s, embedded_count = %s, "
                "timings = timings || %s::jsonb, updated_at = now() WHERE id = %s",
                (len(chunks), embedded, json.dumps(timings), version.id),
            )
            cur.execute(
                "UPDATE document_versions SET status = 'superseded', updated_at = now() "
                "WHERE document_id = %s AND id <> %s AND status IN ('ready', 'pending', 'queued', 'embedding') "
                "AND created_at <= (SELECT created_at FROM document_versions WHERE id = %s)",
                (doc.id, version.id, version.id),
            )
            cur.execute(
                "UPDATE documents SET live_version_id = %s, title = %s, updated_at = now() WHERE id = %s",
                (version.id, version.title or doc.title, doc.id),
            )

    def delete_document(self, doc_id: str, generation: int) -> None:
        """Remove chunks and versions; keep a tombstone row (with the generation) so late events are seen as stale."""
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM chunks WHERE document_id = %s", (doc_id,))
            cur.execute("DELETE FROM document_versions WHERE document_id = %s", (doc_id,))
            cur.execute(
                "UPDATE documents SET deleted_at = now(), latest_version_id = NULL, live_version_id = NULL, "
                "generation = GREATEST(generation, %s), updated_at = now() WHERE id = %s",
                (generation, doc_id),
            )

    # -- serialising work on one document --------------------------------------------------------------------------
    @contextlib.contextmanager
    def document_lock(self, doc_id: str, wait_seconds: float = 20.0):
        """Hold a session advisory lock on the document; raise TransientError if it stays busy (the task retries)."""
        key = int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:8], "big", signed=True)
        with self._db.connection() as conn:
            cur = conn.cursor()
            deadline = time.monotonic() + wait_seconds
            while True:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                acquired = cur.fetchone()[0]
                conn.commit()
                if acquired:
                    break
                if time.monotonic() > deadline:
                    raise TransientError(f"document {doc_id} is busy (another task holds it)")
                time.sleep(0.1)
            try:
                yield
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
                conn.commit()

    # -- reconciliation ---------------------------------------------------------------------------------------------
    def documents_under(self, uri_prefix: str, tenant: str | None = None) -> list[Document]:
        """Every document (tombstones included) whose source URI starts with `uri_prefix`, e.g. `gs://bucket/`."""
        where, params = ["starts_with(source_uri, %s)"], [uri_prefix]
        if tenant:
            where.append("tenant = %s")
            params.append(tenant)
        with self._db.transaction() as cur:
            cur.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE {' AND '.join(where)} ORDER BY source_uri, tenant",
                        params)
            return [Document(*row) for row in cur.fetchall()]
