"""The ingestion path end to end: storage emulator -> Eventarc bridge -> ingest -> Cloud Tasks emulator -> embed ->
PostgreSQL chunks + vectors. Real emulators, real PostgreSQL, the real entry points over HTTP."""

from __future__ import annotations

import pytest
from cloudevents.http import CloudEvent, to_binary

GUIDE = """---
title: Refund policy
---
# Refund policy

Refunds are available within 30 days of purchase.

## How to request a refund

1. Open **Billing > Invoices**.
2. Choose the invoice and click *Request refund*.

## How long it takes

The money reaches your card within 5-10 business days.
"""

GUIDE_V2 = """# Refund policy

Refunds are now available within 14 days of purchase, for annual plans only.
"""


@pytest.fixture
def stack(make_stack):
    """Small chunks, so that these short documents still span several chunks and sections."""
    return make_stack(CHUNK_MAX_TOKENS=40, CHUNK_OVERLAP_TOKENS=8)


def search(stack, words: str) -> list[str]:
    """Source URIs whose chunks match the words in full-text search (any word)."""
    with stack.services.database().transaction() as cur:
        cur.execute(
            "SELECT DISTINCT source_uri FROM chunks WHERE search_vector @@ to_tsquery('english', %s)",
            (" | ".join(words.split()),),
        )
        return sorted(r[0] for r in cur.fetchall())


def test_upload_becomes_searchable_in_full_text_and_vectors(stack):
    stack.upload("billing/refunds.md", GUIDE)
    row = stack.wait_for("billing/refunds.md", "ready")

    assert row["title"] == "Refund policy" and row["topic"] == "billing" and row["chunk_count"] >= 1
    chunks = stack.chunks("billing/refunds.md")
    assert [c["heading_path"] for c in chunks] == [
        ["Refund policy"], ["Refund policy", "How to request a refund"], ["Refund policy", "How long it takes"]]
    assert "5-10 business days" in chunks[2]["content"]
    assert stack.uri("billing/refunds.md") in search(stack, "refund business days")

    # Vectors: one per chunk, the nearest to a paraphrase is this document.
    assert stack.vector_ids() == {c["id"] for c in chunks}
    query = stack.services.embedder().embed_query("how long does a refund take to reach my card")
    best = stack.services.vector_index().query("default", query, top_k=1)[0]
    assert best.id in {c["id"] for c in chunks} and best.metadata["topic"] == "billing"

    version = stack.versions("billing/refunds.md")[-1]
    assert version["attempts"] == 1 and {"parse_ms", "chunk_ms", "embed_ms", "index_ms"} <= set(version["timings"])


def test_overwrite_replaces_every_chunk_and_vector(stack):
    stack.upload("billing/refunds.md", GUIDE)
    stack.wait_for("billing/refunds.md", "ready")
    old = stack.chunks("billing/refunds.md")
    assert len(old) >= 2

    blob = stack.upload("billing/refunds.md", GUIDE_V2)
    stack.wait_for("billing/refunds.md", "ready", generation=int(blob.generation))
    stack.storage.wait_idle()  # the deleted(old generation) event GCS sends for an overwrite has been handled

    new = stack.chunks("billing/refunds.md")
    assert new and "14 days" in new[0]["content"]
    assert not any("5-10 business days" in c["content"] for c in new)
    assert len({c["version_id"] for c in new}) == 1
    assert stack.vector_ids() == {c["id"] for c in new}
    assert [v["status"] for v in stack.versions("billing/refunds.md")] == ["superseded", "ready"]
    assert stack.status("billing/refunds.md")["status"] == "ready"  # the overwrite's delete event was stale


def test_delete_removes_document_chunks_and_vectors(stack):
    stack.upload("billing/refunds.md", GUIDE)
    stack.upload("account/password.md", "# Reset your password\n\nReset links expire after 60 minutes.")
    stack.wait_for("billing/refunds.md", "ready")
    stack.wait_for("account/password.md", "ready")

    stack.delete("billing/refunds.md")
    stack.wait_for("billing/refunds.md", "deleted")

    assert stack.chunks("billing/refunds.md") == []
    assert stack.versions("billing/refunds.md") == []
    remaining = stack.chunks("account/password.md")
    # Only the other document's vectors are left: its chunks' and its title's.
    title = remaining[0]["id"].split("#")[0] + "#title"
    assert stack.vector_ids(titles=True) == {c["id"] for c in remaining} | {title}
    assert search(stack, "refund") == []


def test_same_content_twice_is_one_version(stack):
    stack.upload("billing/refunds.md", GUIDE)
    stack.wait_for("billing/refunds.md", "ready")
    blob = stack.upload("billing/refunds.md", GUIDE)  # new generation, same bytes
    stack.storage.wait_idle()

    assert len(stack.versions("billing/refunds.md")) == 1
    assert stack.generation("billing/refunds.md") == int(blob.generation)
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT outcome FROM ingest_events WHERE event_type LIKE '%%finalized' ORDER BY received_at")
        assert [r[0] for r in cur.fetchall()] == ["recorded", "unchanged"]


