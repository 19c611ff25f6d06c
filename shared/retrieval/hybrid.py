"""Hybrid retrieval: both legs, fused, exact identifiers first, chunks grouped by document.

    question ──┬─ keyword leg (BM25F over PostgreSQL postings) ──┐
               └─ vector leg (embedding -> vector index) ────────┴─ fuse per chunk -> group by document
    + identifiers in the question found verbatim in a few chunks raise those chunks: quoted strings and codes
      (BW-4012, 0x80070005) put them first, product-like names (SharePoint, SSO) give a smaller boost.

Fusion. Reciprocal-rank fusion throws the scores away and lets a weak leg drag a strong one down (on our benchmark
it scores well below dense retrieval alone). Here each leg's scores are kept and scaled: the vector leg's cosine
similarity is already on an absolute scale; the keyword leg's BM25 score is divided by the best score of the query.
A document scores, per leg, as its best chunk; one found by one leg only gets the other leg's lowest score in this
result list as its estimate (it ranked below everything listed), not zero. The fused score is
`vector_weight * vector + (1 - vector_weight) * keyword`, with most of the weight on the stronger leg (see README,
Benchmarks, for the figures per split).

Whether the documents found answer the question is not decided here: shared.answerability weighs the similarities,
what the passages cover of the question and what the knowledge base has never heard of.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from shared.db import Database
from shared.retrieval import ChunkHit, with_text


@dataclass(frozen=True)
class DocumentHit:
    """One document with its best chunks (in document order) and how it was found."""

    document_id: str
    title: str
    url: str
    source_uri: str
    topic: str
    score: float  # fused; comparable within one result only
    vector_score: float  # best chunk's cosine similarity (0 if the vector leg missed it)
    keyword_score: float  # best chunk's BM25 divided by the query's best (0 if the keyword leg missed it)
    chunks: tuple[ChunkHit, ...]
    exact: bool = False  # an identifier of the question occurs verbatim in it
    best_chunk_id: str = ""  # the chunk that scored best


@dataclass(frozen=True)
class RetrievalResult:
    query: str
    documents: list[DocumentHit]
    identifiers: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    keyword_hits: list[ChunkHit] = field(default_factory=list)  # each leg's chunks, for evaluation and debugging
    vector_hits: list[ChunkHit] = field(default_factory=list)
    exact_hits: list[ChunkHit] = field(default_factory=list)


# --- identifiers ----------------------------------------------------------------------------------------------------
_QUOTED = re.compile(r"[\"“”«»`]([^\"“”«»`\n]{2,80})[\"“”«»`]|(?<![\w'’])'([^'\n]{2,80})'(?![\w'’])")
_CODE = re.compile(r"(?<![\w-])(?=[\w.:/-]*\d)(?=[\w.:/-]*[A-Za-z])[A-Za-z0-9][\w.:/-]*[A-Za-z0-9](?![\w-])"
                   r"|(?<![\w.-])\d{3,}(?![\w-])")
# An error or ticket code rather than a version or a size: two letters and three digits at least (BW-4012,
# EJPAS0017E, CVE-2017-3156), or hexadecimal (0x80070005). "v7.2", "12c", "64bit" and "404" are only names.
_ERROR_CODE = re.compile(r"(?=(?:.*[A-Za-z]){2})(?=(?:.*\d){3}).+|0[xX][0-9A-Fa-f]{4,}")
_NAME = re.compile(r"(?<![\w'’-])(?:[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*|[A-Z]{2,}[A-Z0-9_]*|[A-Z][a-z]{2,})(?![\w'’-])")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n)\s*$")
MAX_IDENTIFIERS = 5
RARE_CHUNKS = 25  # an identifier matching more chunks than this does not identify anything
STRONG = 1.0  # quoted strings and codes with digits: someone typed them on purpose; their chunks lead
# Product-like names (CamelCase, ALLCAPS, a capitalised word inside a sentence): a tie-breaker, not a verdict. On the
# benchmark's dev split a weight of 0.2 cost 0.015 nDCG@10 on techqa (product acronyms match the wrong technotes);
# 0.05 still breaks near-ties in favour of the named product.
NAME = 0.05


def find_identifiers(question: str) -> list[tuple[str, float]]:
    """Candidate identifiers in a question with their weight: quoted strings and error codes (BW-4012, 0x80070005)
    are STRONG; versions and numbers (v7.2, 404) and names (CamelCase, ALLCAPS, or Capitalised words not starting a
    sentence) weigh NAME.
    Whether one identifies anything is decided against the knowledge base (it must be rare there)."""
    found: dict[str, float] = {}
    for match in _QUOTED.finditer(question):
        found.setdefault((match.group(1) or match.group(2)).strip(), STRONG)
    unquoted = _QUOTED.sub(" ", question)
    for match in _CODE.finditer(unquoted):
        code = match.group(0)
        found.setdefault(code, STRONG if _ERROR_CODE.fullmatch(code) else NAME)
    for match in _NAME.finditer(unquoted):
        word = match.group(0)
        if word[1:].islower() and _SENTENCE_START.search(unquoted[: match.start()]):
            continue  # "How ..." at a sentence start is not a name
        found.setdefault(word, NAME)
    return [(text, weight) for text, weight in found.items() if text][:MAX_IDENTIFIERS]


def _verbatim_pattern(identifier: str) -> str:
    """A case-insensitive PostgreSQL regex matching the identifier as a whole token."""
    escaped = re.sub(r"([\\.^$|?*+()\[\]{}-])", r"\\\1", identifier)
    return rf"(^|[^[:alnum:]_]){escaped}($|[^[:alnum:]_])"


_EXACT_SQL = """
SELECT c.id, c.document_id, c.topic
FROM chunks c
WHERE c.tenant = %s AND c.search_vector @@ phraseto_tsquery('english', %s)
  AND (c.content ~* %s OR c.title ~* %s OR c.headings ~* %s) TOPIC_FILTER
