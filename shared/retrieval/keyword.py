"""The full-text leg: BM25F over PostgreSQL postings, for natural-language questions.

PostgreSQL's own ranking (`ts_rank`) has no inverse document frequency — "how do I" weighs as much as "BW-4012" —
and an OR-query makes it score every row that shares a common word (hundreds of milliseconds on tens of thousands
of chunks). `plainto_tsquery` instead needs every word to match, and recall collapses. So the question is analysed
by PostgreSQL (same parser, English stemming and stop words as the index) and scored here with BM25F over the
`chunk_terms` postings, one row per chunk and lexeme carrying the lexeme's BM25F impact in that chunk (title and
headings weigh more than body text, long chunks are length-normalised; see infra/migrations/0003):

    score(chunk) = sum over the question's lexemes of idf(lexeme) * impact(lexeme, chunk)
    idf          = ln(1 + (N - df + 0.5) / (df + 0.5))    (N chunks of the tenant, df chunks with the lexeme)

Any word may match. Each lexeme contributes only its `postings_per_term` highest-impact postings (an index scan in
impact order, so a common word costs a bounded read), and lexemes in more than `max_df_ratio` of the tenant's chunks
are left out unless nothing else is left. Corpus size and document frequencies are cached per instance for
`stats_ttl` seconds: they move slowly, and reading them is most of a query's cost.
"""

from __future__ import annotations

import math
import threading
import time

from shared.db import Database
from shared.retrieval import ChunkHit
from shared.retrieval import with_text as with_text_of

_LEXEMES_SQL = "SELECT DISTINCT lexeme FROM unnest(tsvector_to_array(to_tsvector('english', %s))) AS lexeme"
_DF_SQL = ("SELECT t.lexeme, count(*) FROM chunk_terms t WHERE t.tenant = %s AND t.lexeme = ANY(%s) "
           "GROUP BY t.lexeme")
_COUNT_SQL = "SELECT count(*) FROM chunks WHERE tenant = %s"
# Each word of a text with its lexemes (empty for a stop word), as the index analysed it.
_TOKENS_SQL = ("SELECT lower(token), lexemes FROM ts_debug('english', %s) "
               "WHERE lexemes IS NOT NULL AND cardinality(lexemes) > 0")


class KeywordSearch:
    def __init__(self, db: Database, *, postings_per_term: int = 2000, max_df_ratio: float = 0.5,
                 max_terms: int = 16, stats_ttl: float = 60.0):
        self._db = db
        self._postings_per_term = postings_per_term
        self._max_df_ratio = max_df_ratio
        self._max_terms = max_terms
        self._ttl = stats_ttl
        self._lock = threading.Lock()
        self._stats: dict[str, tuple[float, int]] = {}  # tenant -> (expires, chunks)
        self._df: dict[tuple[str, str], tuple[float, int]] = {}  # (tenant, lexeme) -> (expires, df)

    def search(self, question: str, tenant: str, top_k: int = 50, topics: list[str] | None = None, *,
               with_text: bool = True) -> list[ChunkHit]:
        """Chunks matching any (informative) word of the question, best first. A question of stop words only, or
        one whose words the knowledge base does not contain, finds nothing. `with_text=False` returns ids, scores
        and topics only (the hybrid retriever loads the text of the few chunks it keeps: reading a hundred chunks'
        text costs more than ranking them)."""
        with self._db.transaction() as cur:
            cur.execute(_LEXEMES_SQL, (question,))
            lexemes = [r[0] for r in cur.fetchall()]
            if not lexemes:
                return []
            weights = self._term_weights(cur, tenant, lexemes, self._chunk_count(cur, tenant))
            if not weights:
                return []
            cur.execute(_score_sql(bool(topics)), [list(weights), list(weights.values()), tenant,
                                                   *([list(topics)] if topics else []), self._postings_per_term,
                                                   top_k])
            hits = [ChunkHit(chunk_id=r[0], document_id=r[1], score=float(r[2]), topic=r[3]) for r in cur.fetchall()]
        return with_text_of(self._db, tenant, hits) if with_text else hits

    def term_frequencies(self, tenant: str, text: str) -> tuple[int, dict[str, int]]:
        """(chunks of the tenant, {lower-cased word of `text`: chunks containing it}) as the index analyses the
        text — the statistics BM25 uses, cached the same way. A word the knowledge base lacks maps to 0."""
        with self._db.transaction() as cur:
            cur.execute(_TOKENS_SQL, (text,))
            tokens: dict[str, list[str]] = {}
            for token, lexemes in cur.fetchall():  # "-2110" in "BW-2110" is a signed integer to the parser
                tokens.setdefault(token.strip("-+"), list(lexemes))
            chunks = self._chunk_count(cur, tenant)
            lexemes = sorted({lex for found in tokens.values() for lex in found})
            df = self._document_frequencies(cur, tenant, lexemes)
        return chunks, {token: max(df.get(lex, 0) for lex in found) for token, found in tokens.items()}

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

    def _chunk_count(self, cur, tenant: str) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._stats.get(tenant)
        if hit and hit[0] > now:
            return hit[1]
        cur.execute(_COUNT_SQL, (tenant,))
        chunks = int(cur.fetchone()[0])
        with self._lock:
            self._stats[tenant] = (now + self._ttl, chunks)
        return chunks


def _score_sql(with_topics: bool) -> str:
    return f"""
WITH scored AS (
    SELECT p.chunk_seq, sum(w.idf * p.impact) AS score
    FROM unnest(%s::text[], %s::float8[]) AS w(lexeme, idf)
    CROSS JOIN LATERAL (
        SELECT t.chunk_seq, t.impact FROM chunk_terms t
        WHERE t.tenant = %s AND t.lexeme = w.lexeme {"AND t.topic = ANY(%s)" if with_topics else ""}
        ORDER BY t.impact DESC
        LIMIT %s
    ) AS p
    GROUP BY p.chunk_seq
    ORDER BY score DESC
    LIMIT %s
)
SELECT c.id, c.document_id, s.score, c.topic
FROM scored s JOIN chunks c ON c.seq = s.chunk_seq
ORDER BY s.score DESC, c.id
"""
