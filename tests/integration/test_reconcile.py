"""Reconciliation through the real stack: the storage emulator (and, for listings that fail or leave an object out, a
proxy in front of it that speaks the same JSON API), ingest and embed over HTTP, the Cloud Tasks emulator and
PostgreSQL. Events are "lost" the way production loses them: the trigger is gone (no subscriber) or ingest could
not record the event and nobody redelivers it."""

from __future__ import annotations

import http.server
import json
import logging
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.http import CloudEvent, to_binary

from infra import kb

GUIDE = "# Refund policy\n\nRefunds are available within 30 days of purchase.\n"
GUIDE_V2 = "# Refund policy\n\nRefunds are now available within 14 days, for annual plans only.\n"
PASSWORD = "# Reset your password\n\nReset links expire after 60 minutes.\n"


def finalized_event(blob, event_id: str, time: str | None = None):
    attributes = {"id": event_id, "type": "google.cloud.storage.object.v1.finalized",
                  "source": f"//storage.googleapis.com/projects/_/buckets/{blob.bucket.name}",
                  "subject": f"objects/{blob.name}"}
    if time:
        attributes["time"] = time
    return to_binary(CloudEvent(attributes, {
        "bucket": blob.bucket.name, "name": blob.name, "generation": str(blob.generation), "size": str(blob.size),
        "contentType": blob.content_type, "metadata": blob.metadata or {}}))


