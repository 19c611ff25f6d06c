"""The full-text leg: BM25F over PostgreSQL postings, for natural-language questions.

PostgreSQL's own ranking (`ts_rank`) has no inverse document frequency — "how do I" weighs as much as "BW-4012" —
and an OR-query makes it score every row that shares a common word (slow on tens of thousands of chunks).
`plainto_tsquery` instead needs every word to match, and recall collapses. So the question is analysed by
PostgreSQL (same parser, English stemming and stop words as the index), and scored here with BM25F over the
`chunk_terms` postings (one row per chunk and lexeme, maintained by a trigger; infra/migrations/0003):

    tf~   = title_weight * tf_title + heading_weight * tf_heading + tf_body / (1 - b + b * len / avg_len)
    score = sum over the question's lexemes of idf * tf~ * (k1 + 1) / (tf~ + k1)
    idf   = ln(1 + (N - df + 0.5) / (df + 0.5))            (N chunks of the tenant, df chunks with the lexeme)

Any word may match; long chunks do not win by size (`b`); titles and headings count more. Lexemes in more than
`max_df_ratio` of the tenant's chunks are left out (their idf is near zero and their postings are the slow part),
unless nothing else is left. Corpus statistics and document frequencies are cached per instance for `stats_ttl`
seconds: they move slowly, and reading them is most of a query's cost.
"""

from __future__ import annotations

import math
import threading
import time

from shared.db import Database
from shared.retrieval import ChunkHit

_LEXEMES_SQL = "SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS lexeme"
_DF_SQL = ("SELECT t.lexeme, count(*) FROM chunk_terms t WHERE t.tenant = %s AND t.lexeme = ANY(%s) "
           "GROUP BY t.lexeme")
_STATS_SQL = "SELECT count(*), coalesce(avg(token_count), 1) FROM chunks WHERE tenant = %s"


class KeywordSearch:
    def __init__(self, db: Database, *, k1: float = 1.2, b: float = 0.75, title_weight: float = 2.0,
                 heading_weight: float = 1.0, max_df_ratio: float = 0.25, max_terms: int = 16,
                 stats_ttl: float = 60.0):
        self._db = db
        self._k1, self._b = float(k1), float(b)
        self._title_weight, self._heading_weight = float(title_weight), float(heading_weight)
        self._max_df_ratio = max_df_ratio
        self._max_terms = max_terms
        self._ttl = stats_ttl
        self._lock = threading.Lock()
        self._stats: dict[str, tuple[float, int, float]] = {}  # tenant -> (expires, chunks, average length)
        self._df: dict[tuple[str, str], tuple[float, int]] = {}  # (tenant, lexeme) -> (expires, df)

    def search(self, question: str, tenant: str, top_k: int = 50, topics: list[str] | None = None) -> list[ChunkHit]:
        """Chunks matching any (informative) word of the question, best first. A question of stop words only, or
        one whose words the knowledge base does not contain, finds nothing."""
        with self._db.transaction() as cur:
            cur.execute(_LEXEMES_SQL, (question,))
            lexemes = [r[0] for r in cur.fetchall()]
            if not lexemes:
                return []
            chunks, avg_len = self._corpus_stats(cur, tenant)
            weights = self._term_weights(cur, tenant, lexemes, chunks)
            if not weights:
                return []
            cur.execute(self._score_sql(bool(topics)), [list(weights), list(weights.values()), avg_len, tenant,
                                                        *([list(topics)] if topics else []), top_k])
            rows = cur.fetchall()
        return [
            ChunkHit(chunk_id=r[0], document_id=r[1], score=float(r[2]), title=r[3], heading_path=tuple(r[4] or ()),
                     text=r[5], source_uri=r[6], url=r[7], topic=r[8])
            for r in rows
        ]

    def _score_sql(self, with_topics: bool) -> str:
        k1, b = self._k1, self._b
        return f"""
WITH w(lexeme, idf) AS (SELECT * FROM unnest(%s::text[], %s::float8[])),
avg(len) AS (SELECT %s::float8),
scored AS (
    SELECT t.chunk_seq, sum(w.idf * x.tf * {k1 + 1} / (x.tf + {k1})) AS score
    FROM chunk_terms t JOIN w USING (lexeme) CROSS JOIN avg
    CROSS JOIN LATERAL (SELECT {self._title_weight} * t.tf_title + {self._heading_weight} * t.tf_heading
                               + t.tf_body / (1 - {b} + {b} * t.chunk_len / avg.len) AS tf) AS x
    WHERE t.tenant = %s {"AND t.topic = ANY(%s)" if with_topics else ""}
    GROUP BY t.chunk_seq
    ORDER BY score DESC
    LIMIT %s
)
SELECT c.id, c.document_id, s.score, c.title, c.heading_path, c.content, c.source_uri, c.url, c.topic
FROM scored s JOIN chunks c ON c.seq = s.chunk_seq
ORDER BY s.score DESC, c.id
"""

    def _term_weights(self, cur, tenant: str, lexemes: list[str], chunks: int) -> dict[str, float]:
        """idf of each lexeme the tenant's chunks contain, without the too-common ones, rarest first."""
        df = self._document_frequencies(cur, tenant, lexemes)
        present = sorted((lex for lex in lexemes if df.get(lex)), key=lambda lex: (df[lex], lex))
        if not present:
            return {}
        informative = [lex for lex in present if df[lex] <= self._max_df_ratio * chunks] or present[:2]
        return {lex: math.log(1 + (chunks - df[lex] + 0.5) / (df[lex] + 0.5))
                for lex in informative[: self._max_terms]}

    def _document_frequencies(self, cur, tenant: str, lexemes: list[str]) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            known = {lex: hit[1] for lex in lexemes if (hit := self._df.get((tenant, lex))) and hit[0] > now}
        missing = [lex for lex in lexemes if lex not in known]
        if missing:
            cur.execute(_DF_SQL, (tenant, missing))
            fresh = {lex: 0 for lex in missing} | {lex: int(n) for lex, n in cur.fetchall()}
            with self._lock:
                if len(self._df) > 100_000:
                    self._df.clear()
                # A word the knowledge base lacks is asked again next time: it may have just been added.
                self._df.update({(tenant, lex): (now + self._ttl, n) for lex, n in fresh.items() if n})
            known.update(fresh)
        return known

    def _corpus_stats(self, cur, tenant: str) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            hit = self._stats.get(tenant)
        if hit and hit[0] > now:
            return hit[1], hit[2]
        cur.execute(_STATS_SQL, (tenant,))
        chunks, avg_len = cur.fetchone()
        with self._lock:
            self._stats[tenant] = (now + self._ttl, int(chunks), float(avg_len))
        return int(chunks), float(avg_len)
