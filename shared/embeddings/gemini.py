"""gemini-embedding-001 through google-genai, with exponential backoff on 429 and 5xx.

Documents are embedded as RETRIEVAL_DOCUMENT and questions as RETRIEVAL_QUERY at EMBEDDING_DIMENSION (768, 1536 or
3072 are the recommended sizes; vectors below 3072 are not normalised by the service, so the base class does it).
After EMBED_MAX_RETRIES the error becomes `UpstreamUnavailable`, so Cloud Tasks redelivers the task later.
Each failed call logs a `model_error` event (operation "embed"): WARNING when it is retried, ERROR when it is not.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from shared.embeddings import DOCUMENT, Embedder
from shared.errors import ConfigurationError, UpstreamUnavailable
from shared.logs import log_model_error

log = logging.getLogger(__name__)

MAX_BATCH = 100  # batchEmbedContents accepts at most 100 requests
_RETRYABLE = {408, 429, 500, 502, 503, 504}


def make_genai_client(settings):
    """A google-genai client for the Developer API (key), Vertex AI (service account) or a local stand-in."""
    from google import genai
    from google.genai import types

    http_options = types.HttpOptions(base_url=settings.gemini_base_url) if settings.gemini_base_url else None
    if settings.gemini_vertexai:
        return genai.Client(vertexai=True, project=settings.project, location=settings.region,
                            http_options=http_options)
    if not settings.gemini_api_key:
        raise ConfigurationError("set GEMINI_API_KEY or GEMINI_VERTEXAI=true to use Gemini")
    return genai.Client(api_key=settings.gemini_api_key, http_options=http_options)


class GeminiEmbedder(Embedder):
    def __init__(self, client_factory: Callable, model: str = "gemini-embedding-001", dimension: int = 768,
                 batch_size: int = 64, max_retries: int = 5, retry_base_seconds: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.model = model
        self.dimension = dimension
        self.key = f"{model}@{dimension}"
        self.batch_size = min(batch_size, MAX_BATCH)
        self._client_factory = client_factory
        self._client = None
        self._lock = threading.Lock()
        self._max_retries = max_retries
        self._retry_base = retry_base_seconds
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings) -> GeminiEmbedder:
        return cls(lambda: make_genai_client(settings), model=settings.embedding_model,
                   dimension=settings.embedding_dimension, batch_size=settings.embed_batch_size,
                   max_retries=settings.embed_max_retries, retry_base_seconds=settings.embed_retry_base_seconds)

    def _get_client(self):
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def embed_batch(self, texts: Sequence[str], kind: str) -> list[list[float]]:
        from google.genai import errors, types

        config = types.EmbedContentConfig(
            task_type="RETRIEVAL_DOCUMENT" if kind == DOCUMENT else "RETRIEVAL_QUERY",
            output_dimensionality=self.dimension,
        )
        for attempt in range(self._max_retries + 1):
            try:
                response = self._get_client().models.embed_content(model=self.model, contents=list(texts),
                                                                   config=config)
                vectors = [list(e.values) for e in response.embeddings]
                if len(vectors) != len(texts) or any(len(v) != self.dimension for v in vectors):
                    raise UpstreamUnavailable(f"Gemini returned {len(vectors)} embeddings for {len(texts)} texts")
                return vectors
            except errors.APIError as exc:
                retry = exc.code in _RETRYABLE and attempt < self._max_retries
                log_model_error(log, "embed", exc, retryable=exc.code in _RETRYABLE,
                                severity=logging.WARNING if retry else logging.ERROR)
                if exc.code not in _RETRYABLE:
                    if exc.code in (401, 403):
                        raise ConfigurationError(f"Gemini rejected the credentials ({exc.code})") from exc
                    raise
                if attempt == self._max_retries:
                    raise UpstreamUnavailable(f"Gemini embeddings still failing after {attempt + 1} attempts: "
                                              f"{exc.code} {exc.status}") from exc
                delay = self._retry_base * (2**attempt) * (0.5 + random.random())
                log.warning("Gemini embeddings answered %s; retrying in %.1fs", exc.code, delay)
                self._sleep(delay)
            except UpstreamUnavailable:
                raise
            except Exception as exc:  # the connection failed (not retried here: the caller's retry takes it)
                log_model_error(log, "embed", exc, retryable=_transport_failure(exc), severity=logging.ERROR)
                raise
        raise AssertionError("unreachable")


def _transport_failure(exc: BaseException) -> bool:
    """A connection-level failure of the SDK's HTTP stack (httpx and kin), which a later retry may not meet."""
    return isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.split(".")[0] in (
        "httpx", "httpx2", "httpcore")
