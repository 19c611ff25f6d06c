-- The pgvector index (VECTOR_BACKEND=pgvector): one row per chunk vector, a namespace per tenant, like Pinecone.
-- The dimension is fixed by the first upsert (vector_index_meta) and enforced by the adapter; the HNSW index is
-- created by the adapter for that dimension.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE chunk_vectors (
    namespace  text NOT NULL,
    id         text NOT NULL,
    embedding  vector NOT NULL,
    metadata   jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (namespace, id)
);
CREATE INDEX chunk_vectors_metadata_idx ON chunk_vectors USING gin (metadata jsonb_path_ops);

CREATE TABLE vector_index_meta (
    name       text PRIMARY KEY,
    dimension  integer NOT NULL CHECK (dimension > 0)
);