LIMIT %s
"""

# --- the retriever --------------------------------------------------------------------------------------------------
class Retriever:
    def __init__(self, db: Database, keyword, vector, *, vector_weight: float = 0.85, candidates: int = 50,
                 chunks_per_document: int = 3):
        self._db = db
        self.keyword = keyword
        self.vector = vector
        self._vector_weight = vector_weight
        self._candidates = candidates
        self._chunks_per_document = chunks_per_document
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="retrieve")  # vector leg, identifiers

    def retrieve(self, query: str, tenant: str, top_k: int = 10, topics: list[str] | None = None) -> RetrievalResult:
        """The `top_k` best documents for a standalone question, best first.

        The legs and the identifier lookup return ids and scores only; the text of the chunks kept is read once,
        after fusion (reading two hundred candidates' text cost more than ranking them)."""
        started = time.perf_counter()
        vector_future = self._pool.submit(self.vector.search, query, tenant, self._candidates, topics,
                                          with_text=False)
        exact_future = self._pool.submit(self._exact_matches, query, tenant, topics)  # while the model embeds
        keyword_hits = self.keyword.search(query, tenant, self._candidates, topics, with_text=False)
        keyword_done = time.perf_counter()
        vector_hits = vector_future.result()
        vector_done = time.perf_counter()
        identifiers, exact = exact_future.result()
        documents = self._with_text(tenant, self.fuse(keyword_hits, vector_hits, exact), top_k)
        finished = time.perf_counter()
        return RetrievalResult(
            query=query, documents=documents, identifiers=identifiers,
            timings={"keyword_ms": _ms(started, keyword_done), "vector_ms": _ms(started, vector_done),
                     "total_ms": _ms(started, finished)},
            keyword_hits=keyword_hits, vector_hits=vector_hits, exact_hits=exact,
        )

    def _with_text(self, tenant: str, ranked: list[DocumentHit], top_k: int) -> list[DocumentHit]:
        """The first `top_k` documents with their chunks' text, title and links. A chunk deleted since the index
        was read (its vector may outlive it for a moment) is left out, and a document left with nothing is
        replaced by the next one."""
        found: list[DocumentHit] = []
        position = 0
        while len(found) < top_k and position < len(ranked):
            batch = ranked[position: position + top_k - len(found)]
            position += len(batch)
            loaded = {h.chunk_id: h for h in with_text(self._db, tenant, [c for d in batch for c in d.chunks])}
            for doc in batch:
                if chunks := tuple(loaded[c.chunk_id] for c in doc.chunks if c.chunk_id in loaded):
                    head = next((c for c in chunks if c.chunk_id == doc.best_chunk_id), chunks[0])
                    found.append(replace(doc, chunks=chunks, title=head.title, url=head.url,
                                         source_uri=head.source_uri, topic=head.topic))
        return found

    def fuse(self, keyword_hits: list[ChunkHit], vector_hits: list[ChunkHit],
             exact: list[ChunkHit] = ()) -> list[DocumentHit]:
        """Documents best first. A document's score per leg is its best chunk's; the legs' scores are fused per
        document (its best keyword chunk and its best vector chunk need not be the same passage), plus the weight of
        the identifiers of the question it contains. Its chunks are listed best first, then in document order."""
        kw_top = max((h.score for h in keyword_hits), default=0.0) or 1.0
        keyword = {h.chunk_id: h.score / kw_top for h in keyword_hits}
        vector = {h.chunk_id: h.score for h in vector_hits}
        boost = {h.chunk_id: h.score for h in exact}
        kw_floor = min(keyword.values(), default=0.0)
        vec_floor = min(vector.values(), default=0.0)
        chunks = {h.chunk_id: h for h in (*exact, *keyword_hits, *vector_hits)}
        w = self._vector_weight

        def chunk_score(cid: str) -> float:  # orders a document's own chunks
            return w * vector.get(cid, vec_floor) + (1 - w) * keyword.get(cid, kw_floor) + boost.get(cid, 0.0)

        by_document: dict[str, list[str]] = {}
        for cid in sorted(chunks, key=lambda c: (-chunk_score(c), c)):
            by_document.setdefault(chunks[cid].document_id, []).append(cid)
        documents = []
        for doc_id, ids in by_document.items():
            best_vector = max((vector[c] for c in ids if c in vector), default=None)
            best_keyword = max((keyword[c] for c in ids if c in keyword), default=None)
            best_boost = max((boost.get(c, 0.0) for c in ids), default=0.0)
            score = (w * (vec_floor if best_vector is None else best_vector)
                     + (1 - w) * (kw_floor if best_keyword is None else best_keyword) + best_boost)
            head = chunks[ids[0]]
            documents.append(DocumentHit(
                document_id=doc_id, title=head.title, url=head.url, source_uri=head.source_uri, topic=head.topic,
                score=score, vector_score=best_vector or 0.0, keyword_score=best_keyword or 0.0,
                chunks=tuple(chunks[c] for c in sorted(ids[: self._chunks_per_document], key=_ordinal)),
                exact=best_boost >= STRONG, best_chunk_id=ids[0],
            ))
        documents.sort(key=lambda d: (-d.score, d.document_id))
        return documents

    def _exact_matches(self, query: str, tenant: str, topics: list[str] | None) -> tuple[list[str], list[ChunkHit]]:
        """Identifiers of the question that occur verbatim in at most RARE_CHUNKS chunks, and those chunks, each
        scored with the summed weight of the identifiers it contains."""
        identifiers = find_identifiers(query)
        if not identifiers:
            return [], []
        matched: list[str] = []
        hits: dict[str, ChunkHit] = {}
        weights: dict[str, float] = {}
        sql = _EXACT_SQL.replace("TOPIC_FILTER", "AND c.topic = ANY(%s)" if topics else "")
        with self._db.transaction() as cur:
            for identifier, weight in identifiers:
                pattern = _verbatim_pattern(identifier)
                cur.execute(sql, [tenant, identifier, pattern, pattern, pattern,
                                  *([list(topics)] if topics else []), RARE_CHUNKS + 1])
                rows = cur.fetchall()
                if not rows or len(rows) > RARE_CHUNKS:
                    continue
                matched.append(identifier)
                for r in rows:
                    weights[r[0]] = weights.get(r[0], 0.0) + weight
                    hits.setdefault(r[0], ChunkHit(chunk_id=r[0], document_id=r[1], score=0.0, topic=r[2]))
        return matched, [replace(hit, score=weights[cid]) for cid, hit in hits.items()]


def _ordinal(chunk_id: str) -> int:
    return int(chunk_id.rsplit("#", 1)[-1]) if chunk_id.rsplit("#", 1)[-1].isdigit() else 0


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
