"""The full-text leg: PostgreSQL text search that works for natural-language questions.

`plainto_tsquery` and `websearch_to_tsquery` require every word of a question to match, and recall collapses; here
the question's lexemes (English stemming, stop words dropped) are OR-ed, so any word may match, and `ts_rank` ranks
with the column's weights (title A 1.0, headings B 0.4, body D 0.1) and normalisation 1 (divided by 1 + log of the
chunk's length) so that long chunks do not win by size alone. See ../shared/notes/local-stack.md for the figures
behind these choices.
"""

from __future__ import annotations

from shared.db import Database
from shared.retrieval import ChunkHit

# ts_rank weights for {D, C, B, A}: body, (unused), headings, title.
WEIGHTS = "{0.1, 0.2, 0.4, 1.0}"
NORMALISATION = 1  # divide by 1 + log(length)

_SQL = f"""
WITH q AS (
    SELECT (string_agg(quote_literal(lexeme), ' | '))::tsquery AS query
    FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS lexeme
)
SELECT c.id, c.document_id, ts_rank('{WEIGHTS}', c.search_vector, q.query, {NORMALISATION}) AS score,
       c.title, c.heading_path, c.content, c.source_uri, c.url, c.topic
FROM chunks c, q
WHERE q.query IS NOT NULL AND c.search_vector @@ q.query AND c.tenant = %s TOPIC_FILTER
ORDER BY score DESC, c.id
LIMIT %s
"""


class KeywordSearch:
    def __init__(self, db: Database):
        self._db = db

    def search(self, question: str, tenant: str, top_k: int = 50, topics: list[str] | None = None) -> list[ChunkHit]:
        """Chunks matching any word of the question, best first. An empty or all-stop-word question finds nothing."""
        params: list = [question, tenant]
        topic_filter = ""
        if topics:
            topic_filter = "AND c.topic = ANY(%s)"
            params.append(list(topics))
        params.append(top_k)
        with self._db.transaction() as cur:
            cur.execute(_SQL.replace("TOPIC_FILTER", topic_filter), params)
            rows = cur.fetchall()
        return [
            ChunkHit(chunk_id=r[0], document_id=r[1], score=float(r[2]), title=r[3], heading_path=tuple(r[4] or ()),
                     text=r[5], source_uri=r[6], url=r[7], topic=r[8])
            for r in rows
        ]
