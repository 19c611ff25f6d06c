"""The ingestion path end to end: storage emulator -> Eventarc bridge -> ingest -> Cloud Tasks emulator -> embed ->
PostgreSQL chunks + vectors. Real emulators, real PostgreSQL, the real entry points over HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys

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


def test_in_a_versioned_bucket_archived_is_a_deletion_unless_a_newer_generation_is_live(stack):
    """Production's knowledge bucket keeps versions: removing a file sends `archived` for its live generation, and an
    overwrite sends `archived` for the generation it replaced."""
    first = stack.upload("billing/refunds.md", GUIDE)
    stack.wait_for("billing/refunds.md", "ready")
    stack.storage.remove_subscriber(stack.ingest.url)
    second = stack.upload("billing/refunds.md", GUIDE_V2)
    second.reload()
    headers, body = _event(second, "finalized", "fin-2", int(second.generation))
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200
    stack.wait_for("billing/refunds.md", "ready", generation=int(second.generation))

    headers, body = _event(first, "archived", "arch-1", int(first.generation))  # the overwrite's archived event
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200
    assert stack.status("billing/refunds.md")["status"] == "ready" and stack.chunks("billing/refunds.md")

    second.bucket.blob(second.name).delete()  # the editor removes the file: its live generation is archived
    headers, body = _event(second, "archived", "arch-2", int(second.generation))
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200
    stack.wait_for("billing/refunds.md", "deleted")
    assert stack.chunks("billing/refunds.md") == [] and stack.vector_ids() == set()
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT event_id, outcome FROM ingest_events WHERE event_id LIKE 'arch-%' ORDER BY event_id")
        assert [list(row) for row in cur.fetchall()] == [["arch-1", "stale"], ["arch-2", "deleted"]]


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


# --- Hostile files, text PostgreSQL cannot store, data PostgreSQL refuses -------------------------------------------


def _deliveries(stack, name: str) -> list[tuple[int | None, int]]:
    """(final status, attempts) of each finalized event of `name` the Eventarc bridge delivered."""
    stack.storage.wait_idle()
    return [(d.status, d.attempts) for d in stack.storage.delivered
            if d.event.subject == f"objects/{name}" and d.event.type.endswith("finalized")]


def test_the_issues_faq_with_a_lone_surrogate_ends_ready_cleaned(make_stack):
    """PostgreSQL refused its blocks with 22P02 and ingest answered 500 forever; now the text is cleaned on entry."""
    from infra.bench_hostile_files import FAQ_WITH_SURROGATE

    stack = make_stack()
    stack.upload("faq/billing-faq.json", FAQ_WITH_SURROGATE, content_type="application/json",
                 metadata={"source_url": "https://help.example.test/faq\x00"})
    row = stack.wait_for("faq/billing-faq.json", "ready", "failed")

    assert row["status"] == "ready", row["error"]
    assert row["title"] == "Billing FAQ \ufffd"
    contents = [c["content"] for c in stack.chunks("faq/billing-faq.json")]
    assert contents == ["Five to ten business days \ufffd after approval.", "Under Billing > Invoices."]
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT DISTINCT url FROM chunks")
        assert [r[0] for r in cur.fetchall()] == ["https://help.example.test/faq"]
    assert search(stack, "refund approval") == [stack.uri("faq/billing-faq.json")]
    assert _deliveries(stack, "faq/billing-faq.json") == [(200, 1)]


def _hostile(name):
    from infra import bench_hostile_files as hostile

    return {"empty.docx": hostile.docx_empty_paragraphs, "bomb.docx": hostile.docx_xml_bomb,
            "pages.pdf": hostile.pdf_page_tree_bomb, "big.html": hostile.html_many_elements}[name]()


@pytest.mark.parametrize("name, reason", [
    ("empty.docx", "inflates 646 times over"),  # 3.5 KB; ~140 s of ingest CPU before
    ("bomb.docx", "inflates 1,011 times over"),  # 311 KB, 300 MB of XML; 93 -> 995 MiB of ingest memory before
    ("pages.pdf", "has 1,000,000 pages; the limit is 2,000 (MAX_PDF_PAGES)"),  # 12 KB
    ("big.html", "tags; the limit is 100,000 (MAX_DOCUMENT_ELEMENTS)"),  # 15.7 MB; 13,219 chunks before
])
def test_hostile_files_are_failed_with_the_bound_and_acknowledged(make_stack, name, reason):
    stack = make_stack()
    stack.upload("billing/refunds.md", GUIDE)
    stack.upload(f"hostile/{name}", _hostile(name), content_type="application/octet-stream")
    row = stack.wait_for(f"hostile/{name}", "failed", "ready", timeout=60)
    stack.wait_for("billing/refunds.md", "ready")

    assert row["status"] == "failed" and reason in row["error"], row["error"]
    assert "split it into smaller files" in row["error"]
    assert stack.chunks(f"hostile/{name}") == []
    assert _deliveries(stack, f"hostile/{name}") == [(200, 1)]


def test_a_document_over_the_chunk_limit_is_failed_at_ingest_and_never_queued(make_stack):
    stack = make_stack(CHUNK_MAX_TOKENS=40, CHUNK_OVERLAP_TOKENS=8, MAX_CHUNKS_PER_DOCUMENT=6)
    sections = "".join(f"\n## Step {n}\n\nOpen the billing page and choose invoice number {n} to download it.\n"
                       for n in range(12))
    stack.upload("guides/long.md", "# Long guide\n" + sections)
    stack.upload("guides/short.md", "# Short guide\n" + sections[: len(sections) // 2])
    long_row = stack.wait_for("guides/long.md", "failed", "ready")
    short_row = stack.wait_for("guides/short.md", "ready", "failed")

    assert long_row["status"] == "failed"
    chunks = int(re.search(r"the document has (\d+) chunks; the limit is 6 \(MAX_CHUNKS_PER_DOCUMENT\): split it "
                           r"into smaller files$", long_row["error"]).group(1))
    assert chunks > 6
    [version] = stack.versions("guides/long.md")
    assert version["attempts"] == 0 and version["chunk_count"] is None  # embed never saw it
    assert stack.chunks("guides/long.md") == []
    # The count at ingest is embed's count: a document at the limit or under it is indexed with that many chunks.
    assert short_row["status"] == "ready" and short_row["chunk_count"] <= 6

    # What `make status` runs.
    listed = subprocess.run([sys.executable, "-m", "infra.kb", "status", "--status", "failed"], env={**os.environ},
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert "gs://knowledge/guides/long.md" in listed and "(MAX_CHUNKS_PER_DOCUMENT): split it" in listed


def test_a_file_at_the_chunk_limit_is_indexed_with_exactly_that_many_chunks(make_stack):
    from shared.config import Settings
    from shared.ingest.pipeline import prepare_document

    text = "# Guide\n" + "".join(f"\n## Part {n}\n\nInvoices for month {n} are under Billing.\n" for n in range(9))
    settings = Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", "CHUNK_MAX_TOKENS": "40",
                                  "CHUNK_OVERLAP_TOKENS": "8"})
    expected = prepare_document(text.encode(), "guide.md", "text/markdown", settings).chunk_count
    stack = make_stack(CHUNK_MAX_TOKENS=40, CHUNK_OVERLAP_TOKENS=8, MAX_CHUNKS_PER_DOCUMENT=expected)
    stack.upload("guides/guide.md", text)
    row = stack.wait_for("guides/guide.md", "ready", "failed")
    assert row["status"] == "ready" and row["chunk_count"] == expected


def test_data_postgresql_refuses_fails_the_document_and_ingest_acknowledges(make_stack, monkeypatch):
    """The second line of defence, with the first (cleaning) switched off: PostgreSQL itself refuses the blocks of
    the issue's FAQ (22P02, a lone surrogate in jsonb). Before, ingest answered 500 and the event came back every
    1...32 s; now the version is failed with the server's reason and the event acknowledged once."""
    import shared.ingest.parsers as parsers

    monkeypatch.setattr(parsers, "clean_text", lambda text: text, raising=False)
    stack = make_stack()
    faq = (b'{"faqs": [{"question": "How long does a refund take?", '
           b'"answer": "Five to ten business days \\ud800 after approval."}]}')
    stack.upload("faq/refunds.json", faq, content_type="application/json")
    row = stack.wait_for("faq/refunds.json", "failed", "ready", timeout=30)

    assert row["status"] == "failed"
    assert row["error"].startswith("PostgreSQL refused the document: invalid input syntax for type json "
                                   "(Unicode low surrogate must follow a high surrogate.) [SQLSTATE 22P02]")
    assert _deliveries(stack, "faq/refunds.json") == [(200, 1)]
    stack.upload("billing/refunds.md", GUIDE)  # the database and its pool are fine afterwards
    stack.wait_for("billing/refunds.md", "ready")


