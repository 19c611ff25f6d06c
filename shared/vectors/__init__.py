"""Vector-index port: one vector per chunk (id = chunk id), metadata for filtering, a namespace per tenant.

Adapters: `pinecone` (production) and `pgvector` (local default; a supported production choice on Cloud SQL), picked
by VECTOR_BACKEND. Both refuse vectors whose dimension differs from the index's with `DimensionMismatch`.

Filters use Pinecone's syntax, restricted to what both adapters support: `{"field": value}`,
`{"field": {"$eq": v}}`, `{"field": {"$in": [..]}}` and `{"$and": [...]}`.
"""

from __future__ import annotations

import abc

from shared.errors import DimensionMismatch
from shared.models import VectorMatch, VectorRecord


class VectorIndex(abc.ABC):
    """A similarity index over chunk vectors."""

    name = "vector index"

    @abc.abstractmethod
    def dimension(self) -> int | None:
        """The index's dimension, or None while an index that takes its dimension from the first upsert is empty."""

    @abc.abstractmethod
    def _upsert(self, namespace: str, records: list[VectorRecord]) -> None: ...

    @abc.abstractmethod
    def _query(self, namespace: str, vector: list[float], top_k: int, filter: dict | None) -> list[VectorMatch]: ...

    @abc.abstractmethod
    def delete(self, namespace: str, ids: list[str]) -> None:
        """Delete vectors by id; ids that do not exist are ignored."""

    @abc.abstractmethod
    def fetch_ids(self, namespace: str, ids: list[str]) -> set[str]:
        """Which of these ids the index holds (for audits and tests)."""

    def upsert(self, namespace: str, records: list[VectorRecord]) -> None:
        """Insert or overwrite vectors by id."""
        if not records:
            return
        self.check_dimension(len(records[0].values))
        for record in records:
            if len(record.values) != len(records[0].values):
                raise DimensionMismatch(f"vectors in one upsert differ in dimension ({record.id})")
        self._upsert(namespace, records)

    def query(self, namespace: str, vector: list[float], top_k: int = 10, filter: dict | None = None) -> list[VectorMatch]:
        """The top_k most similar vectors, best first; scores are cosine similarities."""
        self.check_dimension(len(vector))
        return self._query(namespace, vector, top_k, filter)

    def check_dimension(self, dimension: int) -> None:
        expected = self.dimension()
        if expected is not None and expected != dimension:
            raise DimensionMismatch(
                f"the {self.name} holds {expected}-dimensional vectors but got {dimension}: set EMBEDDING_DIMENSION="
                f"{expected} (or use the embedder the index was built with), or point the service at a new "
                f"{dimension}-dimensional index and re-ingest"
            )


def create_vector_index(settings, db=None) -> VectorIndex:
    """The adapter VECTOR_BACKEND names (explicit mapping, no discovery)."""
    if settings.vector_backend == "pinecone":
        from shared.vectors.pinecone import PineconeIndex

        return PineconeIndex(api_key=settings.pinecone_api_key, host=settings.pinecone_index_host)
    if settings.vector_backend == "pgvector":
        from shared.vectors.pgvector import PgVectorIndex

        if db is None:
            raise ValueError("the pgvector index needs the database")
        return PgVectorIndex(db)
    raise ValueError(f"unknown VECTOR_BACKEND {settings.vector_backend!r}")
