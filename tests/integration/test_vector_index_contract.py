"""One contract for the vector-index port, run against every adapter: pgvector on the real PostgreSQL and Pinecone
through the real SDK against the wire-faithful stand-in."""

from __future__ import annotations

import pytest

from infra.standins.pinecone_server import PineconeIndexServer
from shared.errors import DimensionMismatch
from shared.models import VectorRecord
from shared.vectors.pgvector import PgVectorIndex
from shared.vectors.pinecone import PineconeIndex

DIM = 4


@pytest.fixture(params=["pgvector", "pinecone"])
def index(request):
    if request.param == "pgvector":
        db = request.getfixturevalue("db")
        index = PgVectorIndex(db)
        index.upsert("setup", [VectorRecord("seed", [1.0] + [0.0] * (DIM - 1))])  # fixes the dimension
        yield index
    else:
        server = PineconeIndexServer(dimension=DIM)
        server.start()
        yield PineconeIndex(api_key="test-key", host=server.url)
        server.stop()


def records():
    return [
        VectorRecord("doc-a#0", [1.0, 0.0, 0.0, 0.0], {"document_id": "doc-a", "topic": "billing"}),
        VectorRecord("doc-a#1", [0.9, 0.1, 0.0, 0.0], {"document_id": "doc-a", "topic": "billing"}),
        VectorRecord("doc-b#0", [0.0, 1.0, 0.0, 0.0], {"document_id": "doc-b", "topic": "account"}),
    ]


def test_query_returns_nearest_first_with_cosine_scores(index):
    index.upsert("t1", records())
    matches = index.query("t1", [1.0, 0.05, 0.0, 0.0], top_k=3)
    assert [m.id for m in matches] == ["doc-a#0", "doc-a#1", "doc-b#0"]
    assert matches[0].score == pytest.approx(0.9988, abs=1e-3)
    assert matches[0].metadata["topic"] == "billing"


def test_upsert_overwrites_by_id(index):
    index.upsert("t1", records())
    index.upsert("t1", [VectorRecord("doc-a#0", [0.0, 0.0, 1.0, 0.0], {"document_id": "doc-a", "topic": "x"})])
    top = index.query("t1", [0.0, 0.0, 1.0, 0.0], top_k=1)[0]
    assert (top.id, top.metadata["topic"]) == ("doc-a#0", "x")
    assert index.fetch_ids("t1", ["doc-a#0", "doc-a#1", "doc-b#0", "nope"]) == {"doc-a#0", "doc-a#1", "doc-b#0"}


def test_filters_and_namespaces(index):
    index.upsert("t1", records())
    index.upsert("t2", [VectorRecord("other#0", [1.0, 0.0, 0.0, 0.0], {"document_id": "other", "topic": "billing"})])
    assert {m.id for m in index.query("t1", [1, 0, 0, 0], 10, {"topic": "account"})} == {"doc-b#0"}
    assert {m.id for m in index.query("t1", [1, 0, 0, 0], 10, {"topic": {"$in": ["account", "billing"]}})} == {
        "doc-a#0", "doc-a#1", "doc-b#0"}
    assert {m.id for m in index.query("t2", [1, 0, 0, 0], 10)} == {"other#0"}


def test_delete_by_ids_and_unknown_namespace(index):
    index.upsert("t1", records())
    index.delete("t1", ["doc-a#0", "doc-a#1", "never-existed"])
    assert index.fetch_ids("t1", ["doc-a#0", "doc-a#1", "doc-b#0"]) == {"doc-b#0"}
    index.delete("never-written", ["x"])  # not an error


def test_wrong_dimension_is_refused_with_a_clear_message(index):
    with pytest.raises(DimensionMismatch, match=r"holds 4-dimensional vectors but got 3.*EMBEDDING_DIMENSION"):
        index.upsert("t1", [VectorRecord("x", [1.0, 0.0, 0.0])])
    with pytest.raises(DimensionMismatch):
        index.query("t1", [1.0, 0.0], top_k=1)
