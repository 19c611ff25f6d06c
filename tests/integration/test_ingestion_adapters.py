"""The same ingestion path with the production adapters: Pinecone (stand-in, real SDK) and Gemini embeddings
(stand-in, real google-genai SDK)."""

from __future__ import annotations

from infra.standins.pinecone_server import PineconeIndexServer

DOC = "# Two-factor authentication\n\nTurn it on in Settings > Security. Backup codes work once each."



def pinecone(dimension: int) -> PineconeIndexServer:
    server = PineconeIndexServer(dimension=dimension, api_key="pc-test-key")
    server.start()
    return server


def production_settings(gemini, index, dimension=768) -> dict:
    return dict(EMBEDDER="gemini", GEMINI_API_KEY="test-key", GEMINI_BASE_URL=gemini.url,
                EMBEDDING_DIMENSION=dimension, EMBED_RETRY_BASE_SECONDS=0.05, VECTOR_BACKEND="pinecone",
                PINECONE_API_KEY="pc-test-key", PINECONE_INDEX_HOST=index.url)


def test_gemini_and_pinecone_upload_overwrite_delete(make_stack, gemini):
    index = pinecone(768)
    try:
        stack = make_stack(**production_settings(gemini, index))
        gemini.fail_next(1, status=429)  # the first embedding call is throttled
        stack.upload("account/2fa.md", DOC)
        stack.wait_for("account/2fa.md", "ready")
        chunks = stack.chunks("account/2fa.md")
        assert stack.vector_ids() == {c["id"] for c in chunks}
        assert stack.versions("account/2fa.md")[0]["attempts"] == 1  # the 429 was absorbed by the backoff

        blob = stack.upload("account/2fa.md", "# Two-factor authentication\n\nUse an authenticator app.")
        stack.wait_for("account/2fa.md", "ready", generation=int(blob.generation))
        stack.storage.wait_idle()
        assert stack.vector_ids() == {c["id"] for c in stack.chunks("account/2fa.md")}

        stack.delete("account/2fa.md")
        stack.wait_for("account/2fa.md", "deleted")
        assert stack.vector_ids(titles=True) == set()  # chunk and title vectors alike
    finally:
        index.stop()


def test_wrong_dimension_fails_the_version_with_a_clear_reason(make_stack, gemini):
    index = pinecone(1536)  # built for another embedder
    try:
        stack = make_stack(**production_settings(gemini, index, dimension=768))
        stack.upload("account/2fa.md", DOC)
        row = stack.wait_for("account/2fa.md", "failed")
        assert "holds 1536-dimensional vectors but got 768" in row["error"]
        assert "EMBEDDING_DIMENSION=1536" in row["error"]
        assert stack.chunks("account/2fa.md") == []
    finally:
        index.stop()
