"""Embedder port (after simonw/llm's EmbeddingModel): adapters implement one method, `embed_batch`; the base class
batches, L2-normalises, and skips texts whose content hash is already in the embedding cache.

Adapters, picked by EMBEDDER: `local` (all-MiniLM-L6-v2 on the CPU, 384 dimensions, offline default),
`gemini` (gemini-embedding-001, EMBEDDING_DIMENSION), `hash` (deterministic hashing fake for tests).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.models import content_hash

DOCUMENT = "document"
QUERY = "query"


@dataclass
class EmbeddingResult:
    vectors: list[list[float]]  # one per text, in order; empty when `remaining` > 0
    computed: int  # how many texts needed the model (cache misses)
    remaining: int = 0  # distinct texts still without a vector when `stop` ended the work early


class Embedder(abc.ABC):
    """Turns texts into unit-length vectors of a fixed dimension."""

    #: Identifies the vector space; part of the cache key (a different model or dimension never shares vectors).
    key: str
    dimension: int
    batch_size: int = 64

    @abc.abstractmethod
    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        """Embed at most `batch_size` texts as `kind` (DOCUMENT or QUERY); raise TransientError on throttling."""

    @property
    def cache_key(self) -> str:
        """The embedding cache's model key for passages of this embedder."""
        return f"{self.key}:{DOCUMENT}"

    def uncached(self, texts: Sequence[str], cache=None) -> int:
        """How many distinct texts have no vector in the cache yet (all of them without a cache)."""
        hashes = {content_hash(t) for t in texts}
        return len(hashes - cache.has_many(self.cache_key, hashes)) if cache is not None else len(hashes)

    def embed_documents(self, texts: Sequence[str], cache=None,
                        stop: Callable[[], bool] | None = None) -> EmbeddingResult:
        """Embed passages for the index, reusing cached vectors by content hash.

        Batches are embedded in turn and each batch's vectors go to the cache as soon as it is done, so a call that
        dies part-way loses only the batch in flight. `stop`, asked after each batch (so every call makes progress),
        ends the work early: the result then has `remaining` > 0 and no vectors, and the next call continues from the
        cache where this one stopped."""
        hashes = [content_hash(t) for t in texts]
        by_hash = dict(zip(hashes, texts))
        have = cache.has_many(self.cache_key, set(by_hash)) if cache is not None else set()
        missing = [h for h in by_hash if h not in have]
        fresh: dict[str, list[float]] = {}
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            vectors = dict(zip(batch, (normalise(v) for v in self.embed_batch([by_hash[h] for h in batch], DOCUMENT))))
            if cache is not None:
                cache.put_many(self.cache_key, vectors)
            fresh.update(vectors)
            left = len(missing) - len(fresh)
            if left and stop is not None and stop():
                return EmbeddingResult(vectors=[], computed=len(fresh), remaining=left)
        known = cache.get_many(self.cache_key, have) if cache is not None and have else {}
        known.update(fresh)
        return EmbeddingResult(vectors=[known[h] for h in hashes], computed=len(fresh))

    def embed_query(self, text: str) -> list[float]:
        return normalise(self.embed_batch([text], QUERY)[0])


def normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [float(v) / norm for v in vector]


def create_embedder(settings, for_queries: bool = False) -> Embedder:
    """The adapter EMBEDDER names (explicit mapping, no discovery). `for_queries`: the instance embeds one short
    question at a time (chat); the local model then uses one CPU thread unless LOCAL_EMBEDDING_THREADS says
    otherwise — several threads buy nothing on a dozen tokens and, with concurrent requests or a busy CPU, spin
    against each other (measured here: 23 ms with one thread, 480 ms with two on a loaded 2-core machine)."""
    if settings.embedder == "local":
        from shared.embeddings.local import LocalEmbedder

        threads = settings.local_embedding_threads or (1 if for_queries else 0)
        return LocalEmbedder(threads=threads, batch_size=settings.embed_batch_size,
                             runtime=settings.local_embedding_runtime)
    if settings.embedder == "gemini":
        from shared.embeddings.gemini import GeminiEmbedder

        return GeminiEmbedder.from_settings(settings)
    if settings.embedder == "hash":
        from shared.embeddings.hashing import HashingEmbedder

        return HashingEmbedder()
    raise ValueError(f"unknown EMBEDDER {settings.embedder!r}")
