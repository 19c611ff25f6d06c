"""The vector leg: the question's embedding against the vector index (Pinecone or pgvector). The index holds ids and
filter metadata, never text: a chunk's text comes from PostgreSQL, when asked for.

A document has a vector per chunk and one for its title alone (`{document}#title`, see the Indexer). A title hit
stands for the document's first chunk; when both match, the chunk keeps the better score."""

from __future__ import annotations

import functools

from shared.db import Database
from shared.documents import TITLE_SUFFIX, chunk_id, document_of
from shared.retrieval import ChunkHit
from shared.retrieval import with_text as with_text_of


class VectorSearch:
    def __init__(self, db: Database, embedder, index):
        self._db = db
        self._embedder = embedder
        self._index = index
        # The answerability gate embeds the question's passages in the same space and needs the question's vector:
        # the last questions' vectors are kept rather than embedded twice (a model call with Gemini).
        self.embed_question = functools.lru_cache(maxsize=256)(embedder.embed_query)

    @property
    def embedder(self):
        return self._embedder

    @property
    def embedder_key(self) -> str:
        """The key of the embedder questions are embedded with (its model and dimension)."""
        return self._embedder.key

    def search(self, question: str, tenant: str, top_k: int = 50, topics: list[str] | None = None, *,
               with_text: bool = True) -> list[ChunkHit]:
        """Chunks nearest to the question, best first (cosine similarity). `with_text=False` skips the database:
        ids, scores and topics come from the index (the hybrid retriever loads the text of the chunks it keeps)."""
        vector = self.embed_question(question)
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
        hits = sorted((ChunkHit(chunk_id=cid, document_id=document_of(cid), score=score, topic=topic[cid])
                       for cid, score in best.items()), key=lambda h: -h.score)
        return with_text_of(self._db, tenant, hits) if with_text else hits
