"""Embedders against what they talk to: Gemini through the wire-faithful stand-in (real google-genai SDK),
the local all-MiniLM-L6-v2 model, and the embedding cache in PostgreSQL."""

from __future__ import annotations

import math

import pytest

from shared.config import Settings
from shared.embeddings.cache import EmbeddingCache
from shared.embeddings.gemini import GeminiEmbedder, make_genai_client
from shared.errors import UpstreamUnavailable


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b))



def gemini_embedder(server, sleeps, **overrides) -> GeminiEmbedder:
    settings = Settings.from_env({"GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": server.url,
                                  "EMBEDDING_DIMENSION": "768", "EMBED_BATCH_SIZE": "10"})
    options = dict(model="gemini-embedding-001", dimension=768, batch_size=10, max_retries=3, retry_base_seconds=0.5,
                   sleep=sleeps.append)
    options.update(overrides)
    return GeminiEmbedder(lambda: make_genai_client(settings), **options)


def embed_requests(server):
    return [r for r in server.requests if r.path.endswith(":batchEmbedContents")]


def test_gemini_batches_normalises_and_asks_for_the_dimension(gemini):
    sleeps = []
    embedder = gemini_embedder(gemini, sleeps)
    texts = [f"passage number {i} about refunds" for i in range(25)]
    result = embedder.embed_documents(texts)

    assert len(result.vectors) == 25 and all(len(v) == 768 for v in result.vectors)
    assert all(math.isclose(cosine(v, v), 1.0, rel_tol=1e-6) for v in result.vectors)
    batches = embed_requests(gemini)
    assert [len(r.json["requests"]) for r in batches] == [10, 10, 5]
    first = batches[0].json["requests"][0]
    assert first["taskType"] == "RETRIEVAL_DOCUMENT" and first["outputDimensionality"] == 768
    query = gemini_embedder(gemini, sleeps).embed_query("refund")
    assert len(query) == 768 and embed_requests(gemini)[-1].json["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


def test_gemini_429_backs_off_then_succeeds(gemini):
    sleeps = []
    embedder = gemini_embedder(gemini, sleeps)
    gemini.fail_next(2, status=429)
    result = embedder.embed_documents(["refunds take 5-10 business days"])

    assert len(result.vectors) == 1 and result.computed == 1
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.5  # exponential backoff with jitter
    assert len(embed_requests(gemini)) == 3


def test_gemini_persistent_5xx_becomes_retryable_error(gemini):
    sleeps = []
    gemini.fail_next(10, status=503)
    with pytest.raises(UpstreamUnavailable, match="503"):
        gemini_embedder(gemini, sleeps, max_retries=2).embed_documents(["x"])
    assert len(sleeps) == 2


def test_cache_skips_known_content(gemini, db):
    sleeps = []
    embedder, cache = gemini_embedder(gemini, sleeps), EmbeddingCache(db)
    first = embedder.embed_documents(["alpha", "beta"], cache=cache)
    second = embedder.embed_documents(["beta", "gamma", "alpha"], cache=cache)

    assert (first.computed, second.computed) == (2, 1)
    assert [len(r.json["requests"]) for r in embed_requests(gemini)] == [2, 1]
    assert second.vectors[0] == pytest.approx(first.vectors[1], abs=1e-6)  # float32 round trip


@pytest.mark.slow
def test_local_minilm_embeds_offline():
    from shared.embeddings.local import LocalEmbedder

    embedder = LocalEmbedder(threads=2)
    vectors = embedder.embed_documents([
        "Refunds reach your card within 5-10 business days.",
        "How long does it take to get my money back?",
        "Connect your Google Calendar in Settings > Integrations.",
    ]).vectors
    assert len(vectors[0]) == 384 and math.isclose(cosine(vectors[0], vectors[0]), 1.0, rel_tol=1e-5)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2


@pytest.mark.slow
def test_the_onnx_runtime_gives_the_vectors_pytorch_gives():
    import numpy as np

    from shared.embeddings.local import LocalEmbedder

    onnx, torch = LocalEmbedder(threads=1), LocalEmbedder(threads=1, runtime="torch")
    assert (onnx.runtime, torch.runtime) == ("onnx", "torch")
    texts = ["refund", "How long until my refund reaches the card?", "", "word " * 400,  # truncated at 256 tokens
             "Connect your calendar in Settings > Integrations; sync runs every 5 minutes."]
    assert onnx.embed_documents(texts).vectors == torch.embed_documents(texts).vectors  # passages: PyTorch in both
    batch = np.array(onnx._onnx.encode(texts, 64))  # the encoder itself, on one padded batch of mixed lengths
    assert np.abs(batch - np.array(torch.embed_batch(texts, "document"))).max() < 1e-5
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert np.abs(np.array(onnx.embed_query(texts[1])) - np.array(torch.embed_query(texts[1]))).max() < 1e-5
    # A question counts up to 128 word pieces (passages up to 256): what a long post adds after that is not read.
    post = "My webhook times out after the calendar sync runs and then " * 14  # about 170 word pieces
    assert onnx.embed_query(post) == onnx.embed_query(post + " so what should I do about the refund?")
    assert onnx.embed_documents([post]).vectors != onnx.embed_documents([post + " refund?"]).vectors


@pytest.mark.slow
def test_without_onnx_runtime_the_local_model_falls_back_to_pytorch(monkeypatch, caplog):
    from shared.embeddings import local

    def broken(*_):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.setattr(local.OnnxEncoder, "export", broken)
    embedder = local.LocalEmbedder(threads=1)
    assert embedder.runtime == "torch" and len(embedder.embed_query("refund")) == 384
    assert "ONNX Runtime unavailable" in caplog.text and "onnxruntime" in caplog.text
