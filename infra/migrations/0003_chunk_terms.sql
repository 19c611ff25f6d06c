-- BM25 postings for the full-text leg. PostgreSQL ranking (ts_rank) has no inverse document frequency and scores
-- every row an OR-query matches, which is slow and ranks "the account" like "BW-4012". Here each (chunk, lexeme)
-- pair is one row carrying the lexeme's BM25F impact in that chunk, and a query reads, per lexeme of the question,
-- only its highest-impact postings (an index scan), multiplies them by the lexeme's idf and adds them up
-- (shared/retrieval/keyword.py).
--
--   tf     = 2 * occurrences in the title (weight A) + 1 * in the headings (B)
--            + occurrences in the body (D) / (1 - b + b * chunk tokens / 175)       -- 175: a typical chunk
--   impact = tf * (k1 + 1) / (tf + k1)                                            -- k1 = 1.2, b = 0.75
--
-- The rows derive from chunks.search_vector (same parser, English stemming, stop words): a statement trigger adds them
-- when chunks are inserted, and deleting a chunk cascades. Nothing in the application writes this table; to change
-- the formula, change chunk_terms_rows() in a new migration and rebuild with it.

ALTER TABLE chunks ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE chunks ADD CONSTRAINT chunks_seq_key UNIQUE (seq);

CREATE TABLE chunk_terms (
    tenant     text NOT NULL,
    lexeme     text NOT NULL,
    impact     real NOT NULL,
    chunk_seq  bigint NOT NULL REFERENCES chunks (seq) ON DELETE CASCADE,
    topic      text NOT NULL
);
-- A query's read path: one lexeme's postings, highest impact first, without touching the table.
CREATE INDEX chunk_terms_lexeme_idx ON chunk_terms (tenant, lexeme, impact DESC) INCLUDE (chunk_seq, topic);
-- Deleting chunks finds their postings through this index (the cascade).
CREATE INDEX chunk_terms_chunk_idx ON chunk_terms (chunk_seq);

CREATE FUNCTION chunk_terms_rows(new_chunks_seq bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO chunk_terms (tenant, lexeme, impact, chunk_seq, topic)
    SELECT c.tenant, t.lexeme, x.tf * 2.2 / (x.tf + 1.2), c.seq, c.topic
    FROM chunks c
    CROSS JOIN LATERAL unnest(c.search_vector) AS t
    CROSS JOIN LATERAL (
        SELECT 2.0 * cardinality(array_positions(t.weights, 'A'))
               + 1.0 * cardinality(array_positions(t.weights, 'B'))
               + cardinality(array_positions(t.weights, 'D')) / (0.25 + 0.75 * c.token_count / 175.0) AS tf
    ) AS x
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
CREATE TRIGGER chunk_terms_no_update BEFORE UPDATE OF content, title, headings, tenant, topic, token_count ON chunks
    FOR EACH ROW EXECUTE FUNCTION chunk_terms_refuse_update();

-- Chunks indexed before this migration.
SELECT chunk_terms_rows(ARRAY(SELECT seq FROM chunks));
