"""Pinecone adapter (SDK 10.x, REST data plane): a namespace per tenant, metadata for filtering.

The index's dimension comes from `describe_index_stats` once per instance. The SDK already retries 408/429/5xx; what
still fails is turned into `UpstreamUnavailable` (retryable) or, for a dimension refused by the service,
`DimensionMismatch`.
"""

from __future__ import annotations

import threading

from shared.errors import ConfigurationError, DimensionMismatch, UpstreamUnavailable
from shared.models import VectorMatch, VectorRecord
from shared.vectors import VectorIndex

UPSERT_BATCH = 100  # Pinecone caps a request at 1,000 vectors / 2 MB; 100 x 3072 floats stays well under


class PineconeIndex(VectorIndex):
    name = "Pinecone index"

    def __init__(self, api_key: str, host: str):
        self._api_key = api_key
        self._host = host
        self._index = None
        self._dimension: int | None = None
        self._lock = threading.Lock()

    def _client(self):
        with self._lock:
            if self._index is None:
                from pinecone import Pinecone  # heavy import, only on first use

                self._index = Pinecone(api_key=self._api_key).index(host=self._host)
            return self._index

    def _call(self, what: str, fn, *args, **kwargs):
        from pinecone.errors import PineconeError

        try:
            return fn(*args, **kwargs)
        except PineconeError as exc:
            raise self._translate(what, exc) from exc

    def _translate(self, what: str, exc: Exception) -> Exception:
        """Map an SDK error (after the SDK's own retries) to our error tree."""
        from pinecone.errors import ApiError

        if not isinstance(exc, ApiError):  # connection errors, timeouts
            return UpstreamUnavailable(f"Pinecone {what} failed: {exc}")
        if exc.status_code == 400 and "dimension" in str(exc).lower():
            return DimensionMismatch(f"Pinecone refused the vectors: {exc}")
        if exc.status_code in (401, 403):
            return ConfigurationError(f"Pinecone rejected the API key ({exc.status_code}): check PINECONE_API_KEY")
        if exc.status_code == 404:
            return ConfigurationError(f"Pinecone index not found at {self._host}: check PINECONE_INDEX_HOST")
        if exc.status_code in (408, 429) or exc.status_code >= 500:
            return UpstreamUnavailable(f"Pinecone {what} failed: {exc}")
        return exc

    def dimension(self) -> int | None:
        if self._dimension is None:
            stats = self._call("describe_index_stats", self._client().describe_index_stats)
            self._dimension = stats.dimension
        return self._dimension

    def _upsert(self, namespace: str, records: list[VectorRecord]) -> None:
        index = self._client()
        for start in range(0, len(records), UPSERT_BATCH):
            batch = records[start : start + UPSERT_BATCH]
            self._call(
                "upsert",
                index.upsert,
                vectors=[{"id": r.id, "values": list(r.values), "metadata": r.metadata} for r in batch],
                namespace=namespace,
            )

    def _query(self, namespace: str, vector: list[float], top_k: int, filter: dict | None) -> list[VectorMatch]:
        response = self._call(
            "query",
            self._client().query,
            vector=list(vector),
            top_k=top_k,
            namespace=namespace,
            filter=filter or None,
            include_metadata=True,
        )
        return [VectorMatch(id=m.id, score=float(m.score), metadata=dict(m.metadata or {})) for m in response.matches]

    def delete(self, namespace: str, ids: list[str]) -> None:
        from pinecone.errors import NotFoundError, PineconeError

        index = self._client()
        ids = list(ids)
        for start in range(0, len(ids), 1000):  # Pinecone deletes at most 1,000 ids per request
            try:
                index.delete(ids=ids[start : start + 1000], namespace=namespace)
            except NotFoundError:
                return  # a namespace that was never written: nothing to delete
            except PineconeError as exc:
                raise self._translate("delete", exc) from exc

    def fetch_ids(self, namespace: str, ids: list[str]) -> set[str]:
        found: set[str] = set()
        ids = list(ids)
        for start in range(0, len(ids), 1000):
            response = self._call("fetch", self._client().fetch, ids=ids[start : start + 1000], namespace=namespace)
            found.update(response.vectors.keys())
        return found