def test_chunks_postgresql_refuses_fail_the_version_and_embed_acknowledges(make_stack):
    """A real program-limit error that gets past every bound: a 2,040-letter word (a lexeme just under the
    2,047-byte limit) in a document under a 900-character folder makes the full-text posting's index row too large
    for its B-tree (SQLSTATE 54000). Before, embed answered 500 and Cloud Tasks retried the task."""
    import random

    rng = random.Random(7)
    folder = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(900))
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2040))
    stack = make_stack(CHUNK_MAX_TOKENS=1024, CHUNK_OVERLAP_TOKENS=32)
    name = f"{folder}/keys.md"
    stack.upload(name, f"# Signing keys\n\nThe signing key is {word} and it rotates yearly.\n")
    row = stack.wait_for(name, "failed", "ready", timeout=30)

    assert row["status"] == "failed", row
    assert row["error"].startswith("PostgreSQL refused the document's chunks: index row size ")
    assert "chunk_terms_lexeme_idx" in row["error"] and "[SQLSTATE 54000]" in row["error"]
    [version] = stack.versions(name)
    assert version["attempts"] == 1  # acknowledged: the tasks emulator did not deliver it again
    assert stack.chunks(name) == []
    again = stack.embed.client.post("/", json={"version_id": version["id"], "tenant": "default"})
    assert again.status_code == 200 and again.get_json()["outcome"] == "skipped"


