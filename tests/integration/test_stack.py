"""The local stand-ins for the cloud services, exercised through the real client libraries.

Every service runs on a port chosen at run time and is stopped by its fixture; nothing here is skipped.
"""

from __future__ import annotations

import http.server
import json
import logging
import math
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pg8000.dbapi
import psutil
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage, tasks_v2

from infra.stack.firestore import FirestoreEmulator
from infra.stack.postgres import PostgresServer
from infra.stack.processes import ManagedProcess, PortTakenError, free_port
from infra.stack.storage import DELETED, FINALIZED, StorageEmulator
from infra.stack.tasks import TasksEmulator

# --- a local HTTP receiver standing in for a Cloud Function ------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Records every request; answers with the scripted statuses first, then 200."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        self._scripted: deque[int] = deque()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.requests.put(Received(self.command, self.path, headers, body))
                status = receiver._scripted.popleft() if receiver._scripted else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer_next(self, *statuses: int) -> None:
        self._scripted.extend(statuses)

    def take(self, count: int, timeout: float = 10.0) -> list[Received]:
        return [self.requests.get(timeout=timeout) for _ in range(count)]

    def assert_empty(self) -> None:
        assert self.requests.empty(), f"unexpected request: {self.requests.get_nowait()}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    recv = Receiver()
    yield recv
    recv.close()


