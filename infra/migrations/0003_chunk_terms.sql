-- BM25 postings for the full-text leg. PostgreSQL ranking (ts_rank) has no inverse document frequency and scores
-- every row an OR-query matches, which is slow and ranks "the account" like "BW-4012". One row per (chunk, lexeme)
-- with the lexeme's frequency in each weighted field lets a query read only the postings of its rarer words and
-- score them with BM25F (shared/retrieval/keyword.py).
--
-- The rows derive from chunks.search_vector (same parser, English stemming, stop words): a statement trigger adds them
-- when chunks are inserted, and deleting a chunk cascades. Nothing in the application writes this table.

ALTER TABLE chunks ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE chunks ADD CONSTRAINT chunks_seq_key UNIQUE (seq);

CREATE TABLE chunk_terms (
    tenant      text NOT NULL,
    lexeme      text NOT NULL,
    chunk_seq   bigint NOT NULL REFERENCES chunks (seq) ON DELETE CASCADE,
    topic       text NOT NULL,
    tf_title    smallint NOT NULL,   -- occurrences in the title (weight A)
    tf_heading  smallint NOT NULL,   -- in the headings above the chunk (weight B)
    tf_body     smallint NOT NULL,   -- in the chunk's text (weight D)
    chunk_len   smallint NOT NULL,   -- the chunk's length in tokens (chunks.token_count), for length normalisation
    PRIMARY KEY (tenant, lexeme, chunk_seq)
);
-- Deleting chunks finds their postings through this index (the cascade).
CREATE INDEX chunk_terms_chunk_idx ON chunk_terms (chunk_seq);

CREATE FUNCTION chunk_terms_rows(new_chunks_seq bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO chunk_terms (tenant, lexeme, chunk_seq, topic, tf_title, tf_heading, tf_body, chunk_len)
    SELECT c.tenant, t.lexeme, c.seq, c.topic,
           LEAST(cardinality(array_positions(t.weights, 'A')), 32767),
           LEAST(cardinality(array_positions(t.weights, 'B')), 32767),
           LEAST(cardinality(array_positions(t.weights, 'D')), 32767),
           LEAST(c.token_count, 32767)
    FROM chunks c CROSS JOIN LATERAL unnest(c.search_vector) AS t
    WHERE c.seq = ANY(new_chunks_seq)
$$;

CREATE FUNCTION chunk_terms_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM chunk_terms_rows(ARRAY(SELECT seq FROM new_chunks));
    RETURN NULL;
END
$$;

CREATE TRIGGER chunk_terms_insert AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS new_chunks FOR EACH STATEMENT EXECUTE FUNCTION chunk_terms_after_insert();

-- Chunks are replaced by delete + insert, never updated in place; refuse an update that would leave postings stale.
CREATE FUNCTION chunk_terms_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'chunks are immutable: delete and insert instead (chunk_terms derive from them)';
END
$$;
CREATE TRIGGER chunk_terms_no_update BEFORE UPDATE OF content, title, headings, tenant, topic ON chunks
    FOR EACH ROW EXECUTE FUNCTION chunk_terms_refuse_update();

-- Chunks indexed before this migration.
SELECT chunk_terms_rows(ARRAY(SELECT seq FROM chunks));
