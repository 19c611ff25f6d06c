-- Documents, their versions, chunks with a weighted full-text column, the embedding cache and the ingest audit log.
-- Every row carries a tenant (site) id.

CREATE TABLE documents (
    id                text PRIMARY KEY,              -- derived from (tenant, source_uri): stable across versions
    tenant            text NOT NULL,
    source_uri        text NOT NULL,                 -- gs://bucket/path/file.md
    url               text NOT NULL DEFAULT '',      -- public URL when known (scraped pages), shown in citations
    title             text NOT NULL DEFAULT '',
    topic             text NOT NULL DEFAULT '',      -- the top-level folder, e.g. "billing"
    generation        bigint NOT NULL DEFAULT 0,     -- newest storage generation seen; older events are stale
    latest_version_id text,                          -- newest version recorded (may be pending or failed)
    live_version_id   text,                          -- version whose chunks are searchable
    deleted_at        timestamptz,                   -- tombstone: chunks and vectors are gone
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, source_uri)
);

CREATE TABLE document_versions (
    id              text PRIMARY KEY,                -- derived from (document id, content hash)
    document_id     text NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    tenant          text NOT NULL,
    content_hash    text NOT NULL,                   -- sha256 of the file's bytes
    generation      bigint NOT NULL,
    content_type    text NOT NULL DEFAULT '',
    size_bytes      bigint NOT NULL DEFAULT 0,
    title           text NOT NULL DEFAULT '',
    blocks          jsonb,                           -- parsed content (NULL when parsing failed)
    status          text NOT NULL CHECK (status IN ('pending', 'queued', 'embedding', 'ready', 'failed', 'superseded')),
    error           text,                            -- readable reason when failed
    chunk_count     integer,
    embedded_count  integer,                         -- chunks that needed a new embedding (cache misses)
    attempts        integer NOT NULL DEFAULT 0,      -- embed task runs
    timings         jsonb NOT NULL DEFAULT '{}',     -- milliseconds per stage
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX document_versions_document_idx ON document_versions (document_id, created_at DESC);
CREATE INDEX document_versions_status_idx ON document_versions (status, updated_at DESC);

CREATE TABLE chunks (
    id            text PRIMARY KEY,                  -- "{document_id}#{ordinal}": a retry or a new version overwrites
    tenant        text NOT NULL,
    document_id   text NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    version_id    text NOT NULL,
    ordinal       integer NOT NULL,
    title         text NOT NULL,
    topic         text NOT NULL DEFAULT '',
    source_uri    text NOT NULL,
    url           text NOT NULL DEFAULT '',
    heading_path  text[] NOT NULL DEFAULT '{}',
    headings      text NOT NULL DEFAULT '',          -- heading path below the title, joined, for full-text weight B
    content       text NOT NULL,
    token_count   integer NOT NULL,
    content_hash  text NOT NULL,                     -- of the embedded text; the embedding cache key
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', headings), 'B')
        || setweight(to_tsvector('english', content), 'D')
    ) STORED,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chunks_search_idx ON chunks USING gin (search_vector);
CREATE INDEX chunks_document_idx ON chunks (document_id, ordinal);
CREATE INDEX chunks_tenant_topic_idx ON chunks (tenant, topic);

CREATE TABLE embedding_cache (
    model         text NOT NULL,                     -- embedder key incl. dimension and task type
    content_hash  text NOT NULL,
    embedding     bytea NOT NULL,                    -- float32 little-endian
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, content_hash)
);

CREATE TABLE ingest_events (
    event_id     text PRIMARY KEY,                   -- CloudEvent id: a redelivered event is a no-op
    event_type   text NOT NULL,
    tenant       text NOT NULL,
    source_uri   text NOT NULL,
    generation   bigint NOT NULL DEFAULT 0,
    outcome      text NOT NULL,                      -- recorded | unchanged | stale | deleted | failed | ignored
    detail       text NOT NULL DEFAULT '',
    document_id  text,
    version_id   text,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_events_source_idx ON ingest_events (tenant, source_uri, received_at DESC);

-- What an editor reads: one row per document with its newest version's status.
CREATE VIEW document_status AS
SELECT d.tenant,
       d.source_uri,
       d.title,
       d.topic,
       CASE WHEN d.deleted_at IS NOT NULL THEN 'deleted' ELSE v.status END AS status,
       v.error,
       v.chunk_count,
       (d.live_version_id IS NOT NULL AND d.live_version_id = d.latest_version_id) AS live_is_latest,
       d.id AS document_id,
       v.id AS version_id,
       COALESCE(v.updated_at, d.updated_at) AS updated_at
FROM documents d
LEFT JOIN document_versions v ON v.id = d.latest_version_id;