def _finalized_event(stack, blob, event_id="evt-1"):
    attributes = {"id": event_id, "type": "google.cloud.storage.object.v1.finalized",
                  "source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
                  "subject": f"objects/{blob.name}"}
    data = {"bucket": blob.bucket.name, "name": blob.name, "generation": str(blob.generation),
            "size": str(blob.size), "contentType": blob.content_type, "metageneration": "1"}
    return CloudEvent(attributes, data)


def test_duplicate_event_delivery_is_a_no_op(stack):
    stack.storage.remove_subscriber(stack.ingest.url)  # deliver by hand, twice, like an at-least-once retry
    blob = stack.upload("billing/refunds.md", GUIDE)
    blob.reload()
    headers, body = to_binary(_finalized_event(stack, blob))
    for _ in range(2):
        assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200
    stack.wait_for("billing/refunds.md", "ready")

    assert len(stack.versions("billing/refunds.md")) == 1
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT count(*) FROM ingest_events WHERE event_id = 'evt-1'")
        assert cur.fetchone()[0] == 1


def test_retried_embed_task_never_duplicates(stack):
    stack.upload("billing/refunds.md", GUIDE)
    stack.wait_for("billing/refunds.md", "ready")
    version_id = stack.versions("billing/refunds.md")[0]["id"]
    before = stack.chunks("billing/refunds.md")

    # Cloud Tasks redelivers a task that already succeeded: acknowledged, nothing written.
    again = stack.embed.client.post("/", json={"version_id": version_id, "tenant": "default"})
    assert again.status_code == 200 and again.get_json()["outcome"] == "skipped"

    # An attempt that died after writing vectors but before committing: the rerun overwrites in place.
    with stack.services.database().transaction() as cur:
        cur.execute("UPDATE document_versions SET status = 'queued' WHERE id = %s", (version_id,))
        cur.execute("UPDATE documents SET live_version_id = NULL")
    rerun = stack.embed.client.post("/", json={"version_id": version_id, "tenant": "default"})
    assert rerun.get_json()["outcome"] == "indexed"
    assert rerun.get_json()["embedded"] == 0  # every chunk came from the embedding cache
    after = stack.chunks("billing/refunds.md")
    assert [c["id"] for c in after] == [c["id"] for c in before]
    assert stack.vector_ids() == {c["id"] for c in after}


@pytest.mark.parametrize(
    "name, data, content_type, reason",
    [
        ("guides/broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", "application/pdf", "pdf"),
        ("guides/setup.exe", b"MZ\x90\x00\x03", "application/octet-stream", "unsupported"),
        ("guides/empty.md", b"   \n\n", "text/markdown", "empty"),
        ("guides/huge.txt", b"word " * 5000, "text/plain", "limit"),
    ],
)
def test_bad_files_are_failed_with_a_reason_and_acknowledged(make_stack, name, data, content_type, reason):
    stack = make_stack(MAX_FILE_BYTES=10_000)
    stack.upload("billing/refunds.md", GUIDE)
    stack.upload(name, data, content_type=content_type)
    row = stack.wait_for(name, "failed")
    stack.wait_for("billing/refunds.md", "ready")  # nothing else affected

    assert reason in row["error"].lower(), row["error"]
    assert stack.chunks(name) == []
    deliveries = [d for d in stack.storage.delivered if d.event.subject == f"objects/{name}"]
    assert [d.status for d in deliveries] == [200]  # acknowledged once: no retry storm


def test_malformed_event_is_acknowledged_and_embed_rejects_malformed_body(stack):
    event = CloudEvent({"id": "bad-1", "type": "google.cloud.storage.object.v1.finalized",
                        "source": "//storage.googleapis.com/projects/_/buckets/knowledge"}, {"nope": 1})
    headers, body = to_binary(event)
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200

    response = stack.embed.client.post("/", json={"tenant": "default"})
    assert response.status_code == 400
    assert response.get_json() == {"error": {"code": "bad_request", "message": "'version_id' (string) is required"}}
    assert stack.embed.client.post("/", data="x", content_type="text/plain").status_code == 415


