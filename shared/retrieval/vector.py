"""The vector leg: the question's embedding against the vector index (Pinecone or pgvector), hits joined to their
chunks in PostgreSQL (the index holds ids and filter metadata, never text).

A document has a vector per chunk and one for its title alone (`{document}#title`, see the Indexer). A title hit
stands for the document's first chunk; when both match, the chunk keeps the better score."""

from __future__ import annotations

from shared.db import Database
from shared.documents import TITLE_SUFFIX, chunk_id, document_of
from shared.retrieval import ChunkHit


class VectorSearch:
    def __init__(self, db: Database, embedder, index):
        self._db = db
        self._embedder = embedder
        self._index = index

    def search(self, question: str, tenant: str, top_k: int = 50, topics: list[str] | None = None, *,
               with_text: bool = True) -> list[ChunkHit]:
        """Chunks nearest to the question, best first (cosine similarity). `with_text=False` skips the database:
        ids, scores and topics come from the index (the hybrid retriever loads the text of the chunks it keeps)."""
        vector = self._embedder.embed_query(question)
        flt = {"topic": {"$in": list(topics)}} if topics else None
        matches = self._index.query(tenant, vector, top_k=top_k, filter=flt)
        if not matches:
            return []
        best: dict[str, float] = {}
        topic: dict[str, str] = {}
        for match in matches:
            target = chunk_id(match.id[: -len(TITLE_SUFFIX)], 0) if match.id.endswith(TITLE_SUFFIX) else match.id
            best[target] = max(best.get(target, float("-inf")), match.score)
            topic[target] = str(match.metadata.get("topic") or "")
        if not with_text:
            hits = [ChunkHit(chunk_id=cid, document_id=document_of(cid), score=score, topic=topic[cid])
                    for cid, score in best.items()]
            return sorted(hits, key=lambda h: -h.score)
        with self._db.transaction() as cur:
            cur.execute(
                "SELECT id, document_id, title, heading_path, content, source_uri, url, topic FROM chunks "
                "WHERE tenant = %s AND id = ANY(%s)",
                (tenant, list(best)),
            )
            rows = {r[0]: r for r in cur.fetchall()}
        # A vector whose chunk is gone (a delete racing this query) is skipped rather than shown without text.
        hits = [
            ChunkHit(chunk_id=cid, document_id=r[1], score=score, title=r[2], heading_path=tuple(r[3] or ()),
                     text=r[4], source_uri=r[5], url=r[6], topic=r[7])
            for cid, score in best.items()
            if (r := rows.get(cid)) is not None
        ]
        return sorted(hits, key=lambda h: -h.score)
