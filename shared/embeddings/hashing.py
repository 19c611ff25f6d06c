"""A deterministic embedder for tests (like llm's EmbedDemo): hashed word unigrams and bigrams.

Texts sharing words are closer than unrelated texts, so retrieval tests mean something, with no model to load.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from shared.embeddings import Embedder

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder(Embedder):
    def __init__(self, dimension: int = 256):
        self.dimension = dimension
        self.key = f"hash@{dimension}"
        self.calls: list[int] = []  # batch sizes, for tests

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        self.calls.append(len(texts))
        return [self._embed(t) for t in texts]

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimension
        words = _WORD.findall(text.lower())
        for feature in words + [a + " " + b for a, b in zip(words, words[1:])]:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dimension
            vector[slot] += 1.0 if digest[4] & 1 else -1.0
        if not any(vector):
            vector[0] = 1.0
        return vector