def test_database_outage_makes_ingest_ask_for_a_retry(make_stack, postgres):
    stack = make_stack(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")
    stack.storage.remove_subscriber(stack.ingest.url)
    blob = stack.upload("billing/refunds.md", GUIDE)
    blob.reload()
    headers, body = to_binary(_finalized_event(stack, blob, "evt-outage"))
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 500  # Eventarc redelivers


def test_queue_outage_keeps_the_version_pending_and_a_retry_queues_it(make_stack):
    stack = make_stack(CLOUD_TASKS_EMULATOR_HOST="127.0.0.1:1")
    stack.storage.remove_subscriber(stack.ingest.url)
    blob = stack.upload("billing/refunds.md", GUIDE)
    blob.reload()
    headers, body = to_binary(_finalized_event(stack, blob, "evt-q"))
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 500
    assert stack.status("billing/refunds.md")["status"] == "pending"


def test_requeue_finishes_versions_the_queue_lost(stack):
    from infra.kb import requeue_unfinished
    from shared.config import get_settings

    stack.upload("billing/refunds.md", GUIDE)
    stack.wait_for("billing/refunds.md", "ready")
    # A version left 'queued' when its task was lost (queue gave up, or the local emulator restarted).
    with stack.services.database().transaction() as cur:
        cur.execute("UPDATE document_versions SET status = 'queued'")
        cur.execute("UPDATE documents SET live_version_id = NULL")
    assert requeue_unfinished(stack.services.database(), get_settings()) == 1
    stack.wait_for("billing/refunds.md", "ready")
    assert stack.vector_ids() == {c["id"] for c in stack.chunks("billing/refunds.md")}


def _event(blob, event_type: str, event_id: str, generation: int):
    return to_binary(CloudEvent(
        {"id": event_id, "type": f"google.cloud.storage.object.v1.{event_type}",
         "source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}", "subject": f"objects/{blob.name}"},
        {"bucket": blob.bucket.name, "name": blob.name, "generation": str(generation), "size": str(blob.size or 0),
         "contentType": blob.content_type or "text/markdown"},
    ))


def test_overwrite_events_in_either_order_never_delete_the_new_content(stack):
    first = stack.upload("billing/refunds.md", GUIDE)
    stack.wait_for("billing/refunds.md", "ready")
    stack.storage.remove_subscriber(stack.ingest.url)  # deliver the overwrite's two events by hand, delete first
    second = stack.upload("billing/refunds.md", GUIDE_V2)
    second.reload()

    headers, body = _event(second, "deleted", "del-old", int(first.generation))
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200
    assert stack.status("billing/refunds.md")["status"] == "ready"  # the old generation's delete was stale
    assert stack.chunks("billing/refunds.md")

    headers, body = _event(second, "finalized", "fin-new", int(second.generation))
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200
    stack.wait_for("billing/refunds.md", "ready", generation=int(second.generation))
    assert "14 days" in stack.chunks("billing/refunds.md")[0]["content"]

    # A late finalized event of the first generation changes nothing either.
    headers, body = _event(first, "finalized", "fin-old-late", int(first.generation))
    stack.ingest.client.post("/", headers=headers, data=body)
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT outcome FROM ingest_events WHERE event_id IN ('del-old', 'fin-old-late') ORDER BY event_id")
        assert [r[0] for r in cur.fetchall()] == ["stale", "stale"]


def test_tenant_from_object_metadata_scopes_chunks_and_vectors(stack):
    stack.upload("billing/refunds.md", GUIDE, metadata={"tenant": "acme", "source_url": "https://help.acme.test/refunds"})
    stack.upload("billing/other.md", "# Other tenant\n\nDefault tenant text.")
    stack.upload("billing/bad-tenant.md", "# X\n\ny", metadata={"tenant": "Not A Tenant!"})
    stack.wait_for("billing/refunds.md", "ready")
    stack.wait_for("billing/other.md", "ready")

    chunks = stack.chunks("billing/refunds.md")
    assert {c["tenant"] for c in chunks} == {"acme"}
    assert stack.vector_ids("acme") == {c["id"] for c in chunks}
    assert stack.vector_ids("default") == {c["id"] for c in stack.chunks("billing/other.md")}
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT DISTINCT url FROM chunks WHERE tenant = 'acme'")
        assert [r[0] for r in cur.fetchall()] == ["https://help.acme.test/refunds"]
        cur.execute("SELECT outcome, detail FROM ingest_events WHERE source_uri LIKE '%%bad-tenant%%'")
        outcome, detail = cur.fetchone()
    assert outcome == "failed" and "invalid tenant" in detail


def test_old_events_and_folder_placeholders_are_acknowledged_without_work(stack):
    stack.storage.remove_subscriber(stack.ingest.url)
    blob = stack.upload("billing/refunds.md", GUIDE)
    blob.reload()
    headers, body = _event(blob, "finalized", "too-old", int(blob.generation))
    headers["ce-time"] = "2020-01-01T00:00:00Z"  # older than MAX_EVENT_AGE_SECONDS: retrying forever helps nobody
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200

    folder = stack.upload("billing/", b"", content_type="application/x-directory")
    folder.reload()
    headers, body = _event(folder, "finalized", "folder", int(folder.generation))
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200

    assert stack.status("billing/refunds.md") is None and stack.status("billing/") is None
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT event_id, outcome FROM ingest_events ORDER BY event_id")
        assert [tuple(r) for r in cur.fetchall()] == [("folder", "ignored"), ("too-old", "ignored")]


def test_embed_health_check_can_warm_the_model(stack):
    assert stack.embed.client.get("/healthz").get_json() == {"status": "ok"}
    assert stack.embed.client.get("/healthz?warm=1").status_code == 200
    assert stack.services.embedder().calls  # the hashing test embedder was called once to warm up