def reconcile(capsys, *args: str) -> tuple[int, str]:
    """`python -m infra.kb reconcile ARGS` in this process (the environment is the stack's); (exit code, output)."""
    capsys.readouterr()
    code = kb.run(["reconcile", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def lose_events(stack) -> None:
    """From now on the bucket's events reach nobody (a deleted trigger, or redelivery given up)."""
    stack.storage.wait_idle()
    stack.storage.remove_subscriber(stack.ingest.url)


def events(stack) -> list[tuple[str, str]]:
    with stack.services.database().transaction() as cur:
        cur.execute("SELECT event_id, outcome FROM ingest_events ORDER BY received_at")
        return [tuple(r) for r in cur.fetchall()]


def test_an_upload_ingest_could_not_record_is_found_by_reconcile_not_by_requeue(make_stack, database_url,
                                                                                 monkeypatch, capsys):
    from shared.config import get_settings

    # PostgreSQL is down when the file arrives: ingest answers 500, and the event is never delivered again.
    stack = make_stack(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")
    stack.storage.remove_subscriber(stack.ingest.url)
    blob = stack.upload("billing/refunds.md", GUIDE)
    blob.reload()
    headers, body = finalized_event(blob, "evt-during-outage")
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 500
    # An object whose metadata names an invalid tenant: ingest records it as failed, with no document.
    stack.upload("billing/odd.md", GUIDE, metadata={"tenant": "Not A Tenant!"})

    monkeypatch.setenv("DATABASE_URL", database_url)  # the database is back
    stack.services.reset()
    assert stack.status("billing/refunds.md") is None
    assert kb.requeue_unfinished(stack.services.database(), get_settings()) == 0  # nothing recorded, nothing to redo

    code, out = reconcile(capsys)
    assert code == 0, out
    assert re.search(r"ingest\s+missing\s+gs://knowledge/billing/refunds\.md\s+default\s+recorded", out), out
    assert "ingested 2, deleted 0" in out  # refunds.md, and odd.md (its failure is recorded)
    stack.wait_for("billing/refunds.md", "ready")
    assert "30 days" in stack.chunks("billing/refunds.md")[0]["content"]

    # A rerun finds nothing new: the same findings are recorded duplicates, nothing is ingested twice.
    recorded = events(stack)
    code, out = reconcile(capsys)
    assert code == 0 and "ingested 0, deleted 0" in out and "kept 1" in out, out
    assert events(stack) == recorded
    assert len(stack.versions("billing/refunds.md")) == 1
    assert sorted(outcome for event_id, outcome in recorded if event_id.startswith("reconcile-")) == ["failed",
                                                                                                     "recorded"]


def test_reconcile_ingests_a_newer_generation_and_a_document_deleted_while_its_object_came_back(stack, capsys):
    stack.upload("billing/refunds.md", GUIDE)
    stack.upload("account/password.md", PASSWORD)
    stack.wait_for("billing/refunds.md", "ready")
    stack.wait_for("account/password.md", "ready")
    stack.delete("account/password.md")
    stack.wait_for("account/password.md", "deleted")

    lose_events(stack)
    newer = stack.upload("billing/refunds.md", GUIDE_V2)  # overwritten: the database still has the old generation
    stack.upload("account/password.md", PASSWORD)  # uploaded again: the database has a tombstone

    code, out = reconcile(capsys)
    assert code == 0, out
    assert re.search(r"ingest\s+older\s+gs://knowledge/billing/refunds\.md", out), out
    assert re.search(r"ingest\s+deleted\s+gs://knowledge/account/password\.md", out), out
    stack.wait_for("billing/refunds.md", "ready", generation=int(newer.generation))
    stack.wait_for("account/password.md", "ready")
    assert "14 days" in stack.chunks("billing/refunds.md")[0]["content"]
    assert [v["status"] for v in stack.versions("billing/refunds.md")] == ["superseded", "ready"]
    assert stack.vector_ids() == {c["id"] for name in ("billing/refunds.md", "account/password.md")
                                  for c in stack.chunks(name)}


def test_a_document_whose_object_was_deleted_behind_our_back_is_removed(stack, capsys):
    stack.upload("billing/refunds.md", GUIDE)
    stack.upload("account/password.md", PASSWORD)
    stack.wait_for("billing/refunds.md", "ready")
    stack.wait_for("account/password.md", "ready")
    lose_events(stack)
    stack.delete("billing/refunds.md")

    code, out = reconcile(capsys, "--dry-run")
    assert code == 0 and re.search(r"delete\s+gone\s+gs://knowledge/billing/refunds\.md\s+default\s+dry run", out)
    assert "(dry run: nothing changed)" in out
    assert stack.status("billing/refunds.md")["status"] == "ready"

    code, out = reconcile(capsys)
    assert code == 0 and "ingested 0, deleted 1" in out, out
    assert stack.status("billing/refunds.md")["status"] == "deleted"
    assert stack.chunks("billing/refunds.md") == []
    remaining = stack.chunks("account/password.md")
    assert stack.vector_ids(titles=True) == {c["id"] for c in remaining} | {remaining[0]["id"].split("#")[0] + "#title"}
    assert "nothing to do" in reconcile(capsys)[1]


def test_deletions_are_capped_per_run_and_the_rest_are_reported(stack, capsys):
    names = [f"guides/page-{i}.md" for i in range(3)]
    for name in names:
        stack.upload(name, f"# Page {name}\n\nSome text about {name}.")
    for name in names:
        stack.wait_for(name, "ready")
    lose_events(stack)
    for name in names:
        stack.delete(name)

    code, out = reconcile(capsys, "--max-deletes", "2")
    assert code == 0 and "deleted 2, withheld 1" in out, out
    assert re.search(r"withheld\s+gone\s+gs://knowledge/guides/page-2\.md.*over the cap of 2", out), out
    assert [stack.status(n)["status"] for n in names] == ["deleted", "deleted", "ready"]

    code, out = reconcile(capsys)
    assert code == 0 and "deleted 1, withheld 0" in out, out
    assert stack.status(names[2])["status"] == "deleted"


class GcsProxy:
    """The storage emulator behind a proxy that changes object listings the way a flaky or stale GCS front might:
    `fail_after_first_page` serves the first half of the objects with a `nextPageToken` and answers the next page
    with a 403 error body (a non-retryable status, so the client fails at once; a retryable 5xx is retried by the
    client and then fails the same way); `hide` leaves those object names out of an otherwise complete listing.
    Every other request is forwarded unchanged."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.fail_after_first_page = False
        self.hide: set[str] = set()
        self.listings = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = urllib.parse.urlsplit(self.path)
                if re.fullmatch(r"/storage/v1/b/[^/]+/o", path.path):
                    return self._listing(urllib.parse.parse_qs(path.query))
                self._forward()

            do_POST = do_PUT = do_DELETE = do_PATCH = lambda self: self._forward()

            def _listing(self, query):
                proxy.listings += 1
                if "pageToken" in query:
                    return self._send(403, {"error": {"code": 403, "message": "listing interrupted"}})
                with urllib.request.urlopen(proxy.upstream + self.path, timeout=10) as response:
                    listing = json.load(response)
                items = [i for i in listing.get("items", []) if i["name"] not in proxy.hide]
                if proxy.fail_after_first_page:
                    items, listing["nextPageToken"] = items[: len(items) // 2], "page-2"
                listing["items"] = items
                self._send(200, listing)

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = urllib.request.Request(proxy.upstream + self.path, method=self.command,
                                                 data=self.rfile.read(length) if length else None,
                                                 headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, headers, data = response.status, response.headers, response.read()
                except urllib.error.HTTPError as error:
                    status, headers, data = error.code, error.headers, error.read()
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxy(stack, monkeypatch):
    """A GcsProxy in front of the stack's storage; `kb reconcile` (a new storage client) goes through it."""
    server = GcsProxy(stack.storage.url)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    yield server
    server.stop()


def test_a_listing_that_fails_part_way_deletes_nothing(stack, proxy, capsys):
    names = [f"guides/page-{i}.md" for i in range(4)]
    for name in names:
        stack.upload(name, f"# Page {name}\n\nSome text about {name}.")
    for name in names:
        stack.wait_for(name, "ready")
    recorded = events(stack)
    proxy.fail_after_first_page = True

    code, out = reconcile(capsys)
    assert code == 1 and "error: cannot list gs://knowledge" in out, out
    assert proxy.listings == 2  # the first page was read: half the documents looked gone, and none was deleted
    assert [stack.status(n)["status"] for n in names] == ["ready"] * 4
    assert all(stack.chunks(n) for n in names)
    assert events(stack) == recorded


def test_a_document_missing_from_a_listing_is_read_again_before_it_is_deleted(stack, proxy, capsys):
    stack.upload("billing/refunds.md", GUIDE)
    stack.wait_for("billing/refunds.md", "ready")
    proxy.hide = {"billing/refunds.md"}  # a complete listing that leaves out an object which still exists

    code, out = reconcile(capsys)
    assert code == 0 and re.search(r"kept\s+listed as gone\s+gs://knowledge/billing/refunds\.md", out), out
    assert "deleted 0" in out
    assert stack.status("billing/refunds.md")["status"] == "ready"


def test_an_event_older_than_six_hours_is_still_ingested(stack):
    """Eventarc redelivers for 24 h: an event delivered 12 h after the upload (an outage) must not be dropped."""
    stack.storage.remove_subscriber(stack.ingest.url)
    blob = stack.upload("billing/refunds.md", GUIDE)
    blob.reload()
    twelve_hours_ago = (datetime.now(UTC) - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers, body = finalized_event(blob, "evt-late", time=twelve_hours_ago)
    assert stack.ingest.client.post("/", headers=headers, data=body).status_code == 200
    assert events(stack) == [("evt-late", "recorded")]
    stack.wait_for("billing/refunds.md", "ready")


@pytest.fixture
def scrape():
    from tests.conftest import FunctionServer

    server = FunctionServer("scrape")
    yield server
    server.stop()


def test_the_nightly_scrape_call_reconciles_and_logs_a_summary_record(stack, scrape):
    stack.upload("account/password.md", PASSWORD)
    stack.wait_for("account/password.md", "ready")
    lose_events(stack)
    stack.upload("billing/refunds.md", GUIDE)
    stack.delete("account/password.md")

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("functions.scrape")
    logger.addHandler(handler)
    try:
        assert scrape.client.get("/healthz").get_json() == {"status": "ok"}
        dry = scrape.client.post("/", json={"dry_run": True}).get_json()["jobs"]["reconcile"]
        assert (dry["dry_run"], dry["ingested"], dry["deleted"]) == (True, 1, 1)
        response = scrape.client.post("/")  # what Cloud Scheduler sends: a POST, no body needed
    finally:
        logger.removeHandler(handler)

    assert response.status_code == 200
    summary = response.get_json()["jobs"]["reconcile"]
    assert {k: summary[k] for k in ("objects", "documents", "ingested", "deleted", "withheld", "errors")} == {
        "objects": 1, "documents": 1, "ingested": 1, "deleted": 1, "withheld": 0, "errors": 0}
    labels = records[-1].labels
    assert labels["job"] == "reconcile" and (labels["ingested"], labels["deleted"]) == ("1", "1")
    stack.wait_for("billing/refunds.md", "ready")
    assert stack.status("account/password.md")["status"] == "deleted"
    assert scrape.client.post("/", data="[1]", content_type="application/json").status_code == 400