def test_a_new_version_postgresql_refuses_leaves_the_live_versions_chunks_and_vectors_as_they_were(make_stack):
    """The vectors are written inside the chunk swap's transaction, after PostgreSQL took the chunks. Before, they
    were written first: a version whose chunks PostgreSQL then refused had already overwritten the live version's
    vectors (same ids) and deleted the ones it did not have."""
    import random

    rng = random.Random(11)
    folder = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(900))
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2040))
    stack = make_stack(CHUNK_MAX_TOKENS=1024, CHUNK_OVERLAP_TOKENS=32)  # the long word stays one lexeme
    name = f"{folder}/keys.md"
    good = "# Signing keys\n\n" + "\n\n".join(" ".join(f"Rotate key {n}-{k} every year." for k in range(60))
                                              for n in range(8))
    stack.upload(name, good)
    stack.wait_for(name, "ready")

    def index_state():
        with stack.services.database().transaction() as cur:
            cur.execute("SELECT id, embedding::text, metadata->>'version_id' FROM chunk_vectors ORDER BY id")
            return [tuple(r) for r in cur.fetchall()]

    live_chunks, live_vectors = stack.chunks(name), index_state()
    assert len(live_chunks) > 2 and len(live_vectors) == len(live_chunks) + 1  # and the title vector

    stack.upload(name, f"# Signing keys\n\nThe signing key is {word}.\n")  # one chunk, refused by PostgreSQL
    stack.wait_for(name, "failed", timeout=30)
    assert stack.chunks(name) == live_chunks
    assert index_state() == live_vectors


def test_the_same_bytes_uploaded_again_after_a_delete_get_an_embed_task_of_their_own(db):
    """The version id comes from the content, so a file deleted and uploaded again is the same version; its task
    was named by the version alone, and Cloud Tasks refuses a task name used within about an hour (the emulator
    does not, so this counts the names): the upload stayed `queued` for good. A redelivered event still makes
    no second task."""
    from shared.config import Settings
    from shared.documents import DocumentStore
    from shared.ingest.pipeline import DELETED, FINALIZED, IngestService
    from shared.tasks import EmbedQueue

    class Objects:
        live: int | None = None

        def download(self, bucket, name, generation=None):
            return b"# Refunds\n\nRefunds reach the card within ten days.\n"

        def live_generation(self, bucket, name):
            return self.live

    class Queue:
        names: list[str] = []

        def enqueue(self, version_id, tenant, attempt=0):
            self.names.append(EmbedQueue(settings).task_name(version_id, attempt))

    class Vectors:
        def delete(self, tenant, ids):
            pass

    settings = Settings.from_env({"DATABASE_URL": "postgresql://unused@127.0.0.1:1/x"}).validate()
    queue = Queue()
    service = IngestService(settings, DocumentStore(db), Objects(), queue, Vectors())

    def event(event_id, kind, generation):
        data = {"bucket": "knowledge", "name": "billing/refunds.md", "generation": str(generation), "size": "50",
                "contentType": "text/markdown"}
        return service.handle_event(event_id=event_id, event_type=kind, event_time=None, data=data)

    assert event("e1", FINALIZED, 1).outcome == "recorded"
    assert event("e1", FINALIZED, 1).outcome == "duplicate"  # redelivered: no second task
    assert event("e2", DELETED, 1).outcome == "deleted"
    assert event("e3", FINALIZED, 2).outcome == "recorded"  # the same bytes again
    assert len(queue.names) == 2 and len(set(queue.names)) == 2, queue.names