def live_pids(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


# --- PostgreSQL ----------------------------------------------------------------------------------------------------


@pytest.fixture
def pg_data_dir():
    # Not under tmp_path: when we run as root, postgres runs as the user `pgserver`, and every pytest session that
    # starts meanwhile re-locks /tmp/pytest-of-root to 0700.
    parent = Path(tempfile.mkdtemp(prefix="stack-test-pg-"))
    yield parent / "pg"
    shutil.rmtree(parent, ignore_errors=True)


def test_postgres_over_tcp_with_pgvector_survives_a_restart(pg_data_dir):
    data_dir = pg_data_dir
    server = PostgresServer(data_dir)
    server.start()
    try:
        url = urllib.parse.urlsplit(server.url)
        assert (url.scheme, url.username, url.hostname, url.path) == ("postgresql", "postgres", "127.0.0.1",
                                                                      "/knowledge")
        conn = pg8000.dbapi.connect(user=url.username, host=url.hostname, port=url.port, database=url.path[1:])
        cursor = conn.cursor()
        cursor.execute("SELECT '[1,2,3]'::vector <=> '[1,2,4]'")
        distance = cursor.fetchone()[0]
        assert distance == pytest.approx(1 - 17 / math.sqrt(14 * 21), abs=1e-6)
        cursor.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        cursor.execute("INSERT INTO notes VALUES (1, 'refunds take 5 days'), (2, 'héllo wörld')")
        conn.commit()
        conn.close()
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    finally:
        server.stop()

    assert not live_pids([postmaster]), "postmaster still running after stop()"
    assert not (data_dir / "postmaster.pid").exists()

    with PostgresServer(data_dir) as again:
        conn = again.connect()
        cursor = conn.cursor()
        cursor.execute("SELECT body FROM notes ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == ["refunds take 5 days", "héllo wörld"]
        conn.close()

        isolated_url = again.create_database("test_isolated")
        assert isolated_url.endswith("/test_isolated")
        conn = again.connect("test_isolated")
        cursor = conn.cursor()
        cursor.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() == ["vector"]
        cursor.execute("SELECT to_regclass('notes')")
        assert cursor.fetchone() == [None], "a new database must not see the default database's tables"
        conn.close()
        again.drop_database("test_isolated")


# --- Firestore -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def firestore_emulator(tmp_path_factory):
    emulator = FirestoreEmulator(project="demo-test", log_dir=tmp_path_factory.mktemp("logs"))
    emulator.start()
    tree = emulator.pids()  # the wrapper script and its JVM
    yield emulator
    emulator.stop()
    assert not live_pids(tree), "Firestore emulator processes survived stop()"


@pytest.fixture
def firestore_client(firestore_emulator, monkeypatch):
    for name, value in firestore_emulator.env().items():
        monkeypatch.setenv(name, value)
    client = firestore.Client(project=firestore_emulator.project)
    yield client
    client.close()


def test_firestore_write_read_and_reset(firestore_emulator, firestore_client):
    doc = firestore_client.collection("sessions").document("s-1")
    doc.set({"tenant": "default", "turns": 1})
    doc.update({"turns": firestore.Increment(1)})
    assert doc.get().to_dict() == {"tenant": "default", "turns": 2}

    firestore_emulator.reset()

    assert not doc.get().exists
    assert list(firestore_client.collection("sessions").stream()) == []


# --- Cloud Storage and the Eventarc bridge --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def storage_emulator():
    # Short backoffs so that redelivery is quick to observe.
    with StorageEmulator(bucket="knowledge", min_backoff=0.2, max_backoff=1.0) as emulator:
        yield emulator


@pytest.fixture
def bucket(storage_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_emulator.url)
    client = storage.Client(project="demo-test", credentials=AnonymousCredentials())
    yield client.bucket(storage_emulator.bucket)
    storage_emulator.reset()


@pytest.fixture
def events(storage_emulator, receiver):
    """The receiver, subscribed to the bucket's object events like an Eventarc trigger."""
    storage_emulator.add_subscriber(receiver.url + "/ingest")
    yield receiver
    storage_emulator.wait_idle(10)
    storage_emulator.remove_subscriber(receiver.url + "/ingest")


def test_upload_delivers_a_binary_mode_finalized_cloudevent(storage_emulator, bucket, events):
    blob = bucket.blob("billing/refunds.md")
    blob.metadata = {"tenant": "default"}
    blob.upload_from_string(b"# Refunds\nWithin 30 days.", content_type="text/markdown")

    [request] = events.take(1)
    headers = request.headers
    assert (request.method, request.path) == ("POST", "/ingest")
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == FINALIZED
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/knowledge"
    assert headers["ce-subject"] == "objects/billing/refunds.md"
    assert headers["ce-id"]
    assert headers["ce-time"].endswith("Z") and "T" in headers["ce-time"]
    assert headers["content-type"] == "application/json"
    data = request.json()
    assert data["kind"] == "storage#object"
    assert data["bucket"] == "knowledge"
    assert data["name"] == "billing/refunds.md"
    assert data["generation"] == str(blob.generation)
    assert data["id"] == f"knowledge/billing/refunds.md/{blob.generation}"
    assert data["metageneration"] == "1"
    assert data["size"] == "25"
    assert data["contentType"] == "text/markdown"
    assert data["metadata"] == {"tenant": "default"}
    assert data["md5Hash"] == blob.md5_hash and data["crc32c"] == blob.crc32c
    for key in ("timeCreated", "updated", "etag"):
        assert data[key]
    assert "acl" not in data


def test_overwrite_finalizes_the_new_generation_and_deletes_the_old(storage_emulator, bucket, events):
    first = bucket.blob("faq.txt")
    first.upload_from_string(b"v1")
    second = bucket.blob("faq.txt")
    second.upload_from_string(b"version 2")

    created, finalized, deleted = events.take(3)
    assert created.json()["generation"] == str(first.generation)
    assert second.generation > first.generation
    assert (finalized.headers["ce-type"], finalized.json()["generation"]) == (FINALIZED, str(second.generation))
    assert (deleted.headers["ce-type"], deleted.json()["generation"]) == (DELETED, str(first.generation))
    assert deleted.json()["size"] == "2"
    assert len({r.headers["ce-id"] for r in (created, finalized, deleted)}) == 3


def test_delete_delivers_deleted_with_the_last_generation(storage_emulator, bucket, events):
    blob = bucket.blob("old/policy.html")
    blob.upload_from_string(b"<p>old</p>", content_type="text/html")
    blob.delete()

    finalized, deleted = events.take(2)
    assert finalized.headers["ce-type"] == FINALIZED
    assert deleted.headers["ce-type"] == DELETED
    assert deleted.headers["ce-subject"] == "objects/old/policy.html"
    assert deleted.json()["generation"] == str(blob.generation)


def test_failed_delivery_is_retried_and_order_per_object_is_kept(storage_emulator, bucket, events):
    events.answer_next(500)
    first = bucket.blob("guide.md")
    first.upload_from_string(b"one")
    second = bucket.blob("guide.md")
    second.upload_from_string(b"two")  # queued behind the failing event

    storage_emulator.wait_idle(10)
    rejected, redelivered, finalized, deleted = events.take(4)
    assert rejected.headers["ce-id"] == redelivered.headers["ce-id"], "a retry must keep the event id"
    assert redelivered.json()["generation"] == str(first.generation)
    assert (finalized.headers["ce-type"], finalized.json()["generation"]) == (FINALIZED, str(second.generation))
    assert (deleted.headers["ce-type"], deleted.json()["generation"]) == (DELETED, str(first.generation))
    record = next(d for d in storage_emulator.delivered if d.event.id == rejected.headers["ce-id"])
    assert (record.attempts, record.status) == (2, 200)
    events.assert_empty()


def test_object_names_are_percent_encoded_in_headers_only(storage_emulator, bucket, events):
    bucket.blob("handbook/café menu.md").upload_from_string(b"x")

    [request] = events.take(1)
    assert request.headers["ce-subject"] == "objects/handbook/caf%C3%A9%20menu.md"
    assert request.json()["name"] == "handbook/café menu.md"


# --- Cloud Tasks ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tasks_emulator(tmp_path_factory):
    with TasksEmulator(project="demo-test", location="europe-west1", queue="embed",
                       log_dir=tmp_path_factory.mktemp("logs")) as emulator:
        yield emulator


def test_named_http_task_is_dispatched_with_body_and_headers(tasks_emulator, receiver):
    client = tasks_emulator.client()
    name = f"{tasks_emulator.queue_path}/tasks/doc-42-v3"
    task = tasks_v2.Task(
        name=name,
        http_request=tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=receiver.url + "/embed",
            headers={"Content-Type": "application/json", "X-Tenant": "default"},
            body=json.dumps({"document_id": 42, "version": 3}).encode(),
        ),
    )

    created = client.create_task(parent=tasks_emulator.queue_path, task=task)

    assert created.name == name
    [request] = receiver.take(1)
    assert (request.method, request.path) == ("POST", "/embed")
    assert request.json() == {"document_id": 42, "version": 3}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-tenant"] == "default"
    assert request.headers["x-cloudtasks-taskname"] == "doc-42-v3"
    assert request.headers["x-cloudtasks-queuename"] == tasks_emulator.queue_path
    assert tasks_emulator.env()["CLOUD_TASKS_EMULATOR_HOST"] == tasks_emulator.host


def test_tasks_emulator_refuses_a_port_held_by_another_process(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        emulator = TasksEmulator(port=port, log_dir=tmp_path)
        with pytest.raises(PortTakenError):
            emulator.start()
        assert emulator.pids() == set()


# --- process handling ------------------------------------------------------------------------------------------------


def test_managed_process_stop_reaches_grandchildren(tmp_path):
    # The shell ignores SIGTERM, so stop() must escalate to SIGKILL for the whole group, background child included.
    script = "trap '' TERM; sleep 300 & echo ready-$((6 * 7)); wait"  # the log's header quotes the script
    process = ManagedProcess("stubborn", ["sh", "-c", script], log_dir=tmp_path, stop_timeout=1)
    process.start()
    deadline = time.monotonic() + 5
    while "ready-42" not in process.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = process.pids()
    assert len(tree) == 2

    process.stop()

    assert not live_pids(tree)
    assert process.log_path.read_text().count("starting: sh -c") == 1


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --- the whole local stack (what `make dev` runs) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_stack():
    """LocalStack as `make dev` runs it (functions restarted when they die; quick backoff for the test), on free
    ports, in a scratch directory (not under tmp_path: postgres may run as another user, see pg_data_dir)."""
    from infra.stack.local import DEFAULT_PORTS, LocalStack

    data_dir = Path(tempfile.mkdtemp(prefix="stack-test-local-"))
    stack = LocalStack(data_dir, persistent=False, settings={"EMBEDDER": "hash", "LOG_LEVEL": "WARNING"},
                       ports={name: free_port() for name in DEFAULT_PORTS}, restart_functions=True,
                       supervisor_options={"first_delay": 0.2, "interval": 0.1})
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _is_loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def test_every_socket_the_local_stack_listens_on_is_loopback_only(local_stack):
    """Functions, emulators (the Cloud Tasks one binds every interface by itself), PostgreSQL, the demo site and
    the Pinecone and Gemini stand-ins: nothing is reachable from another machine."""
    from infra.standins.gemini_server import GeminiServer
    from infra.standins.pinecone_server import PineconeIndexServer

    with PineconeIndexServer(384) as pinecone, GeminiServer() as gemini:
        this = psutil.Process()
        pids = {this.pid, *(child.pid for child in this.children(recursive=True))}
        postmaster = int((local_stack.postgres.data_dir / "postmaster.pid").read_text().split()[0])
        pids |= {postmaster, *(child.pid for child in psutil.Process(postmaster).children(recursive=True))}
        listening = [c for c in psutil.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids]
        exposed = [(c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name()) for c in listening
                   if not _is_loopback(c.laddr.ip)]
        assert exposed == [], f"listening beyond loopback: {exposed}"

        ports = {urllib.parse.urlsplit(url).port for url in local_stack.urls.values()}
        ports |= {local_stack.postgres.port, local_stack.firestore.port, local_stack.storage.port,
                  local_stack.tasks.port, urllib.parse.urlsplit(local_stack.demo.url).port,
                  urllib.parse.urlsplit(pinecone.url).port, urllib.parse.urlsplit(gemini.url).port}
        assert ports <= {c.laddr.port for c in listening}, "every service must have been seen listening"


def test_the_tasks_emulator_dispatches_to_this_machine_only(tasks_emulator, receiver):
    client = tasks_emulator.client()
    elsewhere = "http://192.0.2.1:9/embed"  # TEST-NET-1: never routed; the emulator would try it for ever
    for url, name in ((elsewhere, "remote"), (receiver.url + "/embed", "local")):
        client.create_task(parent=tasks_emulator.queue_path, task=tasks_v2.Task(
            name=f"{tasks_emulator.queue_path}/tasks/{name}-{time.time_ns()}",
            http_request=tasks_v2.HttpRequest(http_method=tasks_v2.HttpMethod.POST, url=url, body=b"{}")))
    assert receiver.take(1)[0].path == "/embed"
    log = tasks_emulator.log_path
    deadline = time.monotonic() + 10
    while "is not a loopback address" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "'192.0.2.1' is not a loopback address" in log.read_text()


def test_a_function_process_that_dies_is_restarted_and_answers_again(local_stack, caplog):
    import signal
    import urllib.request

    chat = local_stack.functions["chat"]
    before = chat.pid
    with caplog.at_level(logging.INFO, logger="infra.stack.processes"):
        os.kill(before, signal.SIGKILL)  # the functions-framework process itself (gunicorn's master)
        deadline = time.monotonic() + 60
        answered = False
        while time.monotonic() < deadline and not answered:
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(local_stack.urls["chat"] + "/healthz", timeout=2) as response:
                    answered = chat.pid not in (None, before) and json.load(response) == {"status": "ok"}
            except OSError:
                pass
    assert answered, f"chat did not come back; its log:\n{chat.log_tail()}"
    assert local_stack.supervisor.restarts["chat"] == 1
    messages = [r.getMessage() for r in caplog.records if r.name == "infra.stack.processes"]
    assert any(m.startswith(f"chat exited with code -{int(signal.SIGKILL)} after") for m in messages), messages
    assert any(m.startswith("restarted chat (pid") for m in messages), messages


def test_a_crash_loop_is_left_down_after_the_cap_with_an_error(tmp_path, caplog):
    from infra.stack.processes import Supervisor

    crasher = ManagedProcess("crasher", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
                             log_dir=tmp_path)
    crasher.start()
    supervisor = Supervisor({"crasher": crasher}, first_delay=0.05, max_delay=0.2, max_restarts=3, interval=0.02)
    with caplog.at_level(logging.WARNING, logger="infra.stack.processes"):
        supervisor.start()
        deadline = time.monotonic() + 20
        while "crasher" not in supervisor.given_up and time.monotonic() < deadline:
            time.sleep(0.05)
        supervisor.stop()
    assert supervisor.given_up == {"crasher"} and supervisor.restarts["crasher"] == 3
    assert not crasher.is_running()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "crasher exited with code 3" in errors[0] and "not restarting it again" in errors[0]
    assert "boom" in errors[0]  # the log's last lines say why
    delays = [r.getMessage() for r in caplog.records if "restarting it in" in r.getMessage()]
    assert [d.split("restarting it in ")[1].split(" s")[0] for d in delays] == ["0.05", "0.1", "0.2"]


def test_make_dev_reconciles_an_upload_whose_event_was_lost(local_stack):
    """An upload made while nothing could record it (here: the bridge delivers to no one) is ingested by the
    reconciliation `make dev` runs at start, as the nightly scrape run does in production."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from infra.dev import reconcile_at_start
    from shared.config import Settings
    from shared.db import Database
    from shared.documents import DocumentStore

    storage = local_stack.storage
    storage.remove_subscriber(local_stack.urls["ingest"])
    try:
        client = gcs.Client(project="demo-local", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": storage.url})
        client.bucket(storage.bucket).blob("lost/while-down.md").upload_from_string(
            "# Lost\n\nThis upload's event never reached ingest.", content_type="text/markdown")
    finally:
        storage.add_subscriber(local_stack.urls["ingest"])
    db = Database(Settings.from_env(local_stack.env()).validate())
    uri = f"gs://{storage.bucket}/lost/while-down.md"
    try:
        assert not [r for r in DocumentStore(db).status() if r["source_uri"] == uri]
        assert reconcile_at_start(local_stack).endswith("ingested 1, deleted 0")
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != "ready":
            time.sleep(0.2)
            status = next((r["status"] for r in DocumentStore(db).status() if r["source_uri"] == uri), None)
        assert status == "ready"
        assert reconcile_at_start(local_stack).endswith("ingested 0, deleted 0")  # nothing twice
    finally:
        db.close()
