"""`python -m infra.pinecone_index` against the control-plane stand-in, through the real pinecone SDK: it creates the
index with the embedder's dimension and cosine, waits until ready, is idempotent, refuses a mismatched index, and
`--check` never creates. The product's own Pinecone adapter then writes to the index it created."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pinecone import Pinecone

from infra import pinecone_index
from infra.standins.pinecone_server import PineconeControlPlane

ROOT = Path(__file__).resolve().parents[2]
KEY = "pc-control-key"


@pytest.fixture
def control():
    with PineconeControlPlane(api_key=KEY, ready_after=2) as server:
        yield server


def env(control, **extra) -> dict[str, str]:
    return {"PINECONE_API_KEY": KEY, "PINECONE_CONTROLLER_HOST": control.url, "EMBEDDER": "gemini",
            "EMBEDDING_DIMENSION": "768", **extra}


def run(control, *args: str, **extra) -> int:
    return pinecone_index.main([*args, "--poll-seconds", "0.01"], env(control, **extra))


def test_creates_a_serverless_index_with_the_embedders_dimension_and_waits_until_ready(control, capsys):
    assert run(control, "--name", "kb-one") == 0

    out = capsys.readouterr().out
    data_plane = control.index("kb-one")
    assert f"PINECONE_INDEX_HOST={data_plane.url}" in out
    assert "created and ready" in out
    [create] = [r for r in control.requests if r.method == "POST"]
    assert create.json["name"] == "kb-one"
    assert create.json["schema"] == {"fields": {"_values": {"type": "dense_vector", "dimension": 768,
                                                            "metric": "cosine"}}}
    assert create.json["deployment"] == {"deployment_type": "managed", "cloud": "gcp", "region": "us-central1"}
    describes = [r for r in control.requests if r.method == "GET" and r.path == "/indexes/kb-one"]
    assert len(describes) >= 3, "the stand-in answers Initializing twice: the command must have polled"
    pc = Pinecone(api_key=KEY, host=control.url)
    assert pc.indexes.describe("kb-one").status.ready


def test_the_product_adapter_writes_to_the_index_it_created(control, capsys):
    from shared.models import VectorRecord
    from shared.vectors.pinecone import PineconeIndex

    assert run(control, "--name", "kb-adapter", EMBEDDER="local") == 0
    host = capsys.readouterr().out.split("PINECONE_INDEX_HOST=")[1].split()[0]
    index = PineconeIndex(api_key=KEY, host=host)
    assert index.dimension() == 384
    index.upsert("default", [VectorRecord(id="c1", values=[1.0] + [0.0] * 383, metadata={"topic": "billing"})])
    [match] = index.query("default", [1.0] + [0.0] * 383, top_k=1)
    assert (match.id, round(match.score, 5)) == ("c1", 1.0)


def test_a_second_run_finds_the_index_and_creates_nothing(control, capsys):
    assert run(control, "--name", "kb-twice") == 0
    first = capsys.readouterr().out
    assert run(control, "--name", "kb-twice") == 0
    second = capsys.readouterr().out

    assert "found and ready" in second
    assert len([r for r in control.requests if r.method == "POST"]) == 1
    host = first.split("PINECONE_INDEX_HOST=")[1].split()[0]
    assert f"PINECONE_INDEX_HOST={host}" in second


@pytest.mark.parametrize("dimension, metric, wanted", [
    (384, "cosine", "dimension 384, the embedder writes 768"),
    (768, "dotproduct", "metric dotproduct, the product needs cosine"),
])
def test_a_mismatched_index_is_refused_with_what_to_do(control, capsys, dimension, metric, wanted):
    Pinecone(api_key=KEY, host=control.url).indexes.create(
        name="kb-other", schema={"fields": {"_values": {"type": "dense_vector", "dimension": dimension,
                                                        "metric": metric}}}, timeout=-1)

    assert run(control, "--name", "kb-other") == 1
    captured = capsys.readouterr()
    assert wanted in captured.err
    assert "cannot be changed" in captured.err and "another --name" in captured.err
    assert "PINECONE_INDEX_HOST" not in captured.out
    assert len([r for r in control.requests if r.method == "POST"]) == 1  # only the test's own create


def test_check_on_a_missing_index_fails_and_creates_nothing(control, capsys):
    assert run(control, "--name", "kb-absent", "--check") == 1

    assert "does not exist" in capsys.readouterr().err
    assert not [r for r in control.requests if r.method == "POST"]
    assert list(Pinecone(api_key=KEY, host=control.url).indexes.list()) == []


def test_check_on_a_matching_index_passes_and_prints_its_host(control, capsys):
    assert run(control, "--name", "kb-checked") == 0
    capsys.readouterr()
    assert run(control, "--name", "kb-checked", "--check") == 0
    assert f"PINECONE_INDEX_HOST={control.index('kb-checked').url}" in capsys.readouterr().out


def test_a_missing_key_or_a_refused_one_is_a_configuration_error(control, capsys):
    assert pinecone_index.main(["--name", "kb-x"], {"EMBEDDER": "gemini"}) == 2
    assert "set PINECONE_API_KEY" in capsys.readouterr().err
    assert run(control, "--name", "kb-x", PINECONE_API_KEY="wrong") == 2
    assert "Invalid API Key" in capsys.readouterr().err


def test_an_index_that_never_gets_ready_times_out_with_a_message(capsys):
    with PineconeControlPlane(api_key=KEY, ready_after=10_000) as slow:
        code = pinecone_index.main(["--name", "kb-slow", "--timeout", "0.2", "--poll-seconds", "0.02"], env(slow))
    assert code == 2
    assert "not ready after 0.2 s" in capsys.readouterr().err


def test_the_module_runs_as_a_command(control):
    result = subprocess.run([sys.executable, "-m", "infra.pinecone_index", "--name", "kb-cli", "--poll-seconds",
                             "0.01"], env={**env(control), "PATH": "/usr/bin:/bin"}, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"PINECONE_INDEX_HOST={control.index('kb-cli').url}" in result.stdout


# --- the control-plane stand-in itself, as the SDK sees it -----------------------------------------------------------
def test_standin_answers_conflict_not_found_and_protection_as_the_service_does(control):
    from pinecone.errors import ConflictError, ForbiddenError, NotFoundError

    pc = Pinecone(api_key=KEY, host=control.url)
    pc.indexes.create(name="kb-std", dimension=8, metric="euclidean", deletion_protection="enabled", timeout=-1)
    with pytest.raises(ConflictError) as conflict:
        pc.indexes.create(name="kb-std", dimension=8, timeout=-1)
    assert (conflict.value.status_code, conflict.value.body) == (
        409, {"error": {"code": "ALREADY_EXISTS", "message": "Resource already exists"}, "status": 409})
    with pytest.raises(NotFoundError) as missing:
        pc.indexes.describe("kb-none")
    assert missing.value.body["error"] == {"code": "NOT_FOUND", "message": "Resource kb-none not found"}
    with pytest.raises(ForbiddenError):
        pc.indexes.delete("kb-std", timeout=-1)

    model = pc.indexes.describe("kb-std")
    assert (model.dimension, model.metric, model.deployment.cloud, model.deployment.region) == (
        8, "euclidean", "aws", "us-east-1")  # the service's default deployment
    assert [i.name for i in pc.indexes.list()] == ["kb-std"]
    assert pc.index(host=model.host).describe_index_stats().metric == "euclidean"


def test_an_index_created_meanwhile_by_someone_else_is_checked_not_recreated(control):
    """Two runs at once: ours finds no index, the other creates it, our create gets 409 and checks theirs."""
    pc = Pinecone(api_key=KEY, host=control.url)
    real_create = pc.indexes.create

    def create_after_the_other_run(**kwargs):
        real_create(name=kwargs["name"], dimension=384, timeout=-1)  # the other run, with another embedder
        return real_create(**kwargs)

    pc.indexes.create = create_after_the_other_run
    spec = pinecone_index.IndexSpec("kb-race", 768, "cosine", "gcp", "us-central1")
    with pytest.raises(pinecone_index.IndexProblem, match="dimension 384, the embedder writes 768"):
        pinecone_index.ensure_index(pc, spec, poll_seconds=0.01)
    assert [r.method for r in control.requests if r.method == "POST"] == ["POST", "POST"]
