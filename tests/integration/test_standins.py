"""Contract tests for the local stand-ins: the real pinecone and google-genai SDKs run against them.

What is asserted is the services' documented behaviour as the SDKs see it, so a stand-in that drifts from
the wire format the SDK sends or parses fails here before it misleads a test elsewhere.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import numpy as np
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pinecone import ApiError, NotFoundError, Pinecone, ServiceError, UnauthorizedError

from infra.standins.gemini_server import GeminiServer
from infra.standins.pinecone_server import PineconeIndexServer

API_KEY = "test-key"
DIMENSION = 4


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# --- Pinecone ---


# One server and one SDK client per module (building a client costs ~0.1 s of TLS setup); state is reset per test.


@pytest.fixture(scope="module")
def shared_pinecone_server():
    with PineconeIndexServer(dimension=DIMENSION, api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def shared_index(shared_pinecone_server):
    return Pinecone(api_key=API_KEY).index(host=shared_pinecone_server.url)


@pytest.fixture
def pinecone_server(shared_pinecone_server):
    shared_pinecone_server.reset()
    return shared_pinecone_server


@pytest.fixture
def index(pinecone_server, shared_index):
    return shared_index


@pytest.fixture
def no_pinecone_backoff(monkeypatch):
    """The SDK retries 408/429/5xx with backoff of 0.25 s and more; its documented seam for tests skips the sleep."""
    monkeypatch.setattr("pinecone._internal.http_client._retry_sleep", lambda seconds: None)


@pytest.fixture
def articles(index):
    index.upsert(
        vectors=[
            ("a1", [1.0, 0.0, 0.0, 0.0], {"genre": "drama", "year": 2019, "tags": ["new", "sale"], "draft": False}),
            ("a2", [0.9, 0.1, 0.0, 0.0], {"genre": "comedy", "year": 2021, "tags": ["old"]}),
            ("a3", [0.0, 1.0, 0.0, 0.0], {"genre": "drama", "year": 2023}),
            ("a4", [0.0, 0.0, 1.0, 0.0]),
        ]
    )
    return index


def test_query_ranks_best_first_with_float_scores(articles):
    result = articles.query(top_k=3, vector=[1.0, 0.0, 0.0, 0.0], include_metadata=True)

    assert [m.id for m in result.matches] == ["a1", "a2", "a3"]
    assert all(isinstance(m.score, float) for m in result.matches)
    assert result.matches[0].score == pytest.approx(1.0)
    assert result.matches[0].metadata["genre"] == "drama"
    assert result.matches[0].values == []  # not requested
    assert result.namespace == ""


def test_query_by_id_and_include_values(articles):
    result = articles.query(top_k=1, id="a3", include_values=True)

    assert result.matches[0].id == "a3"
    assert result.matches[0].values == [0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"genre": "drama"}, {"a1", "a3"}),
        ({"genre": {"$eq": "comedy"}}, {"a2"}),
        ({"genre": {"$ne": "drama"}}, {"a2", "a4"}),
        ({"year": {"$gt": 2019}}, {"a2", "a3"}),
        ({"year": {"$gte": 2021, "$lt": 2023}}, {"a2"}),
        ({"year": {"$lte": 2019}}, {"a1"}),
        ({"genre": {"$in": ["comedy", "horror"]}}, {"a2"}),
        ({"genre": {"$nin": ["comedy"]}}, {"a1", "a3", "a4"}),
        ({"tags": "sale"}, {"a1"}),
        ({"tags": {"$in": ["old", "sale"]}}, {"a1", "a2"}),
        ({"draft": {"$exists": True}}, {"a1"}),
        ({"draft": False}, {"a1"}),
        ({"$and": [{"genre": "drama"}, {"year": {"$gt": 2020}}]}, {"a3"}),
        ({"$or": [{"genre": "comedy"}, {"year": 2023}]}, {"a2", "a3"}),
    ],
)
def test_query_metadata_filters(articles, flt, expected):
    result = articles.query(top_k=10, vector=[1.0, 1.0, 1.0, 1.0], filter=flt)

    assert {m.id for m in result.matches} == expected


def test_invalid_filter_is_a_400(articles):
    with pytest.raises(ApiError) as raised:
        articles.query(top_k=1, vector=[1.0, 0.0, 0.0, 0.0], filter={"genre": {"$regex": "dr.*"}})

    assert raised.value.status_code == 400


@pytest.mark.parametrize(
    ("metric", "expected_order"),
    [("cosine", ["near", "far", "big"]), ("dotproduct", ["big", "near", "far"]), ("euclidean", ["near", "far", "big"])],
)
def test_metric_decides_the_ranking(metric, expected_order):
    with PineconeIndexServer(dimension=2, metric=metric) as server:
        index = Pinecone(api_key=API_KEY).index(host=server.url)
        index.upsert(vectors=[("near", [1.0, 0.05]), ("far", [0.5, 1.0]), ("big", [10.0, 30.0])])

        result = index.query(top_k=3, vector=[1.0, 0.0])

    assert [m.id for m in result.matches] == expected_order
    if metric == "euclidean":  # squared distance: lower is better
        assert result.matches[0].score == pytest.approx(0.0025, rel=1e-4)


def test_upsert_overwrites_by_id_and_fetch_returns_what_is_stored(articles):
    articles.upsert(vectors=[{"id": "a1", "values": [0.0, 0.0, 0.0, 1.0], "metadata": {"genre": "news"}}])

    fetched = articles.fetch(ids=["a1", "a4", "missing"])

    assert set(fetched.vectors) == {"a1", "a4"}
    assert fetched.vectors["a1"].values == [0.0, 0.0, 0.0, 1.0]
    assert fetched.vectors["a1"].metadata == {"genre": "news"}
    assert fetched.vectors["a4"].metadata is None
    assert articles.describe_index_stats().total_vector_count == 4


def test_values_and_metadata_numbers_come_back_as_pinecone_stores_them(index):
    index.upsert(vectors=[("v", [0.1, 0.2, 0.3, 0.4], {"year": 2020})])

    stored = index.fetch(ids=["v"]).vectors["v"]

    assert stored.values[0] == pytest.approx(0.1, rel=1e-6) and stored.values[0] != 0.1  # float32
    assert stored.metadata["year"] == 2020.0 and isinstance(stored.metadata["year"], float)


def test_delete_by_ids_filter_and_all(articles):
    articles.delete(ids=["a4", "not-there"])
    assert articles.describe_index_stats().total_vector_count == 3

    articles.delete(filter={"genre": {"$eq": "drama"}})
    assert set(articles.fetch(ids=["a1", "a2", "a3"]).vectors) == {"a2"}

    articles.delete(delete_all=True)
    assert articles.describe_index_stats().total_vector_count == 0


def test_delete_in_a_namespace_never_written_is_404(index):
    with pytest.raises(NotFoundError):
        index.delete(ids=["x"], namespace="never-written")


def test_namespaces_are_separate_and_reported_in_stats(articles):
    articles.upsert(vectors=[("b1", [0.0, 0.0, 0.0, 1.0])], namespace="faq")

    stats = articles.describe_index_stats()

    assert stats.dimension == DIMENSION
    assert stats.total_vector_count == 5
    assert {name: ns.vector_count for name, ns in stats.namespaces.items()} == {"__default__": 4, "faq": 1}
    assert isinstance(stats.index_fullness, float)
    assert [m.id for m in articles.query(top_k=5, vector=[0.0, 0.0, 0.0, 1.0], namespace="faq").matches] == ["b1"]


def test_list_pages_through_ids_with_a_prefix(index):
    index.upsert(vectors=[(f"doc1#{i:02d}", [1.0, 0.0, 0.0, float(i)]) for i in range(5)])
    index.upsert(vectors=[("doc2#00", [1.0, 0.0, 0.0, 0.0])])

    pages = [[item.id for item in page.vectors] for page in index.list(prefix="doc1#", limit=2)]

    assert pages == [["doc1#00", "doc1#01"], ["doc1#02", "doc1#03"], ["doc1#04"]]


def test_wrong_dimension_is_rejected_with_pinecones_message(index):
    with pytest.raises(ApiError) as raised:
        index.upsert(vectors=[("v", [0.1, 0.2, 0.3])])

    assert raised.value.status_code == 400
    assert "Vector dimension 3 does not match the dimension of the index 4" in str(raised.value)
    assert raised.value.body == {
        "code": 3,
        "message": "Vector dimension 3 does not match the dimension of the index 4",
        "details": [],
    }

    with pytest.raises(ApiError, match="Query vector dimension 2 does not match the dimension of the index 4"):
        index.query(top_k=1, vector=[0.1, 0.2])


def test_metadata_is_checked_and_stored_as_the_server_does(pinecone_server, index):
    # The SDK refuses nested metadata itself, so send the request the way another client could.
    vector = {"id": "v", "values": [0.1, 0.2, 0.3, 0.4], "metadata": {"nested": {"a": 1}}}
    status, body = _post(pinecone_server.url + "/vectors/upsert", {"vectors": [vector]}, {"Api-Key": API_KEY})
    assert status == 400
    assert json.loads(body)["message"] == (
        "Metadata value must be a string, number, boolean or list of strings, got '{\"a\":1.0}' for field 'nested'"
    )

    index.upsert(vectors=[("v", [0.1, 0.2, 0.3, 0.4], {"kept": "yes", "dropped": None})])
    assert index.fetch(ids=["v"]).vectors["v"].metadata == {"kept": "yes"}


def test_api_key_is_required(pinecone_server):
    status, body = _post(pinecone_server.url + "/describe_index_stats", {})
    assert status == 401
    assert body == b"Invalid API Key"

    with pytest.raises(UnauthorizedError):
        Pinecone(api_key="wrong-key").index(host=pinecone_server.url).describe_index_stats()


@pytest.mark.usefixtures("no_pinecone_backoff")
def test_a_transient_failure_is_retried_by_the_sdk(pinecone_server, articles):
    pinecone_server.fail_next(1, status=503)
    before = len(pinecone_server.requests)

    result = articles.query(top_k=1, vector=[1.0, 0.0, 0.0, 0.0])

    assert result.matches[0].id == "a1"
    assert [path for _, path, _ in pinecone_server.requests[before:]] == ["/query", "/query"]


@pytest.mark.usefixtures("no_pinecone_backoff")
def test_persistent_failures_surface_as_service_errors(pinecone_server, articles):
    pinecone_server.fail_next(4, status=503)  # the first attempt and the SDK's 3 retries

    with pytest.raises(ServiceError) as raised:
        articles.query(top_k=1, vector=[1.0, 0.0, 0.0, 0.0])

    assert raised.value.status_code == 503
    assert raised.value.body["code"] == 14  # gRPC UNAVAILABLE, as the data plane reports it


def test_request_log_records_what_the_sdk_sent(pinecone_server, index):
    index.upsert(vectors=[("v", [0.1, 0.2, 0.3, 0.4], {"k": "v"})], namespace="ns")

    method, path, body = pinecone_server.requests[-1]

    assert (method, path) == ("POST", "/vectors/upsert")
    assert body == {"vectors": [{"id": "v", "values": [0.1, 0.2, 0.3, 0.4], "metadata": {"k": "v"}}], "namespace": "ns"}


# --- Gemini ---

EMBEDDING_MODEL = "gemini-embedding-001"
CHAT_MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def shared_gemini_server():
    with GeminiServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def shared_client(shared_gemini_server):
    return genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=shared_gemini_server.url))


@pytest.fixture
def gemini_server(shared_gemini_server):
    shared_gemini_server.reset()
    return shared_gemini_server


@pytest.fixture
def client(gemini_server, shared_client):
    return shared_client


def _embed(client, texts, dimensions=None, task_type="RETRIEVAL_DOCUMENT"):
    config = types.EmbedContentConfig(task_type=task_type, output_dimensionality=dimensions)
    response = client.models.embed_content(model=EMBEDDING_MODEL, contents=texts, config=config)
    return np.array([embedding.values for embedding in response.embeddings])


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_batch_embedding_returns_one_vector_per_text_at_the_requested_size(gemini_server, client):
    vectors = _embed(client, ["first", "second", "third"], dimensions=768)

    assert vectors.shape == (3, 768)
    assert all(norm < 0.99 for norm in np.linalg.norm(vectors, axis=1))  # truncated, so not unit length
    path = gemini_server.requests[-1].path
    assert path == f"/v1/models/{EMBEDDING_MODEL}:batchEmbedContents"
    assert gemini_server.requests[-1].json["requests"][0]["outputDimensionality"] == 768


def test_default_embedding_is_3072_dimensions_and_unit_length(client):
    (vector,) = _embed(client, ["How do I return an item?"])

    assert vector.shape == (3072,)
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5)


def test_embeddings_are_deterministic_and_truncations_of_the_full_vector(client):
    full = _embed(client, ["Where is my parcel?"])[0]
    again = _embed(client, ["Where is my parcel?"], dimensions=256)[0]

    np.testing.assert_allclose(again, full[:256], rtol=1e-6)


def test_texts_sharing_words_are_closer_than_unrelated_ones(client):
    question, related, unrelated = _embed(
        client,
        ["How do I reset my password?", "Password reset instructions for your account", "Shipping times to Canada"],
        dimensions=768,
    )

    assert _cosine(question, related) > _cosine(question, unrelated) + 0.3


def test_more_than_100_texts_per_batch_is_invalid(client):
    with pytest.raises(genai_errors.ClientError) as raised:
        _embed(client, [f"text {i}" for i in range(101)])

    assert raised.value.code == 400
    assert raised.value.status == "INVALID_ARGUMENT"
    assert "at most 100 requests can be in one batch" in raised.value.message


def test_unknown_task_type_is_invalid(client):
    with pytest.raises(genai_errors.ClientError, match="task_type"):
        _embed(client, ["text"], task_type="NOT_A_TASK")


def test_rate_limit_surfaces_as_client_error_429(gemini_server, client):
    gemini_server.fail_next(1, status=429)

    with pytest.raises(genai_errors.ClientError) as raised:
        _embed(client, ["text"])

    assert raised.value.code == 429
    assert raised.value.status == "RESOURCE_EXHAUSTED"
    assert raised.value.details == {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
        }
    }


def test_unavailable_surfaces_as_server_error(gemini_server, client):
    gemini_server.fail_next(1, status=503)

    with pytest.raises(genai_errors.ServerError) as raised:
        client.models.generate_content(model=CHAT_MODEL, contents="hello")

    assert (raised.value.code, raised.value.status) == (503, "UNAVAILABLE")


def test_sdk_retry_options_absorb_a_single_429(gemini_server):
    retrying = genai.Client(
        api_key=API_KEY,
        http_options=types.HttpOptions(
            base_url=gemini_server.url,
            retry_options=types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0.0),
        ),
    )
    gemini_server.fail_next(1, status=429)

    vectors = _embed(retrying, ["text"], dimensions=128)

    assert vectors.shape == (1, 128)
    assert [r.path for r in gemini_server.requests].count(f"/v1/models/{EMBEDDING_MODEL}:batchEmbedContents") == 2


def test_missing_or_wrong_api_key_is_rejected_as_google_does(gemini_server):
    url = f"{gemini_server.url}/v1/models/{EMBEDDING_MODEL}:embedContent"
    body = {"content": {"parts": [{"text": "hi"}]}}

    status, raw = _post(url, body)
    assert status == 403
    assert json.loads(raw)["error"]["status"] == "PERMISSION_DENIED"

    status, raw = _post(url + f"?key={API_KEY}", body)  # the query-parameter form of the key
    assert status == 200
    assert len(json.loads(raw)["embedding"]["values"]) == 3072

    wrong = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=gemini_server.url))
    with pytest.raises(genai_errors.ClientError, match="API key not valid") as raised:
        _embed(wrong, ["text"])
    assert raised.value.code == 400


def test_generate_content_returns_the_scripted_reply_with_usage(gemini_server, client):
    gemini_server.script_reply("Your order ships tomorrow.")

    response = client.models.generate_content(
        model=CHAT_MODEL,
        contents="Where is my order?",
        config=types.GenerateContentConfig(system_instruction="You are a support agent."),
    )

    assert response.text == "Your order ships tomorrow."
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert gemini_server.requests[-1].json["systemInstruction"]["parts"][0]["text"] == "You are a support agent."


def test_default_reply_echoes_the_last_user_message(client):
    response = client.models.generate_content(
        model=CHAT_MODEL,
        contents=[
            types.Content(role="user", parts=[types.Part(text="Hello")]),
            types.Content(role="model", parts=[types.Part(text="Hi! How can I help?")]),
            types.Content(role="user", parts=[types.Part(text="My invoice is wrong")]),
        ],
    )

    assert "My invoice is wrong" in response.text


def test_stream_delivers_the_reply_in_several_chunks(gemini_server, client):
    gemini_server.script_reply("The refund was issued on Monday and should arrive within five days.")

    chunks = [chunk.text for chunk in client.models.generate_content_stream(model=CHAT_MODEL, contents="Refund?")]

    assert len(chunks) > 1
    assert "".join(chunks) == "The refund was issued on Monday and should arrive within five days."
    assert gemini_server.requests[-1].path == f"/v1/models/{CHAT_MODEL}:streamGenerateContent?alt=sse"


def test_scripted_stream_chunks_arrive_as_given(gemini_server, client):
    gemini_server.script_stream(["Hel", "lo, ", "world"])

    stream = client.models.generate_content_stream(model=CHAT_MODEL, contents="hi")
    responses = list(stream)

    assert [r.text for r in responses] == ["Hel", "lo, ", "world"]
    assert responses[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert responses[-1].usage_metadata.candidates_token_count > 0


def test_a_stream_cut_mid_way_raises_in_the_iterating_client(gemini_server, client):
    gemini_server.script_stream(["one ", "two ", "three"], fail_after=2)
    received = []

    with pytest.raises(Exception) as raised:  # the transport's error: the SDK does not wrap it
        for chunk in client.models.generate_content_stream(model=CHAT_MODEL, contents="count"):
            received.append(chunk.text)

    assert received == ["one ", "two "]
    assert type(raised.value).__name__ == "RemoteProtocolError"


def test_v1beta_paths_are_served_too(gemini_server):
    beta = genai.Client(
        api_key=API_KEY, http_options=types.HttpOptions(base_url=gemini_server.url, api_version="v1beta")
    )

    response = beta.models.generate_content(model=CHAT_MODEL, contents="hello")

    assert response.text
    assert gemini_server.requests[-1].path == f"/v1beta/models/{CHAT_MODEL}:generateContent"


def test_an_embedding_model_does_not_generate(client):
    with pytest.raises(genai_errors.ClientError) as raised:
        client.models.generate_content(model=EMBEDDING_MODEL, contents="hello")

    assert raised.value.code == 404
