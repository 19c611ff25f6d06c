"""Embedding cache in PostgreSQL, keyed by (embedder key, content hash): an unchanged chunk is never embedded twice,
across versions, documents and benchmark reruns. Rows are only ever added (a vector is a pure function of the model
and the text), which is what lets an interrupted embed call resume from the batches it stored."""

from __future__ import annotations

from array import array

from shared.db import Database


def _pack(vector: list[float]) -> bytes:
    return array("f", vector).tobytes()


def _unpack(data: bytes) -> list[float]:
    values = array("f")
    values.frombytes(bytes(data))
    return values.tolist()


class EmbeddingCache:
    def __init__(self, db: Database):
        self._db = db

    def get_many(self, model: str, hashes: set[str]) -> dict[str, list[float]]:
        if not hashes:
            return {}
        with self._db.transaction() as cur:
            cur.execute(
                "SELECT content_hash, embedding FROM embedding_cache WHERE model = %s AND content_hash = ANY(%s)",
                (model, list(hashes)),
            )
            return {h: _unpack(data) for h, data in cur.fetchall()}

    def has_many(self, model: str, hashes: set[str]) -> set[str]:
        """Which of these content hashes have a vector (without reading the vectors)."""
        if not hashes:
            return set()
        with self._db.transaction() as cur:
            cur.execute("SELECT content_hash FROM embedding_cache WHERE model = %s AND content_hash = ANY(%s)",
                        (model, list(hashes)))
            return {r[0] for r in cur.fetchall()}

    def put_many(self, model: str, vectors: dict[str, list[float]]) -> None:
        if not vectors:
            return
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO embedding_cache (model, content_hash, embedding) "
                "SELECT %s, h, e FROM unnest(%s::text[], %s::bytea[]) AS t(h, e) ON CONFLICT DO NOTHING",
                (model, list(vectors), [_pack(v) for v in vectors.values()]),
            )
