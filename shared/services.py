"""The instance's services, built lazily on first use and reused while the instance is warm
(python-docs-samples `tips-lazy-globals`): nothing connects or loads a model at import time."""

from __future__ import annotations

import functools

from shared.config import get_settings


@functools.lru_cache(maxsize=1)
def database():
    from shared.db import Database

    return Database(get_settings())


@functools.lru_cache(maxsize=1)
def document_store():
    from shared.documents import DocumentStore

    return DocumentStore(database())


@functools.lru_cache(maxsize=1)
def vector_index():
    from shared.vectors import create_vector_index

    return create_vector_index(get_settings(), database())


@functools.lru_cache(maxsize=1)
def embedder():
    from shared.embeddings import create_embedder

    return create_embedder(get_settings())


@functools.lru_cache(maxsize=1)
def ingest_service():
    from shared.ingest.pipeline import IngestService
    from shared.storage import ObjectStore
    from shared.tasks import EmbedQueue

    settings = get_settings()
    return IngestService(settings, document_store(), ObjectStore(settings.project), EmbedQueue(settings),
                         vector_index())


@functools.lru_cache(maxsize=1)
def indexer():
    from shared.embeddings.cache import EmbeddingCache
    from shared.ingest.indexer import Indexer
    from shared.tasks import EmbedQueue

    settings = get_settings()
    return Indexer(settings, document_store(), embedder(), EmbeddingCache(database()), vector_index(),
                   queue=EmbedQueue(settings))


@functools.lru_cache(maxsize=1)
def reconciler():
    """Compares the knowledge bucket with the database and ingests or deletes what differs (nightly, `kb reconcile`)."""
    from shared.ingest.reconcile import Reconciler
    from shared.storage import ObjectStore

    settings = get_settings()
    return Reconciler(settings, document_store(), ObjectStore(settings.project), ingest_service())


@functools.lru_cache(maxsize=1)
def sync_engine():
    """The nightly sync: sources into the knowledge bucket, in steps on the sync queue."""
    from shared.db import Database
    from shared.storage import ObjectStore
    from shared.sync.engine import SyncEngine
    from shared.tasks import SyncQueue

    settings = get_settings()
    # Its own pool, as large as the step's worker threads (each fetch stores its page).
    db = Database(settings, pool_size=max(settings.db_pool_size, settings.sync_concurrency + 2))
    return SyncEngine(settings, db, ObjectStore(settings.project), SyncQueue(settings))


@functools.lru_cache(maxsize=1)
def memory_store():
    """Sessions, messages, summaries, feedback, tickets and gaps; `.rate_limiter` and `.policies` share its client."""
    from shared.memory import MemoryStore

    return MemoryStore.from_settings(get_settings())


@functools.lru_cache(maxsize=1)
def tenant_registry():
    """Which tenant a chat request is for: the one DEFAULT_TENANT, or the Firestore registry (TENANT_REGISTRY)."""
    from shared.tenants import create_registry

    return create_registry(get_settings(), lambda: memory_store().connection)


@functools.lru_cache(maxsize=1)
def retriever():
    """Hybrid retrieval (full-text + vectors, fused) over this instance's database and vector index."""
    from shared.embeddings import create_embedder
    from shared.retrieval.hybrid import Retriever
    from shared.retrieval.keyword import KeywordSearch
    from shared.retrieval.vector import VectorSearch

    db = database()
    questions = create_embedder(get_settings(), for_queries=True)
    return Retriever(db, KeywordSearch(db), VectorSearch(db, questions, vector_index()))


@functools.lru_cache(maxsize=1)
def chat_service():
    """The conversation service: Gemini answers when a key (or Vertex AI) is configured, quoted ones otherwise."""
    from shared.chat.service import ChatService
    from shared.llm import create_answerer, create_rewriter, create_summarizer

    settings = get_settings()
    return ChatService(settings, memory_store(), retriever(), create_answerer(settings), create_rewriter(settings),
                       create_summarizer(settings), gate=gate())


@functools.lru_cache(maxsize=1)
def gate():
    """The answerability gate, with the knowledge base's word statistics from the keyword leg."""
    from shared.answerability.gate import create_gate
    from shared.embeddings.cache import EmbeddingCache

    return create_gate(get_settings(), retriever(), EmbeddingCache(database()))


def reset() -> None:
    """Forget every built service and the settings (tests change the environment between cases)."""
    if database.cache_info().currsize:
        database().close()
    if getattr(sync_engine, "cache_info", None) and sync_engine.cache_info().currsize:
        sync_engine().db.close()
    for factory in (database, document_store, vector_index, embedder, ingest_service, indexer, reconciler, sync_engine,
                    gate,
                    memory_store, tenant_registry, retriever, chat_service):
        getattr(factory, "cache_clear", lambda: None)()  # a test may have replaced a factory with a fake
    get_settings.cache_clear()
