"""Retrieval over the knowledge base: a full-text leg on PostgreSQL and a vector leg through the vector-index port.

    keyword.KeywordSearch   natural-language questions against the weighted `search_vector` (any word may match;
                            title > headings > body; length-normalised so long documents do not swamp short ones)
    vector.VectorSearch     the question's embedding against the vector index
    hybrid.Retriever        both legs fused per document, exact identifiers first, chunks grouped by document;
                            the legs return ids and scores, and only the returned documents' text is read
    ChunkHit                what both legs return, best first
    with_text               hits completed with their chunks' text, title and links, in one query
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ChunkHit:
    """A chunk found by one leg: its score is comparable only within that leg's result list."""

    chunk_id: str
    document_id: str
    score: float
    title: str = ""
    heading_path: tuple[str, ...] = ()
    text: str = ""
    source_uri: str = ""
    url: str = ""
    topic: str = ""


_TEXT_SQL = ("SELECT id, title, heading_path, content, source_uri, url, topic FROM chunks "
             "WHERE tenant = %s AND id = ANY(%s)")


def with_text(db, tenant: str, hits: Sequence[ChunkHit]) -> list[ChunkHit]:
    """`hits`, in their order, with their chunks' text, title, headings and links. A hit whose chunk is gone (deleted
    since the index answered: a vector may outlive its chunk for a moment) is left out, never shown without text."""
    if not hits:
        return []
    with db.transaction() as cur:
        cur.execute(_TEXT_SQL, (tenant, [h.chunk_id for h in hits]))
        rows = {r[0]: r for r in cur.fetchall()}
    return [replace(h, title=r[1], heading_path=tuple(r[2] or ()), text=r[3], source_uri=r[4], url=r[5], topic=r[6])
            for h in hits if (r := rows.get(h.chunk_id)) is not None]
