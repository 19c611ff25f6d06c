"""Retrieval over the knowledge base: a full-text leg on PostgreSQL and a vector leg through the vector-index port.

    keyword.KeywordSearch   natural-language questions against the weighted `search_vector` (any word may match;
                            title > headings > body; length-normalised so long documents do not swamp short ones)
    vector.VectorSearch     the question's embedding against the vector index, hits joined to their chunks
    hybrid.Retriever        both legs fused per document, exact identifiers first, chunks grouped by document;
                            the legs return ids and scores, and only the returned documents' text is read
    ChunkHit                what both legs return, best first
"""

from __future__ import annotations

from dataclasses import dataclass


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
