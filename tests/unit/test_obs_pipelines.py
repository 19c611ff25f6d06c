"""The log events of ingest, embed, sync and the Gemini embedder: `ingest_version` per version outcome (failed with
its reason, recorded, deleted, and embed's failure), `sync_run` per finished run and `reconcile` per reconciliation
with numeric fields, `model_error` per failed embedding call. Stores are small in-memory stand-ins."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.genai import errors

from shared import services
from shared.config import Settings
from shared.documents import Document, Version, document_id
from shared.embeddings.gemini import GeminiEmbedder
from shared.embeddings.hashing import HashingEmbedder
from shared.errors import ConfigurationError, UpstreamUnavailable
from shared.ingest.indexer import Indexer
from shared.ingest.pipeline import DELETED, FINALIZED, IngestService
from shared.sync.engine import SUMMARY_COUNTERS, SyncEngine
from shared.sync.state import Run
from tests.logevents import watching

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "kb"



@pytest.fixture
def events():
    with watching("shared.ingest.pipeline", "shared.ingest.indexer", "shared.sync.engine", "shared.embeddings.gemini",
                  "functions.scrape") as handler:
        yield handler


# --- ingest ----------------------------------------------------------------------------------------------------------
class Store:
    """The DocumentStore calls of ingest, in memory."""

    def __init__(self, document: Document | None = None, chunk_ids=()):
        self.document = document
        self._chunk_ids = list(chunk_ids)
        self.versions: list[dict] = []
        self.statuses: list[tuple] = []

    def event_seen(self, event_id):
        return False

    def record_event(self, *args):
        pass

    def get_document(self, doc_id):
        return self.document

    def record_version(self, **fields):
        self.versions.append(fields)
        return SimpleNamespace(id=f"version-{len(self.versions)}")

    def set_status(self, version_id, status, **kwargs):
        self.statuses.append((version_id, status))

    def document_lock(self, doc_id):
        return contextlib.nullcontext()

    def chunk_ids(self, doc_id):
        return self._chunk_ids

    def delete_document(self, doc_id, generation):
        self.document = None


class Objects:
    def __init__(self, data: bytes):
        self.data = data

    def download(self, bucket, name, generation):
        return self.data

    def live_generation(self, bucket, name):
        return None


class Queue:
    def __init__(self):
        self.tasks: list[str] = []

    def enqueue(self, version_id, tenant, attempt=0):
        self.tasks.append(version_id)
        return f"tasks/{version_id}"


def settings(**env) -> Settings:
    return Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", **env})


def storage_event(service: IngestService, name: str, size: int, event_type: str = FINALIZED):
    return service.handle_event(event_id=f"e-{name}", event_type=event_type, event_time=datetime.now(UTC),
                                data={"bucket": BUCKET, "name": name, "generation": "3", "size": str(size),
                                      "contentType": "text/markdown"})


def test_a_rejected_file_is_one_failed_ingest_version_with_its_reason(events):
    service = IngestService(settings(MAX_FILE_BYTES="100"), Store(), Objects(b""), Queue(), vectors=None)
    outcome = storage_event(service, "billing/huge.md", 500)
    assert outcome.outcome == "failed"
    [event] = events.of("ingest_version")
    assert (event["stage"], event["outcome"], event["tenant"]) == ("ingest", "failed", "default")
    assert "MAX_FILE_BYTES" in event["reason"] and event["reason"] == outcome.detail
    assert event["document_id"] == document_id("default", f"gs://{BUCKET}/billing/huge.md")
    assert event["bytes"] == 500 and isinstance(event["duration_ms"], float)
    assert event["logging.googleapis.com/labels"]["outcome"] == "failed"


def test_a_recorded_version_carries_its_bytes_and_chunks_and_a_reason_only_on_failure(events):
    data = b"# Refunds\n\nRefunds take 5 days.\n"
    queue = Queue()
    service = IngestService(settings(), Store(), Objects(data), queue, vectors=None)
    assert storage_event(service, "billing/refunds.md", len(data)).outcome == "recorded"
    [event] = events.of("ingest_version")
    assert (event["outcome"], event["bytes"], event["severity"]) == ("recorded", len(data), "INFO")
    assert isinstance(event["chunks"], int) and event["chunks"] >= 1
    assert "reason" not in event and queue.tasks == ["version-1"]


def test_a_deletion_is_one_deleted_ingest_version(events):
    doc_id = document_id("default", f"gs://{BUCKET}/billing/refunds.md")
    document = Document(id=doc_id, tenant="default", source_uri=f"gs://{BUCKET}/billing/refunds.md", url="",
                        title="Refunds", topic="billing", generation=3, latest_version_id="v", live_version_id="v",
                        deleted_at=None)
    vectors = SimpleNamespace(delete=lambda tenant, ids: None)
    service = IngestService(settings(), Store(document, ["a", "b"]), Objects(b""), Queue(), vectors)
    assert storage_event(service, "billing/refunds.md", 0, DELETED).outcome == "deleted"
    [event] = events.of("ingest_version")
    assert (event["outcome"], event["chunks"], event["document_id"]) == ("deleted", 2, doc_id)


def test_an_event_that_changes_no_version_logs_no_ingest_version(events):
    service = IngestService(settings(), Store(), Objects(b""), Queue(), vectors=None)
    assert storage_event(service, "billing/", 0).outcome == "ignored"
    assert events.of("ingest_version") == []
    assert any(json.loads(line)["message"] == "ingest finalized: ignored" for line in events.lines)


# --- embed -----------------------------------------------------------------------------------------------------------
def test_embed_giving_up_is_one_failed_ingest_version_of_stage_embed(events):
    doc = Document(id="doc-1", tenant="acme", source_uri="gs://kb/a.md", url="", title="A", topic="", generation=1,
                   latest_version_id="v1", live_version_id=None, deleted_at=None)
    version = Version(id="v1", document_id="doc-1", tenant="acme", content_hash="h", generation=1, title="A",
                      status="queued", error=None, blocks=[], chunk_count=None, attempts=3,
                      timings={"embed_calls": 3})
    store = SimpleNamespace(get_version=lambda vid, with_blocks=True: version, get_document=lambda i: doc,
                            document_lock=lambda i: contextlib.nullcontext(), statuses=[])
    store.set_status = lambda vid, status, **kw: store.statuses.append(status)
    indexer = Indexer(settings(EMBED_MAX_CALLS="3"), store, HashingEmbedder(), cache=None, vectors=None)
    outcome = indexer.index_version("v1")
    assert outcome.outcome == "failed" and store.statuses == ["failed"]
    [event] = events.of("ingest_version")
    assert (event["stage"], event["outcome"], event["tenant"], event["document_id"]) == (
        "embed", "failed", "acme", "doc-1")
    assert "EMBED_MAX_CALLS" in event["reason"] and isinstance(event["duration_ms"], float)
    assert "chunks" not in event and event["severity"] == "WARNING"


# --- sync and reconcile ----------------------------------------------------------------------------------------------
def run(**overrides) -> Run:
    started = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    fields = dict(id=41, tenant="acme", source="docs", kind="website", trigger="schedule", dry_run=False,
                  phase="done", outcome="partial", reasons=["robots.txt failed"],
                  counts={"discovered": 12, "new": 2, "changed": 1, "errors": 3, "requests": 15, "bytes": 40960},
                  errors={"timeout": 3}, state={}, step=4, started_at=started,
                  finished_at=started.replace(minute=2, second=30))
    return Run(**{**fields, **overrides})


def test_a_finished_run_is_one_sync_run_with_numeric_counters_and_the_labels(events):
    engine = SyncEngine(settings(), db=None, objects=None)
    engine._log_summary(run())
    [event] = events.of("sync_run")
    assert (event["tenant"], event["source"], event["run"], event["status"], event["dry_run"]) == (
        "acme", "docs", "41", "partial", False)
    assert event["duration_s"] == 150.0 and isinstance(event["duration_s"], float)
    assert (event["discovered"], event["new"], event["changed"], event["errors"], event["bytes"]) == (
        12, 2, 1, 3, 40960)
    for name in SUMMARY_COUNTERS:  # the main counters are always there, 0 when the run counted none
        assert isinstance(event[name], int) and not isinstance(event[name], bool), name
    assert event["deleted"] == 0 and event["withheld"] == 0
    labels = event["logging.googleapis.com/labels"]  # (and `function`, once a function set up logging)
    assert {k: labels[k] for k in ("job", "tenant", "source", "run", "outcome")} == {
        "job": "sync", "tenant": "acme", "source": "docs", "run": "41", "outcome": "partial"}
    assert "robots.txt failed" in event["message"]


def test_a_run_whose_source_was_removed_is_a_failed_sync_run(events):
    engine = SyncEngine(settings(), db=None, objects=None)
    waiting = run(phase="fetch", outcome="", counts={}, reasons=[], finished_at=None)

    def finish(r, outcome):
        r.outcome, r.phase, r.finished_at = outcome, "done", r.started_at

    def removed(tenant, name):
        raise LookupError(name)

    engine.state = SimpleNamespace(lease=lambda *a: waiting, finish=finish)
    engine.sources = SimpleNamespace(get=removed)
    assert engine.step(41, 4)["outcome"] == "failed"
    [event] = events.of("sync_run")
    assert (event["status"], event["discovered"], event["duration_s"]) == ("failed", 0, 0.0)


def test_reconcile_is_one_event_with_the_summarys_keys(events, monkeypatch):
    from functions_framework import create_app

    summary = {"bucket": "kb", "tenant": "*", "dry_run": False, "objects": 7, "documents": 6, "ingested": 1,
               "deleted": 0, "withheld": 0, "kept": 6, "errors": 0, "seconds": 0.42}
    for key, value in {"DATABASE_URL": "postgresql://x@127.0.0.1:1/db", "GOOGLE_CLOUD_PROJECT": "demo-test"}.items():
        monkeypatch.setenv(key, value)
    services.reset()
    reconciler = SimpleNamespace(run=lambda dry_run=False: SimpleNamespace(summary=lambda: dict(summary)))
    monkeypatch.setattr(services, "reconciler", lambda: reconciler)
    try:
        client = create_app("scrape", str(ROOT / "functions" / "scrape" / "main.py")).test_client()
        response = client.post("/", json={"jobs": ["reconcile"]})
    finally:
        services.reset()
    assert response.status_code == 200
    [event] = events.of("reconcile")
    assert {k: event[k] for k in summary} == summary
    assert isinstance(event["objects"], int) and isinstance(event["seconds"], float) and event["dry_run"] is False
    assert event["logging.googleapis.com/labels"]["job"] == "reconcile"
    assert event["logging.googleapis.com/labels"]["ingested"] == "1"  # the labels stay strings, for their readers


# --- the Gemini embedder ---------------------------------------------------------------------------------------------
class Embeddings:
    def __init__(self, failures):
        self.failures = list(failures)
        self.models = self

    def embed_content(self, *, model, contents, config):
        if self.failures:
            raise self.failures.pop(0)
        return SimpleNamespace(embeddings=[SimpleNamespace(values=[1.0] * 8) for _ in contents])


def api_error(code: int) -> errors.APIError:
    return errors.APIError(code, {"error": {"code": code, "message": "scripted", "status": "X"}})


def test_embedder_logs_a_warning_per_retried_call_and_an_error_when_it_gives_up(events):
    embedder = GeminiEmbedder(lambda: Embeddings([api_error(429), api_error(503)]), dimension=8, max_retries=1,
                              sleep=lambda s: None)
    with pytest.raises(UpstreamUnavailable):
        embedder.embed_batch(["a"], "document")
    retried, failed = events.of("model_error")
    assert (retried["operation"], retried["code"], retried["retryable"], retried["severity"]) == (
        "embed", 429, True, "WARNING")
    assert (failed["code"], failed["retryable"], failed["severity"], failed["error"]) == (
        503, True, "ERROR", "APIError")


def test_embedder_logs_a_refusal_and_a_connection_failure_as_errors(events):
    with pytest.raises(ConfigurationError):
        GeminiEmbedder(lambda: Embeddings([api_error(403)]), dimension=8).embed_batch(["a"], "query")
    with pytest.raises(ConnectionResetError):
        GeminiEmbedder(lambda: Embeddings([ConnectionResetError()]), dimension=8).embed_batch(["a"], "query")
    assert GeminiEmbedder(lambda: Embeddings([]), dimension=8).embed_batch(["a"], "query") == [[1.0] * 8]
    refused, broken = events.of("model_error")
    assert (refused["code"], refused["retryable"], refused["severity"]) == (403, False, "ERROR")
    assert (broken["code"], broken["error"], broken["retryable"]) == (0, "ConnectionResetError", True)
